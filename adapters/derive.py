"""Derive (ex-Lyra v2) options and perps: one margin account per subaccount.

Endpoints (JSON-RPC over HTTP: ``POST {api_url}/public/<method>`` with the params object as the body;
the answer is ``{"id", "result": {...}}`` or ``{"id", "error": {"code", "message"}}``):

- ``public/get_subaccounts {wallet}`` (v3; public): ``{"result": {"wallet", "subaccount_ids": [...]}}``.
  On v2 listing needs auth: the user lists the ids in ``[venues.derive].subaccounts`` (wallet -> ids),
  which are used without asking the venue. If neither works the wallet is UNAVAILABLE "not configured".
- ``public/margin_watch {subaccount_id}``: ``subaccount_value``, net ``initial_margin`` /
  ``maintenance_margin``, ``margin_type``, ``valuation_timestamp`` (s), ``positions[]``, ``collaterals[]``.

Methodology:

- ``maintenance_margin`` is NET (value minus requirement; < 0 = flagged for liquidation). We normalize
  it into ``h = resources / requirement`` with resources = ``subaccount_value`` and requirement =
  ``subaccount_value - maintenance_margin``: ``h = sv / (sv - mm)``; ``h < 1`` exactly when ``mm < 0``
  (for sv > 0); no requirement (sv - mm <= 0) is ``h = Infinity``.
- positions: options as OPTION (quantity ``amount`` at ``mark_price``) with strike, expiry (08:00 UTC
  on the date in ``ETH-20241227-3000-C``), call/put, the index price as the underlying and the mark
  IV: margin_watch gives none, so it is implied from the mark by inverting Black-76 (forward = index,
  zero rate) by bisection; perps as PERP at ``mark_price`` whose ``mark_value`` is the unsettled PnL,
  so the cash leg absorbs ``mark_value - amount * mark`` and the entry is ``mark - mark_value/amount``;
  collaterals as SPOT (USDC at par as the cash leg, others at their mark).
- perp maintenance tier: the position's own ``|maintenance_margin| / (|amount| * mark)`` when reported,
  else the Standard Manager's 5% (v2-core 2023 mainnet config).
- account model, from the subaccount's ``margin_type`` (``margin_model_for``):
  - ``"SM"``: ``DeriveStandardModel`` (the Standard Manager's rule, ``risk.margin.derive_standard``):
    option fractions ``SM_CALL_SPOT`` / ``SM_PUT_SPOT`` / ``SM_PUT_MTM`` (0.10, v2-core 2023 mainnet
    config; governable, not served by margin_watch), ``SM_UNPAIRED_SCALE`` 1.1, and each base
    collateral's ``marginFactor`` read back from its reported maintenance margin
    (``1 - |maintenance_margin| / mark_value``);
  - ``"PM"``: ``OptionsScenarioModel`` with the PM1 grid of the 2023 config (spot -15%..+15% in 5%
    steps x vol {-30%, 0, +45%}, ``PM_MODEL``);
  - ``"PM2"`` and anything else: ``PM_MODEL`` with a warning (PM2's grid and contingencies are not
    reproduced; the venue's own ``h`` is authoritative there).
  ``raw`` keeps the venue's ``margin_type``.

Gaps: greeks are kept in ``raw`` per position, not in the model; SM's IM-only terms (depeg, oracle
contingency) do not enter maintenance and are not modelled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetMap
from adapters.base import BlockRef
from adapters.errors import VenueDataError, VenueNotConfigured, VenueUnavailable
from adapters.http import DecimalString, JsonModel, parse_model
from adapters.http_adapter import HttpVenueAdapter
from adapters.venue_common import (
    Warnings,
    as_of_seconds,
    cash_position,
    greeks_raw,
    marked_position,
    rpc_result,
    spot_position,
)
from risk.errors import RiskInputError
from risk.model import (
    DeriveStandardModel,
    MarginAccount,
    MarginModel,
    MarginTier,
    OptionParams,
    OptionsScenarioModel,
    PerpParams,
    Position,
)

__all__ = [
    "DeriveAdapter",
    "Instrument",
    "MarginWatch",
    "black76_price",
    "implied_vol",
    "margin_model_for",
    "margin_watch_account",
    "parse_instrument",
    "parse_margin_watch",
    "parse_subaccount_ids",
]

VENUE: Final = "derive"
SETTLEMENT: Final = "USDC"
EXPIRY_HOUR_UTC: Final = 8
YEAR_SECONDS: Final = 365.0 * 24 * 3600
SM_PERP_MM: Final = Decimal("0.05")
PM_MODEL: Final = OptionsScenarioModel(
    spot_shocks=tuple(Decimal(k) / 100 for k in range(-15, 16, 5)),
    vol_shocks=(Decimal("-0.30"), Decimal(0), Decimal("0.45")),
)
MODEL: Final = PM_MODEL  # the adapter's default model (listing); accounts carry margin_model_for(...)
SM_CALL_SPOT: Final = Decimal("0.10")
SM_PUT_SPOT: Final = Decimal("0.10")
SM_PUT_MTM: Final = Decimal("0.10")
SM_UNPAIRED_SCALE: Final = Decimal("1.1")
_OPTION = re.compile(r"^(?P<u>[A-Za-z0-9.]+)-(?P<d>\d{8})-(?P<k>\d+(?:_\d+)?(?:\.\d+)?)-(?P<t>[CP])$")
_PERP = re.compile(r"^(?P<u>[A-Za-z0-9.]+)-PERP$")


@dataclass(frozen=True, slots=True)
class Instrument:
    underlying: str
    kind: Literal["option", "perp"]
    expiry: datetime | None = None
    strike: Decimal | None = None
    option_type: Literal["call", "put"] | None = None


def parse_instrument(name: str) -> Instrument:
    """``ETH-20241227-3000-C`` (strike ``1_5`` means 1.5) or ``ETH-PERP``."""
    if m := _PERP.match(name):
        return Instrument(underlying=m["u"], kind="perp")
    if m := _OPTION.match(name):
        d = m["d"]
        expiry = datetime(int(d[:4]), int(d[4:6]), int(d[6:]), EXPIRY_HOUR_UTC, tzinfo=UTC)
        return Instrument(
            underlying=m["u"],
            kind="option",
            expiry=expiry,
            strike=Decimal(m["k"].replace("_", ".")),
            option_type="call" if m["t"] == "C" else "put",
        )
    raise VenueDataError(f"instrument name {name!r} is neither an option nor a perp", venue=VENUE)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black76_price(forward: float, strike: float, years: float, vol: float, call: bool) -> float:
    """Undiscounted Black-76: ``F N(d1) - K N(d2)`` (call), ``K N(-d2) - F N(-d1)`` (put)."""
    intrinsic = max(forward - strike, 0.0) if call else max(strike - forward, 0.0)
    if years <= 0 or vol <= 0:
        return intrinsic
    s = vol * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * s * s) / s
    d2 = d1 - s
    if call:
        return forward * _norm_cdf(d1) - strike * _norm_cdf(d2)
    return strike * _norm_cdf(-d2) - forward * _norm_cdf(-d1)


def implied_vol(price: float, forward: float, strike: float, years: float, call: bool) -> float | None:
    """The vol at which Black-76 gives ``price`` (bisection on [1e-4, 10]); None when the price is
    outside the no-arbitrage range (below intrinsic or at/above the forward/strike bound)."""
    if years <= 0:
        return None
    lo, hi = 1e-4, 10.0
    if (
        not black76_price(forward, strike, years, lo, call)
        <= price
        <= black76_price(forward, strike, years, hi, call)
    ):
        return None
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if black76_price(forward, strike, years, mid, call) < price:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-14:
            break
    return 0.5 * (lo + hi)


class WatchPosition(JsonModel):
    instrument_name: str
    instrument_type: Literal["erc20", "option", "perp"]
    amount: DecimalString
    mark_price: DecimalString
    mark_value: DecimalString
    index_price: DecimalString
    maintenance_margin: DecimalString
    initial_margin: DecimalString | None = None
    delta: DecimalString | None = None
    gamma: DecimalString | None = None
    vega: DecimalString | None = None
    theta: DecimalString | None = None
    liquidation_price: DecimalString | None = None


class WatchCollateral(JsonModel):
    asset_name: str
    asset_type: str
    amount: DecimalString
    mark_price: DecimalString
    mark_value: DecimalString
    maintenance_margin: DecimalString | None = None


class MarginWatch(JsonModel):
    subaccount_id: int
    currency: str | list[str]
    margin_type: str
    subaccount_value: DecimalString
    initial_margin: DecimalString
    maintenance_margin: DecimalString
    valuation_timestamp: int
    positions: list[WatchPosition]
    collaterals: list[WatchCollateral]


class _SubaccountIds(JsonModel):
    subaccount_ids: list[int]


def _result(raw: object, what: str) -> object:
    return rpc_result(raw, what, VENUE)[0]


def parse_margin_watch(raw: object) -> MarginWatch:
    return parse_model(MarginWatch, _result(raw, "margin_watch"), venue=VENUE, what="margin_watch")


def parse_subaccount_ids(raw: object) -> list[int]:
    result = _result(raw, "get_subaccounts")
    return parse_model(_SubaccountIds, result, venue=VENUE, what="get_subaccounts").subaccount_ids


def _years(expiry: datetime, now: datetime) -> float:
    return max(0.0, (expiry - now).total_seconds() / YEAR_SECONDS)


def _option(
    p: WatchPosition, inst: Instrument, now: datetime, assets: AssetMap, warnings: Warnings
) -> Position:
    assert inst.expiry is not None and inst.strike is not None and inst.option_type is not None
    iv = implied_vol(
        float(p.mark_price),
        float(p.index_price),
        float(inst.strike),
        _years(inst.expiry, now),
        inst.option_type == "call",
    )
    if iv is None:
        warnings.append(f"{VENUE}: {p.instrument_name}: no implied vol for mark {p.mark_price}; IV set to 0")
    return marked_position(
        assets, inst.underlying, token=p.instrument_name, quantity=p.amount, mark=p.mark_price,
        venue=VENUE, warnings=warnings,
        option=OptionParams(
            strike=inst.strike,
            expiry=inst.expiry,
            option_type=inst.option_type,
            mark_iv=Decimal(repr(iv)) if iv is not None else Decimal(0),
            underlying_price=p.index_price,
        ),
    )


def _perp(p: WatchPosition, inst: Instrument, assets: AssetMap, warnings: Warnings) -> Position:
    notional = abs(p.amount) * p.mark_price
    fraction = (
        abs(p.maintenance_margin) / notional if p.maintenance_margin != 0 and notional > 0 else SM_PERP_MM
    )
    return marked_position(
        assets, inst.underlying, token=p.instrument_name, quantity=p.amount, mark=p.mark_price,
        venue=VENUE, warnings=warnings,
        perp=PerpParams(
            entry_price=p.mark_price - p.mark_value / p.amount,
            margin_tiers=(MarginTier(Decimal(0), min(fraction, Decimal(1))),),
            oracle_price=p.index_price,
        ),
    )


def margin_model_for(mw: MarginWatch, warnings: Warnings) -> MarginModel:
    """The model of the subaccount's ``margin_type`` (module docstring)."""
    if mw.margin_type == "SM":
        factors = []
        for c in mw.collaterals:
            if c.asset_name == SETTLEMENT or c.mark_value <= 0:
                continue
            haircut = abs(c.maintenance_margin or Decimal(0)) / c.mark_value
            factors.append((c.asset_name, min(Decimal(1), max(Decimal(0), 1 - haircut))))
        for p in mw.positions:
            if p.instrument_type == "erc20" and p.mark_value > 0:
                haircut = abs(p.maintenance_margin) / p.mark_value
                factors.append((p.instrument_name, min(Decimal(1), max(Decimal(0), 1 - haircut))))
        return DeriveStandardModel(
            call_spot=SM_CALL_SPOT,
            put_spot=SM_PUT_SPOT,
            put_mtm=SM_PUT_MTM,
            unpaired_scale=SM_UNPAIRED_SCALE,
            base_margin_factors=tuple(factors),
            cash_token=SETTLEMENT,
        )
    if mw.margin_type != "PM":
        warnings.append(
            f"{VENUE}: subaccount {mw.subaccount_id}: margin type {mw.margin_type!r} is modelled with "
            "the PM1 grid; the venue's own health is authoritative"
        )
    return PM_MODEL


