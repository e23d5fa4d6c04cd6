"""Derive JSON-RPC-over-HTTP routes: ``POST /public/get_subaccounts {wallet}`` (v3 style) and
``POST /public/margin_watch {subaccount_id}``, answering ``{"id", "result": {...}}`` in the documented
shapes (perps_options.md §4.2), computed from the state.

Marks: an option's mark is Black-76 at the position's IV with the index as forward (zero rate, time
from now to 08:00 UTC on the expiry date); a perp's ``mark_value`` is its unsettled PnL
``amount * (mark - avg_price)``; ``subaccount_value`` = USDC + base collateral at the index + every
position's ``mark_value``. ``maintenance_margin`` is NET (``subaccount_value - requirement``; < 0 =
liquidatable), by the subaccount's ``margin_type``:

- ``"SM"`` (Standard Manager, derivexyz/v2-core ``StandardManager.sol``; docs.derive.xyz "Standard
  Margin"): requirement = perps ``MM_PERP * |amount| * mark`` (the contract's perp price; the docs
  table words it "of the spot price") + base collateral ``(1 - BASE_MARGIN_FACTOR) * value`` + per
  expiry ``min(isolated, mtm - max_loss)``: isolated sums the shorts' ``MM_CALL_SPOT * index *
  |amount|`` (call) and ``max(MM_PUT_SPOT * index * |amount|, MM_PUT_MTM * |mark_value|)`` (put);
  ``max_loss = min(0, min over settlement prices {0, strikes} of the expiry's payoff) +
  UNPAIRED_MM_SCALE * index * net_calls`` (when the net call amount is short). Parameters: v2-core
  2023 mainnet config (option fractions 0.10, perp 0.05, base factor 0.75), unpaired scale 1.1
  (later config); the option fractions and unpaired scale are ``adapters.derive``'s ``SM_*`` (the
  venue does not serve them). ``initial_margin``: perp 0.065, short options
  ``max(0.15 - OTM%, 0.12) * index * |amount|`` (puts at least their MM), isolated only.
- ``"PM"`` (PM1, ``PMRMLib.sol`` reduced): requirement ``= max(0, -min over the PM1 grid of the
  change in value)``, grid = spot x {0.85 .. 1.15 step 0.05} x vol {down 30%, none, up 45%} scaled
  by ``(30 / max(DTE, 1))^p`` (p 0.30 under 30 days, else 0.13), perps and base collateral moving
  linearly, options repriced with Black-76 (``adapters.derive.PM_MODEL``). Simplified: no basis,
  static or other contingency, no static discount of positive option values; ``initial_margin``
  is 1.3 x that.
- any other type (``"PM2"``): served with the PM rule above (a stand-in; PM2's grid is not public).

Per-position / collateral ``maintenance_margin`` items are each one's own requirement, negated (SM:
the isolated figure, before the expiry's max-loss offset; PM: 0).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.derive import (
    PM_MODEL,
    SM_CALL_SPOT,
    SM_PUT_MTM,
    SM_PUT_SPOT,
    SM_UNPAIRED_SCALE,
    Instrument,
    black76_price,
    parse_instrument,
)
from aggregator.devnet.venues.common import BadRequest, fmt, serve, state_of, years_to
from aggregator.devnet.venues.state import DerivePosition, DeriveSubaccount, VenueState

__all__ = ["get_subaccounts", "margin_watch", "margin_watch_result"]

MM_PERP, IM_PERP = Decimal("0.05"), Decimal("0.065")
IM_MAX_SPOT, IM_MIN_SPOT = Decimal("0.15"), Decimal("0.12")
BASE_MARGIN_FACTOR = Decimal("0.75")
PM_IM_FACTOR = Decimal("1.3")


@dataclass(frozen=True)
class _Leg:
    """One position as the margin rules see it."""

    inst: Instrument
    amount: Decimal
    index: Decimal
    mark: Decimal
    value: Decimal  # mark_value
    years: float
    iv: float


def _greeks(forward: float, strike: float, years: float, vol: float, call: bool) -> dict[str, float]:
    if years <= 0 or vol <= 0:
        itm = (forward > strike) if call else (forward < strike)
        return {"delta": (1.0 if call else -1.0) if itm else 0.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0}
    s = vol * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * s * s) / s
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(d1 / math.sqrt(2)))
    return {
        "delta": cdf if call else cdf - 1.0,
        "gamma": pdf / (forward * s),
        "vega": forward * pdf * math.sqrt(years) / 100,
        "theta": -forward * pdf * vol / (2 * math.sqrt(years)) / 365,
    }


def _leg(state: VenueState, p: DerivePosition, now: datetime) -> _Leg:
    inst = parse_instrument(p.instrument)
    index = state.price(inst.underlying)
    if inst.kind == "perp":
        mark = state.mark(inst.underlying)
        return _Leg(inst, p.amount, index, mark, p.amount * (mark - p.avg_price), 0.0, 0.0)
    assert inst.expiry is not None and inst.strike is not None
    years = years_to(inst.expiry, now)
    call = inst.option_type == "call"
    # the served decimals are what the venue's figures are computed from
    price = black76_price(float(index), float(inst.strike), years, float(p.iv), call)
    mark = Decimal(fmt(Decimal(repr(price)), 8))
    return _Leg(inst, p.amount, index, mark, p.amount * mark, years, float(p.iv))


def _isolated(leg: _Leg) -> tuple[Decimal, Decimal]:
    """SM maintenance and initial requirement (>= 0) of one position on its own."""
    amount, index = leg.amount, leg.index
    if leg.inst.kind == "perp":
        return abs(amount) * leg.mark * MM_PERP, abs(amount) * leg.mark * IM_PERP
    if amount >= 0:
        return Decimal(0), Decimal(0)
    assert leg.inst.strike is not None
    strike, call = leg.inst.strike, leg.inst.option_type == "call"
    spot_req = abs(amount) * index * (SM_CALL_SPOT if call else SM_PUT_SPOT)
    mm = spot_req if call else max(spot_req, SM_PUT_MTM * abs(leg.value))
    otm = max(Decimal(0), (strike - index) / index if call else (index - strike) / index)
    im = abs(amount) * index * max(IM_MAX_SPOT - otm, IM_MIN_SPOT)
    return mm, (im if call else max(im, mm))


def _payoff(legs: list[_Leg], price: Decimal) -> Decimal:
    total = Decimal(0)
    for leg in legs:
        assert leg.inst.strike is not None
        diff = price - leg.inst.strike if leg.inst.option_type == "call" else leg.inst.strike - price
        total += leg.amount * max(diff, Decimal(0))
    return total


def _sm_expiry(legs: list[_Leg]) -> Decimal:
    """``min(isolated, mtm - max_loss)`` of one (underlying, expiry) group (module docstring)."""
    isolated = sum((_isolated(leg)[0] for leg in legs), Decimal(0))
    mtm = sum((leg.value for leg in legs), Decimal(0))
    prices = [Decimal(0)] + [leg.inst.strike for leg in legs if leg.inst.strike is not None]
    max_loss = min(Decimal(0), *(_payoff(legs, p) for p in prices))
    net_calls = sum((leg.amount for leg in legs if leg.inst.option_type == "call"), Decimal(0))
    if net_calls < 0:
        forward = next(leg.index for leg in legs if leg.inst.option_type == "call")
        max_loss += SM_UNPAIRED_SCALE * forward * net_calls
    return min(isolated, mtm - max_loss)


def _sm_requirement(legs: list[_Leg], base_value: Decimal) -> tuple[Decimal, Decimal]:
    mm = im = (1 - BASE_MARGIN_FACTOR) * base_value
    groups: dict[tuple[str, datetime | None], list[_Leg]] = {}
    for leg in legs:
        if leg.inst.kind == "perp":
            perp_mm, perp_im = _isolated(leg)
            mm, im = mm + perp_mm, im + perp_im
        else:
            groups.setdefault((leg.inst.underlying, leg.inst.expiry), []).append(leg)
            im += _isolated(leg)[1]
    for group in groups.values():
        mm += _sm_expiry(group)
    return mm, im


def _pm_requirement(legs: list[_Leg], base: list[tuple[Decimal, Decimal]]) -> Decimal:
    """PM1 grid (module docstring): ``max(0, -min change in value)``; ``base`` = (amount, index)."""
    worst = 0.0
    for x in PM_MODEL.spot_shocks:
        for v in PM_MODEL.vol_shocks:
            change = sum(float(amount * index * x) for amount, index in base)
            for leg in legs:
                if leg.inst.kind == "perp":
                    change += float(leg.amount * leg.mark * x)
                    continue
                assert leg.inst.strike is not None
                dte = leg.years * 365.0
                power = PM_MODEL.vega_power_short if dte < 30.0 else PM_MODEL.vega_power_long
                scale = (30.0 / max(dte, 1.0)) ** float(power)
                vol = leg.iv * max(0.0, 1.0 + float(v) * scale)
                call = leg.inst.option_type == "call"
                f, k = float(leg.index), float(leg.inst.strike)
                shocked = black76_price(f * (1.0 + float(x)), k, leg.years, vol, call)
                change += float(leg.amount) * (shocked - black76_price(f, k, leg.years, leg.iv, call))
            worst = min(worst, change)
    return Decimal(repr(-worst))


def margin_watch_result(state: VenueState, sub: DeriveSubaccount, now: datetime) -> dict[str, Any]:
    now = now.replace(microsecond=0)  # valuation_timestamp is whole seconds: value at that instant
    value = Decimal(0)
    collaterals = []
    base_value = Decimal(0)
    base: list[tuple[Decimal, Decimal]] = []
    sm = sub.margin_type == "SM"
    for asset, amount in sorted(sub.collaterals.items()):
        price = Decimal(1) if asset == "USDC" else state.price(asset)
        haircut = Decimal(0) if asset == "USDC" or not sm else amount * price * (1 - BASE_MARGIN_FACTOR)
        value += amount * price
        if asset != "USDC":
            base_value += amount * price
            base.append((amount, price))
        collaterals.append(
            {
                "asset_name": asset,
                "asset_type": "erc20",
                "amount": fmt(amount, 8),
                "mark_price": fmt(price, 8),
                "mark_value": fmt(amount * price, 8),
                "initial_margin": fmt(-haircut, 8),
                "maintenance_margin": fmt(-haircut, 8),
            }
        )
    legs = []
    positions = []
    for p in sub.positions:
        leg = _leg(state, p, now)
        legs.append(leg)
        value += leg.value
        if leg.inst.kind == "perp":
            greeks = {"delta": 1.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0}
        else:
            assert leg.inst.strike is not None
            call = leg.inst.option_type == "call"
            greeks = _greeks(float(leg.index), float(leg.inst.strike), leg.years, leg.iv, call)
        mm, im = _isolated(leg) if sm else (Decimal(0), Decimal(0))
        positions.append(
            {
                "instrument_name": p.instrument,
                "instrument_type": leg.inst.kind,
                "amount": fmt(leg.amount, 6),
                "mark_price": fmt(leg.mark, 8),
                "mark_value": fmt(leg.value, 8),
                "index_price": fmt(leg.index, 8),
                "delta": fmt(Decimal(repr(greeks["delta"])), 8),
                "gamma": fmt(Decimal(repr(greeks["gamma"])), 10),
                "vega": fmt(Decimal(repr(greeks["vega"])), 8),
                "theta": fmt(Decimal(repr(greeks["theta"])), 8),
                "initial_margin": fmt(-im, 8),
                "maintenance_margin": fmt(-mm, 8),
                "liquidation_price": None,
            }
        )
    if sm:
        mm_total, im_total = _sm_requirement(legs, base_value)
    else:
        mm_total = _pm_requirement(legs, base)
        im_total = PM_IM_FACTOR * mm_total
    return {
        "subaccount_id": sub.id,
        "currency": "USDC",
        "margin_type": sub.margin_type,
        "subaccount_value": fmt(value, 8),
        "initial_margin": fmt(value - im_total, 8),
        "maintenance_margin": fmt(value - mm_total, 8),
        "valuation_timestamp": int(now.timestamp()),
        "positions": positions,
        "collaterals": collaterals,
    }


async def _params(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def margin_watch(request: Request) -> Response:
    state = state_of(request)
    params = await _params(request)

    def build() -> Any:
        subaccount_id = params.get("subaccount_id")
        if not isinstance(subaccount_id, int):
            raise BadRequest("subaccount_id: expected an integer")
        with state.lock:
            sub = state.derive_subaccounts.get(subaccount_id)
            if sub is None:
                return {"id": 1, "error": {"code": 14001, "message": f"Subaccount {subaccount_id} not found"}}
            return {
                "id": 1,
                "result": margin_watch_result(state, sub, datetime.fromtimestamp(time.time(), UTC)),
            }

    return await serve(request, "derive", build)


async def get_subaccounts(request: Request) -> Response:
    state = state_of(request)
    params = await _params(request)

    def build() -> Any:
        wallet = params.get("wallet")
        if not isinstance(wallet, str):
            raise BadRequest("wallet: expected an address string")
        with state.lock:
            ids = sorted(
                s.id for s in state.derive_subaccounts.values() if s.wallet.lower() == wallet.lower()
            )
        return {"id": 1, "result": {"wallet": wallet, "subaccount_ids": ids}}

    return await serve(request, "derive", build)
