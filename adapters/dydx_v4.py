"""dYdX v4 perps, read from the indexer (comlink; no key, geo-blocked with 403): one account per
subaccount, isolated-market child subaccounts included.

Which address: dYdX accounts are bech32 ``dydx1...`` addresses derived from the user's key, not the
EVM wallet. ``VenueSpec.accounts`` maps a wallet to its dYdX addresses; a wallet given as a
``dydx1...`` string is read directly; a wallet with neither has nothing here (no accounts).

Endpoints (``{api_url}/v4``):

- ``GET /perpetualMarkets`` once per read: ``{"markets":{ticker: {oraclePrice, initialMarginFraction,
  maintenanceMarginFraction, nextFundingRate, ...}}}``.
- ``GET /addresses/{a}``: ``{"subaccounts":[SubaccountResponseObject...]}``; 404 = an address the
  indexer does not know = no accounts (an empty, OK result).
- ``GET /addresses/{a}/parentSubaccountNumber/{p}`` for each parent whose isolated children
  (``child = parent + 128*k``) appear in the listing: ``{"subaccount":{..., childSubaccounts:[...]}}``;
  its children replace the listing's copies (the parent view is what the frontends show).

Methodology (comlink ``helpers.ts calculateEquityAndFreeCollateral``; protocol ``lib/margin/risk.go``):

- positions: the USDC asset position as SPOT (negative when ``side`` is SHORT; the indexer has
  folded unsettled funding into it) and each open perp as PERP ``size`` (signed) at the market's
  ``oraclePrice`` (dYdX margins on the oracle), one tier at ``maintenanceMarginFraction``.
- equity (net collateral) ``NC = USDC + sum(size * oracle)``; ``MMR = sum(|size| * oracle * MMF)``;
  free collateral ``= NC - sum(|size| * oracle * IMF)`` (base IMF, as the indexer). Liquidatable iff
  ``MMR > 0 and NC < MMR``; ``venue_health = NC / MMR`` (``Infinity`` for MMR = 0).
- our equity and free collateral are kept next to the indexer's in ``raw`` (they must agree).

Gaps: open-interest-scaled IMF (affects only initial margin) is not applied; the indexer's figures
lag the chain by its processed height (kept in ``raw``).
"""

# ruff: noqa: N815  (response models mirror the venue's camelCase JSON field names)
from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final, Literal

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetMap
from adapters.base import BlockRef
from adapters.errors import VenueDataError, VenueError
from adapters.http import DecimalString, JsonModel, parse_model
from adapters.http_adapter import HttpVenueAdapter
from adapters.venue_common import Warnings, cash_position, resolve_symbol
from risk.errors import RiskInputError
from risk.model import (
    AsOf,
    CrossPerpModel,
    MarginAccount,
    MarginTier,
    PerpParams,
    Position,
    PositionKind,
    PriceSource,
)

__all__ = [
    "DydxV4Adapter",
    "Market",
    "Subaccount",
    "figures",
    "parse_addresses",
    "parse_markets",
    "parse_parent_subaccount",
    "parse_subaccount",
    "subaccount_account",
]

VENUE: Final = "dydx_v4"
API_PREFIX: Final = "/v4"
CHILD_STRIDE: Final = 128  # isolated child = parent + 128 * k (helpers.ts getChildSubaccountNums)
SETTLEMENT: Final = "USDC"
MODEL: Final = CrossPerpModel()


class Market(JsonModel):
    ticker: str
    status: str
    oraclePrice: DecimalString
    initialMarginFraction: DecimalString
    maintenanceMarginFraction: DecimalString
    nextFundingRate: DecimalString
    marketType: Literal["CROSS", "ISOLATED"] = "CROSS"


class Markets(JsonModel):
    markets: dict[str, Market]


class PerpPosition(JsonModel):
    market: str
    status: Literal["OPEN", "CLOSED", "LIQUIDATED"]
    side: Literal["LONG", "SHORT"]
    size: DecimalString  # signed
    entryPrice: DecimalString
    netFunding: DecimalString
    unrealizedPnl: DecimalString


