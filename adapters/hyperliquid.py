"""Hyperliquid perps (no API key): the cross account and each isolated position of a wallet.

Endpoints (all ``POST {api_url}/info``, JSON body, address in the body):

- ``{"type":"metaAndAssetCtxs"}`` once per read: universe (index = asset id), margin tables, and per
  asset ``markPx``, ``oraclePx``, ``funding`` (hourly rate).
- per wallet ``clearinghouseState`` (perp account), ``spotClearinghouseState`` (spot balances) and
  ``userAbstraction`` (a bare JSON string: ``disabled``/``default`` = standard, ``unifiedAccount`` /
  ``portfolioMargin`` = balances live in the spot state).

Methodology (hyperliquid-docs trading/margining, margin-tiers, liquidations):

- Maintenance fraction of a tier = ``1 / (2 * maxLeverage)``; ``MM = ntl * mmr_k - deduction_k`` with
  ``deduction_k = deduction_{k-1} + lowerBound_k * (mmr_k - mmr_{k-1})`` (continuous in size). A
  margin table id below 50 is one tier at leverage = id; otherwise the table from ``meta``. Without
  meta for a coin, the position's own ``maxLeverage`` is one tier.
- Cross account: one ``MarginAccount`` (``CrossPerpModel``) whose positions are the cash leg (SPOT
  USDC = ``crossMarginSummary.totalRawUsd``) and each cross perp (PERP ``szi`` at the mark
  ``positionValue / |szi|``), so that equity = ``accountValue``. ``venue_health`` =
  ``accountValue / crossMaintenanceMarginUsed`` (``Infinity`` for no requirement).
- Each isolated position: its own account (``IsolatedPerpModel``): SPOT USDC ``leverage.rawUsd`` plus
  the perp, equity = ``marginUsed``; ``venue_health`` = ``marginUsed / MM(position)``.
- Liquidation price: ``px - side * margin_available / |szi| / (1 - mmr * side)``, with
  ``margin_available = equity - MM`` (cross: the whole cross account's). Reproduces the docs example
  (2866.2694).
- Unified / portfolio-margin accounts: the USDC collateral is the spot ``total`` of USDC; our reading
  is that the cross cash leg is ``spot USDC total - sum(cross szi * entryPx) - sum(isolated margin)``
  (the per-dex perp figures are not a standalone balance). Other spot tokens of a unified account are
  not counted as collateral (a warning names them).
- Closed positions that linger with ``szi "0"`` are dropped.

Gaps: HIP-3 dexes (``dex`` != "") are not read; portfolio-margin borrowing against HYPE/BTC is not
modelled; the 2023 response shape (no ``crossMaintenanceMarginUsed``) parses, with no venue health.
"""

# ruff: noqa: N815  (response models mirror the venue's camelCase JSON field names)
from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from pydantic import BaseModel

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetMap
from adapters.base import BlockRef
from adapters.errors import VenueDataError, VenueError
from adapters.http import DecimalString, JsonModel, parse_model
from adapters.http_adapter import HttpVenueAdapter
from adapters.venue_common import Warnings, as_of_millis, cash_position, resolve_symbol
from risk.errors import RiskInputError
from risk.model import (
    AsOf,
    CrossPerpModel,
    IsolatedPerpModel,
    MarginAccount,
    MarginTier,
    PerpParams,
    Position,
    PositionKind,
    PriceSource,
)

__all__ = [
    "HyperliquidAdapter",
    "MarketInfo",
    "liquidation_price",
    "maintenance_margin",
    "parse_accounts",
    "parse_clearinghouse_state",
    "parse_meta_and_ctxs",
    "parse_spot_state",
    "tiers_for_leverage",
]

VENUE: Final = "hyperliquid"
INFO_PATH: Final = "/info"
IMPLICIT_TABLE_LIMIT: Final = 50  # a margin table id below this is one tier at leverage = id
SPOT_COLLATERAL_MODES: Final = frozenset({"unifiedAccount", "portfolioMargin"})
KNOWN_MODES: Final = frozenset({"disabled", "default", "dexAbstraction"}) | SPOT_COLLATERAL_MODES
SETTLEMENT: Final = "USDC"
CROSS: Final = CrossPerpModel()
ISOLATED: Final = IsolatedPerpModel()


# --- response models (the documented shapes; see perps_options.md §1) -----------------------------


class Leverage(JsonModel):
    type: Literal["cross", "isolated"]
    value: int
    rawUsd: DecimalString | None = None  # isolated only


class CumFunding(JsonModel):
    allTime: DecimalString
    sinceOpen: DecimalString
    sinceChange: DecimalString


