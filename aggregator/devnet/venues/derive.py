"""Derive JSON-RPC-over-HTTP routes: ``POST /public/get_subaccounts {wallet}`` (v3 style) and
``POST /public/margin_watch {subaccount_id}``, answering ``{"id", "result": {...}}`` in the documented
shapes (perps_options.md §4.2), computed from the state.

Rules (Standard Manager, derivexyz/v2-core 2023 mainnet config, perps_options.md §4.4): option marks
are Black-76 at the position's IV with the index as forward (zero rate); a perp's ``mark_value`` is its
unsettled PnL ``amount * (index - avg_price)``; requirements: perp ``0.05 * |amount| * index``, short call
``0.10 * index * |amount|``, short put ``max(0.10 * index * |amount|, 0.10 * |mtm|)``, longs none, non-USDC
collateral discounted 25%. ``maintenance_margin = subaccount_value - sum(requirements)`` (NET; < 0 =
liquidatable). ``initial_margin`` likewise with perp 0.065 and short options
``max(0.15 - OTM%, 0.12) * index * |amount|``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.derive import black76_price, parse_instrument
from aggregator.devnet.venues.common import BadRequest, fmt, serve, state_of
from aggregator.devnet.venues.state import DerivePosition, DeriveSubaccount, VenueState

__all__ = ["get_subaccounts", "margin_watch", "margin_watch_result"]

YEAR_SECONDS = 365.0 * 24 * 3600
MM_PERP, IM_PERP = Decimal("0.05"), Decimal("0.065")
MM_SPOT_REQ, MM_PUT_MTM_REQ = Decimal("0.10"), Decimal("0.10")
IM_MAX_SPOT, IM_MIN_SPOT = Decimal("0.15"), Decimal("0.12")
BASE_COLLATERAL_HAIRCUT = Decimal("0.25")


def _greeks(forward: float, strike: float, years: float, vol: float, call: bool) -> dict[str, float]:
    import math

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


def _position(state: VenueState, p: DerivePosition, now: datetime) -> tuple[dict[str, Any], Decimal, Decimal]:
    """The margin_watch position item, its maintenance and initial requirements (>= 0)."""
    inst = parse_instrument(p.instrument)
    index = state.price(inst.underlying)
    amount = p.amount
    if inst.kind == "perp":
        mark = state.mark(inst.underlying)
        value = amount * (mark - p.avg_price)
        mm, im = abs(amount) * index * MM_PERP, abs(amount) * index * IM_PERP
        greeks = {"delta": 1.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0}
    else:
        assert inst.expiry is not None and inst.strike is not None
        call = inst.option_type == "call"
        years = max(0.0, (inst.expiry - now).total_seconds() / YEAR_SECONDS)
        mark = Decimal(repr(black76_price(float(index), float(inst.strike), years, float(p.iv), call)))
        value = amount * mark
        greeks = _greeks(float(index), float(inst.strike), years, float(p.iv), call)
        mm = im = Decimal(0)
        if amount < 0:
            otm = max(Decimal(0), (inst.strike - index) / index if call else (index - inst.strike) / index)
            spot_req = abs(amount) * index * MM_SPOT_REQ
            mm = spot_req if call else max(spot_req, MM_PUT_MTM_REQ * abs(value))
            im = max(abs(amount) * index * max(IM_MAX_SPOT - otm, IM_MIN_SPOT), mm)
    item = {
        "instrument_name": p.instrument,
        "instrument_type": inst.kind,
        "amount": fmt(amount, 6),
        "mark_price": fmt(mark, 8),
        "mark_value": fmt(value, 8),
        "index_price": fmt(index, 8),
        "delta": fmt(Decimal(repr(greeks["delta"])), 8),
        "gamma": fmt(Decimal(repr(greeks["gamma"])), 10),
        "vega": fmt(Decimal(repr(greeks["vega"])), 8),
        "theta": fmt(Decimal(repr(greeks["theta"])), 8),
        "initial_margin": fmt(-im, 8),
        "maintenance_margin": fmt(-mm, 8),
        "liquidation_price": None,
    }
    return item, mm, im


def margin_watch_result(state: VenueState, sub: DeriveSubaccount, now: datetime) -> dict[str, Any]:
    value, mm_total, im_total = Decimal(0), Decimal(0), Decimal(0)
    collaterals = []
    for asset, amount in sorted(sub.collaterals.items()):
        price = Decimal(1) if asset == "USDC" else state.price(asset)
        haircut = Decimal(0) if asset == "USDC" else amount * price * BASE_COLLATERAL_HAIRCUT
        value += amount * price
        mm_total += haircut
        im_total += haircut
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
    positions = []
    for p in sub.positions:
        item, mm, im = _position(state, p, now)
        positions.append(item)
        value += Decimal(item["mark_value"])
        mm_total += mm
        im_total += im
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