class AssetPosition(JsonModel):
    symbol: str
    side: Literal["LONG", "SHORT"]
    size: DecimalString  # unsigned

    @property
    def signed(self) -> Decimal:
        return -self.size if self.side == "SHORT" else self.size


class Subaccount(JsonModel):
    address: str
    subaccountNumber: int
    equity: DecimalString
    freeCollateral: DecimalString
    openPerpetualPositions: dict[str, PerpPosition]
    assetPositions: dict[str, AssetPosition]
    marginEnabled: bool = True
    updatedAtHeight: str | None = None
    latestProcessedBlockHeight: str | None = None


class Addresses(JsonModel):
    subaccounts: list[Subaccount]


class ParentSubaccount(JsonModel):
    address: str
    parentSubaccountNumber: int
    equity: DecimalString
    freeCollateral: DecimalString
    childSubaccounts: list[Subaccount]


class _SubaccountWrapper(JsonModel):
    subaccount: Subaccount


class _ParentWrapper(JsonModel):
    subaccount: ParentSubaccount


# --- pure parsers ---------------------------------------------------------------------------------


def parse_markets(raw: object) -> dict[str, Market]:
    return parse_model(Markets, raw, venue=VENUE, what="perpetualMarkets").markets


def parse_addresses(raw: object) -> list[Subaccount]:
    return parse_model(Addresses, raw, venue=VENUE, what="addresses").subaccounts


def parse_subaccount(raw: object) -> Subaccount:
    """``/addresses/{a}/subaccountNumber/{n}``: the object comes wrapped in ``{"subaccount": ...}``."""
    return parse_model(_SubaccountWrapper, raw, venue=VENUE, what="subaccount").subaccount


def parse_parent_subaccount(raw: object) -> ParentSubaccount:
    return parse_model(_ParentWrapper, raw, venue=VENUE, what="parentSubaccount").subaccount


def figures(sub: Subaccount, markets: Mapping[str, Market]) -> dict[str, Decimal]:
    """Our ``equity`` (NC), ``mmr``, ``imr`` and ``free_collateral`` from the oracle prices."""
    usdc = sum((a.signed for a in sub.assetPositions.values() if a.symbol == SETTLEMENT), Decimal(0))
    equity, mmr, imr = usdc, Decimal(0), Decimal(0)
    for ticker, position in sub.openPerpetualPositions.items():
        market = markets.get(ticker)
        if market is None:
            raise VenueDataError(
                f"subaccount {sub.subaccountNumber}: market {ticker} not in perpetualMarkets", venue=VENUE
            )
        notional = position.size * market.oraclePrice
        equity += notional
        mmr += abs(notional) * market.maintenanceMarginFraction
        imr += abs(notional) * market.initialMarginFraction
    return {"equity": equity, "mmr": mmr, "imr": imr, "free_collateral": equity - imr}


def subaccount_account(
    sub: Subaccount,
    *,
    wallet: str,
    deployment: str,
    markets: Mapping[str, Market],
    assets: AssetMap,
    as_of: AsOf,
) -> MarginAccount:
    """One subaccount as a cross-margined account (an isolated child is cross within itself)."""
    warnings: Warnings = []
    positions: list[Position] = []
    for asset in sub.assetPositions.values():
        if asset.symbol != SETTLEMENT:
            raise VenueDataError(
                f"subaccount {sub.subaccountNumber}: unexpected asset {asset.symbol}", venue=VENUE
            )
        positions.append(cash_position(assets, SETTLEMENT, asset.signed, VENUE, warnings))
    for ticker, p in sorted(sub.openPerpetualPositions.items()):
        if p.status != "OPEN" or p.size == 0:
            continue
        market = markets.get(ticker)
        if market is None:
            raise VenueDataError(f"market {ticker} not in perpetualMarkets", venue=VENUE)
        info = resolve_symbol(assets, ticker, VENUE, warnings)
        positions.append(
            Position(
                token=ticker,
                factor=info.factor,
                basis_factor=info.basis,
                kind=PositionKind.PERP,
                quantity=p.size,
                price=market.oraclePrice,
                price_source=PriceSource.ORACLE,
                perp=PerpParams(
                    entry_price=p.entryPrice,
                    margin_tiers=(MarginTier(Decimal(0), market.maintenanceMarginFraction),),
                    funding_rate_hourly=market.nextFundingRate,
                    oracle_price=market.oraclePrice,
                ),
            )
        )
    ours = figures(sub, markets)
    health = Decimal("Infinity") if ours["mmr"] <= 0 else ours["equity"] / ours["mmr"]
    return MarginAccount(
        venue=VENUE,
        deployment=deployment,
        account_id=f"{sub.address}/{sub.subaccountNumber}",
        wallet=wallet,
        margin_model=MODEL,
        positions=tuple(positions),
        as_of=as_of,
        venue_health=health,
        withdrawable=sub.freeCollateral,  # the indexer's free collateral, in USDC
        raw={
            "warnings": warnings,
            "parent": sub.subaccountNumber % CHILD_STRIDE,
            "indexer_equity": str(sub.equity),
            "indexer_free_collateral": str(sub.freeCollateral),
            "equity": str(ours["equity"]),
            "free_collateral": str(ours["free_collateral"]),
            "maintenance_requirement": str(ours["mmr"]),
            "liquidatable": ours["mmr"] > 0 and ours["equity"] < ours["mmr"],
            "latestProcessedBlockHeight": sub.latestProcessedBlockHeight,
        },
    )