def margin_watch_account(mw: MarginWatch, *, wallet: str, deployment: str, assets: AssetMap) -> MarginAccount:
    """One subaccount; equity (sum of position values) equals ``subaccount_value``."""
    warnings: Warnings = []
    as_of = as_of_seconds(mw.valuation_timestamp)
    now = as_of.timestamp
    positions: list[Position] = []
    cash = Decimal(0)
    greeks: dict[str, dict[str, str | None]] = {}
    for c in mw.collaterals:
        if c.asset_name == SETTLEMENT:
            cash += c.amount
            continue
        positions.append(
            spot_position(assets, c.asset_name, c.amount, c.mark_price, venue=VENUE, warnings=warnings)
        )
    for p in mw.positions:
        if p.amount == 0:
            continue
        if p.instrument_type == "erc20":
            positions.append(
                spot_position(
                    assets, p.instrument_name, p.amount, p.mark_price, venue=VENUE, warnings=warnings
                )
            )
            continue
        inst = parse_instrument(p.instrument_name)
        if inst.kind != p.instrument_type:
            raise VenueDataError(f"{p.instrument_name} is typed {p.instrument_type}", venue=VENUE)
        if inst.kind == "perp":
            positions.append(_perp(p, inst, assets, warnings))
            cash += p.mark_value - p.amount * p.mark_price
        else:
            positions.append(_option(p, inst, now, assets, warnings))
        greeks[p.instrument_name] = greeks_raw(delta=p.delta, gamma=p.gamma, vega=p.vega, theta=p.theta)
    positions.insert(0, cash_position(assets, SETTLEMENT, cash, VENUE, warnings))
    requirement = mw.subaccount_value - mw.maintenance_margin
    health = Decimal("Infinity") if requirement <= 0 else mw.subaccount_value / requirement
    return MarginAccount(
        venue=VENUE,
        deployment=deployment,
        account_id=f"{wallet}/{mw.subaccount_id}",
        wallet=wallet,
        margin_model=margin_model_for(mw, warnings),
        positions=tuple(positions),
        as_of=as_of,
        venue_health=health,
        raw={
            "warnings": warnings,
            "margin_type": mw.margin_type,
            "subaccount_value": str(mw.subaccount_value),
            "maintenance_margin": str(mw.maintenance_margin),
            "initial_margin": str(mw.initial_margin),
            "greeks": greeks,
        },
    )


