"""Admin API under ``/_devnet/`` (documented in the package docstring): prices, seeding, faults, state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.derive import parse_instrument
from adapters.errors import VenueDataError
from aggregator.devnet.venues.common import (
    BadRequest,
    answer,
    dec,
    fmt,
    json_body,
    set_fault,
    state_of,
    with_body,
)
from aggregator.devnet.venues.state import (
    VENUES,
    DerivePosition,
    DeriveSubaccount,
    DydxPosition,
    DydxSubaccount,
    GmxToken,
    HlPosition,
    HlWallet,
    VenueState,
)

__all__ = ["fault", "price", "reset", "seed", "snapshot"]


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadRequest(f"{key}: expected a list of objects")
    return value


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key}: expected a non-empty string")
    return value


def _seed_hyperliquid(state: VenueState, body: dict[str, Any]) -> dict[str, Any]:
    wallet = _str(body, "wallet").lower()
    coins = {m.name for m in state.hl_markets}
    positions = []
    for i, p in enumerate(_list(body, "positions")):
        coin = _str(p, "coin")
        if coin not in coins:
            raise BadRequest(f"positions.{i}.coin: {coin} is not a market ({sorted(coins)})")
        isolated = bool(p.get("isolated", False))
        positions.append(
            HlPosition(
                coin=coin,
                szi=dec(p.get("szi"), f"positions.{i}.szi"),
                entry_px=dec(p.get("entryPx"), f"positions.{i}.entryPx"),
                leverage=int(p.get("leverage", 10)),
                isolated=isolated,
                isolated_margin=dec(p.get("margin", 0), f"positions.{i}.margin") if isolated else Decimal(0),
            )
        )
    mode = str(body.get("mode", "default"))
    spot = {str(k): dec(v, f"spot.{k}") for k, v in dict(body.get("spot", {})).items()}
    with state.lock:
        state.hl_wallets[wallet] = HlWallet(
            usdc=dec(body.get("usdc", 0), "usdc"), positions=positions, mode=mode, spot=spot
        )
    return {"wallet": wallet, "positions": len(positions)}


def _seed_dydx(state: VenueState, body: dict[str, Any]) -> dict[str, Any]:
    address = _str(body, "address")
    tickers = {m.ticker for m in state.dydx_markets}
    subs: dict[int, DydxSubaccount] = {}
    for i, s in enumerate(_list(body, "subaccounts")):
        number = int(s.get("number", 0))
        positions = []
        for j, p in enumerate(_list(s, "positions")):
            ticker = _str(p, "ticker")
            if ticker not in tickers:
                raise BadRequest(f"subaccounts.{i}.positions.{j}.ticker: {ticker} is not a market")
            positions.append(
                DydxPosition(
                    ticker,
                    dec(p.get("size"), "size"),
                    dec(p.get("entryPrice"), "entryPrice"),
                    dec(p.get("netFunding", 0), "netFunding"),
                )
            )
        subs[number] = DydxSubaccount(
            number=number, usdc=dec(s.get("usdc", 0), f"subaccounts.{i}.usdc"), positions=positions
        )
    with state.lock:
        if subs:
            state.dydx_addresses[address] = subs
        else:
            state.dydx_addresses.pop(address, None)
    return {"address": address, "subaccounts": sorted(subs)}


def _seed_derive(state: VenueState, body: dict[str, Any]) -> dict[str, Any]:
    wallet = _str(body, "wallet")
    subs = []
    for i, s in enumerate(_list(body, "subaccounts")):
        positions = []
        for j, p in enumerate(_list(s, "positions")):
            name = _str(p, "instrument")
            try:
                inst = parse_instrument(name)
            except VenueDataError as exc:
                raise BadRequest(f"subaccounts.{i}.positions.{j}.instrument: {exc}") from None
            if inst.underlying not in state.prices:
                raise BadRequest(f"subaccounts.{i}.positions.{j}: no price for {inst.underlying}")
            positions.append(
                DerivePosition(
                    name,
                    dec(p.get("amount"), "amount"),
                    dec(p.get("avg_price", 0), "avg_price"),
                    dec(p.get("iv", "0.6"), "iv"),
                )
            )
        collaterals = {str(k): dec(v, f"collaterals.{k}") for k, v in dict(s.get("collaterals", {})).items()}
        subs.append(
            DeriveSubaccount(
                id=int(s["id"]),
                wallet=wallet,
                margin_type=str(s.get("margin_type", "SM")),
                collaterals=collaterals,
                positions=positions,
            )
        )
    with state.lock:
        for old in [k for k, v in state.derive_subaccounts.items() if v.wallet.lower() == wallet.lower()]:
            del state.derive_subaccounts[old]
        for sub in subs:
            state.derive_subaccounts[sub.id] = sub
    return {"wallet": wallet, "subaccounts": [s.id for s in subs]}


def _seed_gmx(state: VenueState, body: dict[str, Any]) -> dict[str, Any]:
    tokens = tuple(
        GmxToken(_str(t, "address"), _str(t, "symbol"), int(t["decimals"]), _str(t, "factor"))
        for t in _list(body, "tokens")
    )
    with state.lock:
        if tokens:
            state.gmx_tokens = tokens
        state.gmx_spread = dec(body.get("spread", state.gmx_spread), "spread")
    return {"tokens": len(state.gmx_tokens)}


SEEDERS = {"hyperliquid": _seed_hyperliquid, "dydx_v4": _seed_dydx, "derive": _seed_derive, "gmx": _seed_gmx}


async def price(request: Request) -> Response:
    state = state_of(request)

    def run(body: dict[str, Any]) -> dict[str, Any]:
        factor = _str(body, "factor")
        value = dec(body.get("price"), "price")
        if value <= 0:
            raise BadRequest("price must be > 0")
        mark = dec(body["mark"], "mark") if body.get("mark") is not None else None
        state.set_price(factor, value, mark)
        return {"factor": factor, "price": fmt(value), "mark": fmt(mark) if mark is not None else None}

    return await with_body(request, run)


async def seed(request: Request) -> Response:
    state = state_of(request)
    venue = request.path_params["venue"]
    if venue not in SEEDERS:
        return JSONResponse({"error": f"unknown venue {venue!r} (one of {sorted(SEEDERS)})"}, status_code=404)
    try:
        body = await json_body(request)
    except BadRequest as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return answer(lambda: SEEDERS[venue](state, body))


async def fault(request: Request) -> Response:
    state = state_of(request)
    return await with_body(request, lambda body: set_fault(state, body, _str(body, "venue"), VENUES))


async def reset(request: Request) -> Response:
    state = state_of(request)
    fresh = VenueState()
    with state.lock:
        for name in (
            "prices",
            "marks",
            "faults",
            "hl_wallets",
            "dydx_addresses",
            "derive_subaccounts",
            "gmx_tokens",
            "gmx_spread",
        ):
            setattr(state, name, getattr(fresh, name))
    return JSONResponse({"reset": True})


async def snapshot(request: Request) -> Response:
    state = state_of(request)
    with state.lock:
        return JSONResponse(
            {
                "prices": {k: fmt(v) for k, v in state.prices.items()},
                "marks": {k: fmt(v) for k, v in state.marks.items()},
                "faults": {k: {"mode": f.mode, "times": f.times} for k, f in state.faults.items()},
                "hyperliquid": sorted(state.hl_wallets),
                "dydx_v4": sorted(state.dydx_addresses),
                "derive": sorted(state.derive_subaccounts),
            }
        )