def _is_empty(sub: Subaccount) -> bool:
    return not sub.openPerpetualPositions and all(a.size == 0 for a in sub.assetPositions.values())


# --- the adapter ----------------------------------------------------------------------------------


class DydxV4Adapter(HttpVenueAdapter):
    """Reads the markets once, then each dYdX address of each wallet."""

    family = VENUE
    margin_model = MODEL
    capabilities = frozenset({"venue_health", "funding"})

    def addresses_of(self, wallet: str) -> tuple[str, ...]:
        if wallet.startswith("dydx1"):
            return (wallet,)
        folded = {k.lower(): v for k, v in self.venue_spec.accounts.items()}
        return folded.get(wallet.lower(), ())

    async def _subaccounts(self, address: str) -> list[Subaccount]:
        listing = await self.http.get(f"{API_PREFIX}/addresses/{address}", allow_404=True)
        if listing is None:
            return []
        subs = parse_addresses(listing.body)
        parents = sorted(
            {s.subaccountNumber % CHILD_STRIDE for s in subs if s.subaccountNumber >= CHILD_STRIDE}
        )
        for parent in parents:
            response = await self.http.get(
                f"{API_PREFIX}/addresses/{address}/parentSubaccountNumber/{parent}", allow_404=True
            )
            if response is None:
                continue
            children = {
                c.subaccountNumber: c for c in parse_parent_subaccount(response.body).childSubaccounts
            }
            subs = [children.get(s.subaccountNumber, s) for s in subs]
        return subs

    async def _read_wallet(
        self, wallet: ChecksumAddress, markets: Mapping[str, Market]
    ) -> list[MarginAccount]:
        accounts: list[MarginAccount] = []
        for address in self.addresses_of(wallet):
            subs = await self._subaccounts(address)
            as_of = AsOf(timestamp=self.context.now())
            for sub in sorted(subs, key=lambda s: s.subaccountNumber):
                if _is_empty(sub):
                    continue
                try:
                    accounts.append(
                        subaccount_account(
                            sub,
                            wallet=wallet,
                            deployment=self.deployment,
                            markets=markets,
                            assets=self.context.assets,
                            as_of=as_of,
                        )
                    )
                except RiskInputError as exc:
                    raise VenueDataError(f"subaccount {sub.subaccountNumber}: {exc}", venue=VENUE) from None
        return accounts

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        mapped = [w for w in wallets if self.addresses_of(w)]
        if not mapped:
            return []
        try:
            response = await self.http.get(f"{API_PREFIX}/perpetualMarkets")
            assert response is not None
            markets = parse_markets(response.body)
        except VenueError as exc:
            now = AsOf(timestamp=self.context.now())
            return [self.unavailable(w, f"market data: {exc}", now) for w in mapped]
        return await self.read_each_wallet(mapped, lambda w: self._read_wallet(w, markets))