class PerpPosition(JsonModel):
    coin: str
    szi: DecimalString
    entryPx: DecimalString | None = None
    positionValue: DecimalString
    unrealizedPnl: DecimalString
    liquidationPx: DecimalString | None
    leverage: Leverage
    marginUsed: DecimalString
    maxLeverage: int | None = None  # absent in the 2023 shape
    cumFunding: CumFunding | None = None  # absent in the 2023 shape


class AssetPosition(JsonModel):
    type: str
    position: PerpPosition


class MarginSummary(JsonModel):
    accountValue: DecimalString
    totalMarginUsed: DecimalString
    totalNtlPos: DecimalString
    totalRawUsd: DecimalString


class ClearinghouseState(JsonModel):
    assetPositions: list[AssetPosition]
    crossMaintenanceMarginUsed: DecimalString | None = None  # absent in the 2023 shape
    crossMarginSummary: MarginSummary
    marginSummary: MarginSummary
    withdrawable: DecimalString
    time: int | None = None


class SpotBalance(JsonModel):
    coin: str
    token: int
    hold: DecimalString
    total: DecimalString


class SpotState(JsonModel):
    balances: list[SpotBalance]


class TierRow(JsonModel):
    lowerBound: DecimalString
    maxLeverage: int


class MarginTable(JsonModel):
    description: str
    marginTiers: list[TierRow]


class UniverseAsset(JsonModel):
    name: str
    szDecimals: int
    maxLeverage: int
    marginTableId: int | None = None
    onlyIsolated: bool = False
    isDelisted: bool = False


class Meta(JsonModel):
    universe: list[UniverseAsset]
    marginTables: tuple[tuple[int, MarginTable], ...] = ()


class AssetCtx(JsonModel):
    funding: DecimalString
    oraclePx: DecimalString
    markPx: DecimalString


class _MetaAndCtxs(BaseModel):
    meta: Meta
    ctxs: list[AssetCtx]


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """One perp market as the venue margins it."""

    tiers: tuple[MarginTier, ...]
    mark: Decimal | None = None
    oracle: Decimal | None = None
    funding_hourly: Decimal = Decimal(0)


# --- pure math ------------------------------------------------------------------------------------


def tiers_for_leverage(rows: Sequence[tuple[Decimal, int]]) -> tuple[MarginTier, ...]:
    """``(lowerBound, maxLeverage)`` rows -> tiers with ``mmr = 1 / (2 * maxLeverage)``."""
    tiers = tuple(
        MarginTier(lower_bound=bound, maintenance_fraction=Decimal(1) / (2 * Decimal(lev)))
        for bound, lev in sorted(rows)
    )
    if not tiers or tiers[0].lower_bound != 0 or any(lev <= 0 for _, lev in rows):
        raise VenueDataError(f"margin table {list(rows)} must start at 0 with leverage > 0", venue=VENUE)
    return tiers


def _tier_index(notional: Decimal, tiers: Sequence[MarginTier]) -> int:
    index = 0
    for i, tier in enumerate(tiers):
        if notional >= tier.lower_bound:
            index = i
    return index


def maintenance_margin(notional: Decimal, tiers: Sequence[MarginTier]) -> Decimal:
    """``ntl * mmr_k - deduction_k`` for the tier ``k`` containing ``|notional|``."""
    ntl = abs(notional)
    k = _tier_index(ntl, tiers)
    deduction = Decimal(0)
    for i in range(1, k + 1):
        deduction += tiers[i].lower_bound * (
            tiers[i].maintenance_fraction - tiers[i - 1].maintenance_fraction
        )
    return ntl * tiers[k].maintenance_fraction - deduction


def liquidation_price(
    *, price: Decimal, szi: Decimal, margin_available: Decimal, mmr: Decimal
) -> Decimal | None:
    """The docs' formula ``price - side * margin_available / |szi| / (1 - mmr * side)``; None when
    the position cannot be liquidated by a price move (the result is not positive)."""
    if szi == 0:
        return None
    side = Decimal(1) if szi > 0 else Decimal(-1)
    liq = price - side * margin_available / abs(szi) / (1 - mmr * side)
    return liq if liq > 0 else None


# --- pure parsers ---------------------------------------------------------------------------------


def parse_clearinghouse_state(raw: object) -> ClearinghouseState:
    return parse_model(ClearinghouseState, raw, venue=VENUE, what="clearinghouseState")


def parse_spot_state(raw: object) -> SpotState:
    return parse_model(SpotState, raw, venue=VENUE, what="spotClearinghouseState")