class DeriveAdapter(HttpVenueAdapter):
    """Lists each wallet's subaccounts (config first, else ``public/get_subaccounts``), then reads
    ``public/margin_watch`` for each."""

    family = VENUE
    margin_model = MODEL
    capabilities = frozenset({"venue_health", "greeks", "options"})

    async def _rpc(self, method: str, params: dict[str, object]) -> object:
        response = await self.http.post(f"/public/{method}", params)
        assert response is not None
        return response.body

    async def _subaccount_ids(self, wallet: str) -> tuple[int, ...]:
        configured = {k.lower(): v for k, v in self.venue_spec.subaccounts.items()}
        if wallet.lower() in configured:
            return configured[wallet.lower()]
        try:
            return tuple(parse_subaccount_ids(await self._rpc("get_subaccounts", {"wallet": wallet})))
        except VenueUnavailable as exc:
            if "HTTP 404" in str(exc) or "error -32601" in str(exc):
                raise VenueNotConfigured(
                    "the venue cannot list subaccounts here (v2 needs auth): set "
                    f"[venues.derive].subaccounts for {wallet}",
                    venue=self.deployment,
                ) from None
            raise

    async def _read_wallet(self, wallet: ChecksumAddress) -> list[MarginAccount]:
        accounts = []
        for subaccount_id in await self._subaccount_ids(wallet):
            mw = parse_margin_watch(await self._rpc("margin_watch", {"subaccount_id": subaccount_id}))
            try:
                accounts.append(
                    margin_watch_account(
                        mw, wallet=wallet, deployment=self.deployment, assets=self.context.assets
                    )
                )
            except RiskInputError as exc:
                raise VenueDataError(f"subaccount {subaccount_id}: {exc}", venue=VENUE) from None
        return accounts

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        return await self.read_each_wallet(wallets, self._read_wallet)