def parse_abstraction(raw: object) -> str:
    """``userAbstraction`` is a bare JSON string; null (never set) reads as ``default``."""
    if raw is None:
        return "default"
    if not isinstance(raw, str) or raw not in KNOWN_MODES:
        raise VenueDataError(f"unexpected userAbstraction value {str(raw)[:40]!r}", venue=VENUE)
    return raw


def parse_meta_and_ctxs(raw: object) -> dict[str, MarketInfo]:
    """``metaAndAssetCtxs`` (``[meta, ctxs]``) or bare ``meta`` -> coin -> market info."""
    if isinstance(raw, list):
        if len(raw) != 2:
            raise VenueDataError("metaAndAssetCtxs: expected [meta, assetCtxs]", venue=VENUE)
        both = parse_model(
            _MetaAndCtxs, {"meta": raw[0], "ctxs": raw[1]}, venue=VENUE, what="metaAndAssetCtxs"
        )
        meta, ctxs = both.meta, both.ctxs
        if len(ctxs) != len(meta.universe):
            raise VenueDataError(
                f"metaAndAssetCtxs: {len(ctxs)} contexts for {len(meta.universe)} assets", venue=VENUE
            )
    else:
        meta, ctxs = parse_model(Meta, raw, venue=VENUE, what="meta"), []
    tables = {table_id: table for table_id, table in meta.marginTables}
    markets: dict[str, MarketInfo] = {}
    for index, asset in enumerate(meta.universe):
        table_id = asset.marginTableId
        if table_id is None:
            rows = [(Decimal(0), asset.maxLeverage)]
        elif table_id < IMPLICIT_TABLE_LIMIT:
            rows = [(Decimal(0), table_id)]
        elif table_id in tables:
            rows = [(t.lowerBound, t.maxLeverage) for t in tables[table_id].marginTiers]
        else:
            raise VenueDataError(f"meta: {asset.name} uses margin table {table_id}, not listed", venue=VENUE)
        ctx = ctxs[index] if ctxs else None
        markets[asset.name] = MarketInfo(
            tiers=tiers_for_leverage(rows),
            mark=ctx.markPx if ctx else None,
            oracle=ctx.oraclePx if ctx else None,
            funding_hourly=ctx.funding if ctx else Decimal(0),
        )
    return markets


def _perp(
    p: PerpPosition, market: MarketInfo | None, assets: AssetMap, warnings: Warnings
) -> tuple[Position, tuple[MarginTier, ...]]:
    if market is not None:
        tiers = market.tiers
    elif p.maxLeverage is not None:
        tiers = tiers_for_leverage([(Decimal(0), p.maxLeverage)])
    else:
        raise VenueDataError(
            f"{p.coin}: no margin table in meta and no maxLeverage on the position", venue=VENUE
        )
    info = resolve_symbol(assets, p.coin, VENUE, warnings)
    mark = p.positionValue / abs(p.szi)
    funding = -p.cumFunding.sinceOpen if p.cumFunding else Decimal(0)  # cumFunding counts funding paid
    position = Position(
        token=p.coin,
        factor=info.factor,
        basis_factor=info.basis,
        kind=PositionKind.PERP,
        quantity=p.szi,
        price=mark,
        price_source=PriceSource.MARK,
        perp=PerpParams(
            entry_price=p.entryPx if p.entryPx is not None else mark,
            margin_tiers=tiers,
            accrued_funding=funding,
            funding_rate_hourly=market.funding_hourly if market else Decimal(0),
            oracle_price=market.oracle if market else None,
        ),
    )
    return position, tiers


def _health(resources: Decimal, requirement: Decimal) -> Decimal:
    return Decimal("Infinity") if requirement <= 0 else resources / requirement


def parse_accounts(
    *,
    wallet: str,
    deployment: str,
    state: ClearinghouseState,
    spot: SpotState | None,
    mode: str,
    markets: Mapping[str, MarketInfo],
    assets: AssetMap,
    as_of: AsOf,
) -> list[MarginAccount]:
    """The wallet's cross account (if it holds anything) and one account per isolated position."""
    warnings: Warnings = []
    open_positions = [ap.position for ap in state.assetPositions if ap.position.szi != 0]
    cross = [p for p in open_positions if p.leverage.type == "cross"]
    isolated = [p for p in open_positions if p.leverage.type == "isolated"]
    accounts: list[MarginAccount] = []

    if mode in SPOT_COLLATERAL_MODES:
        balances = spot.balances if spot else []
        usdc = sum((b.total for b in balances if b.coin == SETTLEMENT), Decimal(0))
        others = [b.coin for b in balances if b.coin != SETTLEMENT and b.total != 0]
        if others:
            warnings.append(f"{VENUE}: {mode} spot balances not counted as collateral: {', '.join(others)}")
        isolated_margin = sum(
            ((p.leverage.rawUsd or Decimal(0)) + p.szi * (p.entryPx or Decimal(0)) for p in isolated),
            Decimal(0),
        )
        cash = usdc - sum((p.szi * (p.entryPx or Decimal(0)) for p in cross), Decimal(0)) - isolated_margin
    else:
        cash = state.crossMarginSummary.totalRawUsd

    if cross or cash != 0:
        positions = [cash_position(assets, SETTLEMENT, cash, VENUE, warnings)]
        for p in cross:
            positions.append(_perp(p, markets.get(p.coin), assets, warnings)[0])
        account_value = sum((pos.value for pos in positions), Decimal(0))
        reported_mm = state.crossMaintenanceMarginUsed
        accounts.append(
            MarginAccount(
                venue=VENUE,
                deployment=deployment,
                account_id=f"{wallet}/cross",
                wallet=wallet,
                margin_model=CROSS,
                positions=tuple(positions),
                as_of=as_of,
                venue_health=None if reported_mm is None else _health(account_value, reported_mm),
                # the venue's own figure for the cross account; in unified/portfolio modes the
                # balances live in the spot state and the perp state's figure does not apply
                withdrawable=None if mode in SPOT_COLLATERAL_MODES else state.withdrawable,
                raw={
                    "mode": mode,
                    "warnings": warnings,
                    "accountValue": str(account_value),
                    "crossMaintenanceMarginUsed": None if reported_mm is None else str(reported_mm),
                },
            )
        )

    for p in isolated:
        iso_warnings: Warnings = list(warnings)
        if p.leverage.rawUsd is None:
            raise VenueDataError(f"isolated {p.coin}: leverage.rawUsd is missing", venue=VENUE)
        perp, tiers = _perp(p, markets.get(p.coin), assets, iso_warnings)
        mm = maintenance_margin(p.positionValue, tiers)
        accounts.append(
            MarginAccount(
                venue=VENUE,
                deployment=deployment,
                account_id=f"{wallet}/isolated/{p.coin}",
                wallet=wallet,
                margin_model=ISOLATED,
                positions=(cash_position(assets, SETTLEMENT, p.leverage.rawUsd, VENUE, iso_warnings), perp),
                as_of=as_of,
                venue_health=_health(p.marginUsed, mm),
                raw={
                    "mode": mode,
                    "warnings": iso_warnings,
                    "maintenanceMargin": str(mm),
                    "liquidationPx": None if p.liquidationPx is None else str(p.liquidationPx),
                },
            )
        )
    return accounts


# --- the adapter ----------------------------------------------------------------------------------


class HyperliquidAdapter(HttpVenueAdapter):
    """Reads ``metaAndAssetCtxs`` once, then each wallet's three info requests concurrently."""

    family = VENUE
    margin_model = CROSS
    capabilities = frozenset({"venue_health", "liquidation_price", "funding"})

    async def _info(self, body: dict[str, str]) -> object:
        response = await self.http.post(INFO_PATH, body)
        assert response is not None  # allow_404 is off
        return response.body

    async def _read_wallet(
        self, wallet: ChecksumAddress, markets: Mapping[str, MarketInfo]
    ) -> list[MarginAccount]:
        user = wallet.lower()
        state_raw, spot_raw, mode_raw = await asyncio.gather(
            self._info({"type": "clearinghouseState", "user": user}),
            self._info({"type": "spotClearinghouseState", "user": user}),
            self._info({"type": "userAbstraction", "user": user}),
        )
        state = parse_clearinghouse_state(state_raw)
        as_of = as_of_millis(state.time) if state.time is not None else AsOf(timestamp=self.context.now())
        try:
            return parse_accounts(
                wallet=wallet,
                deployment=self.deployment,
                state=state,
                spot=parse_spot_state(spot_raw),
                mode=parse_abstraction(mode_raw),
                markets=markets,
                assets=self.context.assets,
                as_of=as_of,
            )
        except RiskInputError as exc:
            raise VenueDataError(f"clearinghouseState: {exc}", venue=VENUE) from None

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        try:
            markets = parse_meta_and_ctxs(await self._info({"type": "metaAndAssetCtxs"}))
        except VenueError as exc:
            now = AsOf(timestamp=self.context.now())
            return [self.unavailable(w, f"market data: {exc}", now) for w in wallets]
        return await self.read_each_wallet(wallets, lambda w: self._read_wallet(w, markets))
