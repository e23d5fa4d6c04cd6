"""Aevo REST routes, and the app serving the credentialed venues (Aevo at the root, Deribit under
``/api/v2``) with their admin API. It runs apart from the main venue app (``app.py``): its own
``VenueState`` (prices, faults for ``aevo`` / ``deribit``) and its own port.

Aevo routes (documented shapes, decimal strings): ``GET /account`` and ``GET /positions`` need the
headers ``AEVO-KEY`` + ``AEVO-SECRET`` of a seeded key (else HTTP 401 ``{"error": "UNAUTHORIZED"}``);
``GET /index?asset=ETH`` is public: ``{"price", "timestamp"}`` (ns). A key seeded without balance
and positions answers an empty account.

Devnet margin rules: Aevo's documented standard margin (docs.aevo.xyz options-specifications/
standard-margin, perps_options.md §5) for options, written out here apart from ``adapters.aevo``:
short call MM ``(0.1 * index + mark) * |q|``, short put ``(max(0.1 * index, 0.1 * mark) + mark) *
|q|``, longs none; short options IM ``(max(0.15 - OTM/index, 0.10) * index + mark) * |q|`` (puts: at
least the MM). Perps: ``0.03 * |q| * mark`` (IM 0.05) -- OUR ASSUMPTION (no Aevo perp formula was
captured; each position reports its own ``maintenance_margin``, which the adapter reads). ``equity =
USDC + perp unrealized PnL + options value``; ``in_liquidation = equity < maintenance``. Remaining
simplifications: option marks are Black-76 on the index (zero rate); ``portfolio`` is always false
(no portfolio margin); no funding, fees or isolated margin; greeks are placeholders.

Clock: option time to expiry and ``/index`` timestamps use ``deribit.now_of`` (the wall clock, or
the instant ``POST /_devnet/clock`` froze it at), so two reads can see the same marks.

Admin (``/_devnet/``): ``price`` (as the main app); ``clock {"freeze": true}`` (freeze at the
current wall time), ``{"at": "<ISO 8601>"}`` or ``{"freeze": false}`` (run again; ``reset`` too);
``seed/aevo {"api_key", "api_secret", "account", "usdc", "positions": [{"instrument": "ETH-PERP" |
"ETH-27DEC26-3500-C", "amount": -2, "avg_entry_price"?, "iv"?}]}``, ``seed/deribit`` (see
``deribit.seed``), ``fault {"venue": "aevo" | "deribit", ...}`` (modes as the main app),
``deribit/expire`` (revoke tokens), ``reset``, ``state``.

Run: ``python -m aggregator.devnet.venues.aevo --port N [--exit-with PID]``; in tests ``with
CredVenueServer() as s``. ``--exit-with`` makes the server stop on its own once that process is gone
(the devnet passes its anvil's PID, so ``crossmargin devnet down`` also ends this server).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.derive import black76_price
from aggregator.devnet.venues import admin, deribit
from aggregator.devnet.venues.common import (
    BadRequest,
    answer,
    dec,
    expiry_ddmmmyy,
    fmt,
    json_body,
    serve,
    set_fault,
    state_of,
    with_body,
    years_to,
)
from aggregator.devnet.venues.server import AppServer, uvicorn_config
from aggregator.devnet.venues.state import Fault, VenueState

__all__ = ["AevoKey", "AevoPosition", "AevoState", "CredVenueServer", "create_app", "main"]

CRED_VENUES = ("aevo", "deribit")
_OPTION = re.compile(r"^(?P<u>[A-Z]+)-(?P<d>\d{1,2}[A-Z]{3}\d{2})-(?P<k>\d+)-(?P<t>[CP])$")
_PERP = re.compile(r"^(?P<u>[A-Z]+)-PERP$")


@dataclass
class AevoPosition:
    instrument: str
    amount: Decimal  # signed
    avg_entry_price: Decimal = Decimal(0)
    iv: Decimal = Decimal("0.6")


@dataclass
class AevoKey:
    api_key: str
    api_secret: str
    account: str
    usdc: Decimal = Decimal(0)
    positions: list[AevoPosition] = field(default_factory=list)


@dataclass
class AevoState:
    keys: dict[str, AevoKey] = field(default_factory=dict)


def _fresh_venue_state() -> VenueState:
    state = VenueState()
    for venue in CRED_VENUES:
        state.faults[venue] = Fault()
    return state


def _parse(name: str) -> tuple[str, datetime | None, Decimal | None, bool | None]:
    """(asset, expiry, strike, call) of ``ETH-PERP`` / ``ETH-27DEC26-3500-C``."""
    if m := _PERP.match(name):
        return m["u"], None, None, None
    if m := _OPTION.match(name):
        return m["u"], expiry_ddmmmyy(m["d"]), Decimal(m["k"]), m["t"] == "C"
    raise BadRequest(f"instrument {name!r} is neither ASSET-PERP nor ASSET-DDMMMYY-STRIKE-C/P")


def _position(
    state: VenueState, p: AevoPosition, now: datetime
) -> tuple[dict[str, Any], Decimal, Decimal, Decimal]:
    """(item, equity contribution, maintenance, initial)."""
    asset, expiry, strike, call = _parse(p.instrument)
    index = state.price(asset)
    q = p.amount
    side = "buy" if q > 0 else "sell"
    item: dict[str, Any] = {
        "instrument_id": str(abs(hash(p.instrument)) % 100000),
        "instrument_name": p.instrument,
        "asset": asset,
        "amount": fmt(abs(q), 6),
        "side": side,
        "avg_entry_price": fmt(p.avg_entry_price, 6),
        "adl_rank": "na",
    }
    if expiry is None:
        mark = state.mark(asset)
        value = q * (mark - p.avg_entry_price)
        mm, im = Decimal("0.03") * abs(q) * mark, Decimal("0.05") * abs(q) * mark
        item |= {
            "instrument_type": "PERPETUAL",
            "margin_type": "CROSS",
            "leverage": "10",
            "liquidation_price": None,
            "unrealized_pnl": fmt(value, 6),
        }
    else:
        assert strike is not None and call is not None
        years = years_to(expiry, now)
        mark = Decimal(repr(black76_price(float(index), float(strike), years, float(p.iv), call))).quantize(
            Decimal("1e-6")
        )
        value = q * mark
        mm = im = Decimal(0)
        if q < 0:
            base = Decimal("0.1") * index if call else max(Decimal("0.1") * index, Decimal("0.1") * mark)
            mm = (base + mark) * abs(q)
            otm = max(Decimal(0), (strike - index) / index if call else (index - strike) / index)
            im = max((max(Decimal("0.15") - otm, Decimal("0.10")) * index + mark) * abs(q), mm)
        item |= {
            "instrument_type": "OPTION",
            "unrealized_pnl": fmt(q * (mark - p.avg_entry_price), 6),
            "option": {
                "strike": fmt(strike, 6),
                "option_type": "call" if call else "put",
                "expiry": str(int(expiry.timestamp()) * 1_000_000_000),
                "iv": fmt(p.iv, 6),
                "delta": "0.5",
                "gamma": "0",
                "theta": "0",
                "vega": "0",
                "rho": "0",
            },
        }
    item |= {"mark_price": fmt(mark, 6), "maintenance_margin": fmt(mm, 6), "initial_margin": fmt(im, 6)}
    return item, value, mm, im


def account_body(state: VenueState, key: AevoKey, now: datetime) -> dict[str, Any]:
    positions, equity, mm, im = [], key.usdc, Decimal(0), Decimal(0)
    for p in key.positions:
        item, value, m, i = _position(state, p, now)
        positions.append(item)
        equity, mm, im = equity + value, mm + m, im + i
    return {
        "account": key.account,
        "username": "devnet",
        "account_type": "STANDARD",
        "equity": fmt(equity, 6),
        "balance": fmt(key.usdc, 6),
        "available_balance": fmt(equity - im, 6),
        "available_margin": fmt(equity - im, 6),
        "initial_margin": fmt(im, 6),
        "maintenance_margin": fmt(mm, 6),
        "collaterals": [
            {
                "collateral_asset": "USDC",
                "collateral_value": fmt(key.usdc, 6),
                "margin_value": fmt(key.usdc, 6),
                "balance": fmt(key.usdc, 6),
                "available_balance": fmt(key.usdc, 6),
                "pending_withdrawals": "0",
            }
        ],
        "positions": positions,
        "in_liquidation": equity < mm,
        "portfolio": False,
    }


def _key_for(request: Request) -> AevoKey | None:
    aevo: AevoState = request.app.state.aevo
    key = aevo.keys.get(request.headers.get("aevo-key", ""))
    if key is None or not secrets.compare_digest(key.api_secret, request.headers.get("aevo-secret", "")):
        return None
    return key


async def _private(request: Request, shape: str) -> Response:
    state = state_of(request)
    with state.lock:
        key = _key_for(request)
    if key is None:
        return JSONResponse({"error": "UNAUTHORIZED"}, status_code=401)

    def build() -> Any:
        now = deribit.now_of(request)
        with state.lock:
            body = account_body(state, key, now)
        return body if shape == "account" else {"account": body["account"], "positions": body["positions"]}

    return await serve(request, "aevo", build)


async def account(request: Request) -> Response:
    return await _private(request, "account")


async def positions(request: Request) -> Response:
    return await _private(request, "positions")


async def index(request: Request) -> Response:
    state = state_of(request)

    def build() -> Any:
        asset = request.query_params.get("asset", "")
        stamp = int(deribit.now_of(request).timestamp() * 1_000_000) * 1000
        return {"price": fmt(state.price(asset), 6), "timestamp": str(stamp)}

    return await serve(request, "aevo", build)


def _seed_aevo(state: VenueState, aevo: AevoState, body: dict[str, Any]) -> dict[str, Any]:
    api_key, api_secret = str(body.get("api_key", "")), str(body.get("api_secret", ""))
    if not api_key or not api_secret:
        raise BadRequest("api_key and api_secret are required")
    held = []
    for i, p in enumerate(body.get("positions", [])):
        name = str(p.get("instrument", ""))
        asset = _parse(name)[0]
        if asset not in state.prices:
            raise BadRequest(f"positions.{i}: no price for {asset}")
        held.append(
            AevoPosition(
                name,
                dec(p.get("amount"), f"positions.{i}.amount"),
                dec(p.get("avg_entry_price", 0), f"positions.{i}.avg_entry_price"),
                dec(p.get("iv", "0.6"), f"positions.{i}.iv"),
            )
        )
    key = AevoKey(api_key, api_secret, str(body.get("account", "")), dec(body.get("usdc", 0), "usdc"), held)
    with state.lock:
        aevo.keys[api_key] = key
    return {"account": key.account, "positions": len(held)}


async def seed(request: Request) -> Response:
    state = state_of(request)
    venue = request.path_params["venue"]
    try:
        body = await json_body(request)
    except BadRequest as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if venue == "aevo":
        return answer(lambda: _seed_aevo(state, request.app.state.aevo, body))
    if venue == "deribit":
        return answer(lambda: deribit.seed(state, request.app.state.deribit, body))
    return JSONResponse({"error": f"unknown venue {venue!r} (one of {list(CRED_VENUES)})"}, status_code=404)


async def fault(request: Request) -> Response:
    state = state_of(request)
    return await with_body(
        request, lambda body: set_fault(state, body, str(body.get("venue", "")), CRED_VENUES)
    )


async def clock(request: Request) -> Response:
    """Freeze the venues' clock (``{"freeze": true}`` now, ``{"at": ISO 8601}``), or let it run
    (``{"freeze": false}``). Answers ``{"clock": ISO 8601 | null}``."""

    def run(body: dict[str, Any]) -> dict[str, Any]:
        at = body.get("at")
        if at is not None:
            try:
                frozen: datetime | None = datetime.fromisoformat(str(at))
            except ValueError:
                raise BadRequest(f"at: {at!r} is not an ISO 8601 time") from None
            if frozen is not None and frozen.tzinfo is None:
                raise BadRequest("at: needs a time zone (e.g. Z)")
        elif "freeze" in body:
            frozen = datetime.now(UTC) if body["freeze"] is True else None
        else:
            raise BadRequest('give {"freeze": true|false} or {"at": ISO 8601}')
        request.app.state.clock = frozen
        return {"clock": None if frozen is None else frozen.isoformat()}

    return await with_body(request, run)


async def expire(request: Request) -> Response:
    state, cred = state_of(request), request.app.state.deribit
    with state.lock:
        revoked = len(cred.tokens)
        cred.tokens.clear()
    return JSONResponse({"revoked": revoked})


async def reset(request: Request) -> Response:
    state, fresh = state_of(request), _fresh_venue_state()
    with state.lock:
        state.prices, state.marks, state.faults = fresh.prices, fresh.marks, fresh.faults
        request.app.state.aevo.keys.clear()
        request.app.state.deribit.clients.clear()
        request.app.state.deribit.tokens.clear()
        request.app.state.deribit.auth_calls = 0
        request.app.state.clock = None
    return JSONResponse({"reset": True})


async def snapshot(request: Request) -> Response:
    state = state_of(request)
    with state.lock:
        return JSONResponse(
            {
                "prices": {k: fmt(v) for k, v in state.prices.items()},
                "faults": {
                    k: {"mode": state.faults[k].mode, "times": state.faults[k].times} for k in CRED_VENUES
                },
                "aevo": sorted(k.account for k in request.app.state.aevo.keys.values()),
                "deribit": sorted(request.app.state.deribit.clients),
                "deribit_auth_calls": request.app.state.deribit.auth_calls,
            }
        )


async def root(request: Request) -> Response:
    return JSONResponse({"service": "crossmargin devnet credentialed venues", "venues": list(CRED_VENUES)})


def create_app() -> Starlette:
    app = Starlette(
        routes=[
            Route("/", root),
            Route("/account", account),
            Route("/positions", positions),
            Route("/index", index),
            Route("/api/v2/{method:path}", deribit.rpc, methods=["GET", "POST"]),
            Route("/_devnet/price", admin.price, methods=["POST"]),
            Route("/_devnet/seed/{venue}", seed, methods=["POST"]),
            Route("/_devnet/fault", fault, methods=["POST"]),
            Route("/_devnet/deribit/expire", expire, methods=["POST"]),
            Route("/_devnet/clock", clock, methods=["POST"]),
            Route("/_devnet/reset", reset, methods=["POST"]),
            Route("/_devnet/state", snapshot),
        ]
    )
    app.state.venues = _fresh_venue_state()
    app.state.aevo = AevoState()
    app.state.deribit = deribit.DeribitState()
    app.state.clock = None
    return app


class CredVenueServer(AppServer):
    """The credentialed-venues app in a daemon thread: ``with CredVenueServer() as s: s.url``."""

    label = "credentialed venue server"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(create_app(), host, port, thread_name="cred-venues")


def process_gone(pid: int) -> bool:
    """No process ``pid``, or only its zombie (``/proc/<pid>/stat`` state ``Z``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _exit_with(server: uvicorn.Server, pid: int, poll_s: float = 0.5) -> None:
    """Daemon thread: ask ``server`` to exit once process ``pid`` is gone."""

    def watch() -> None:
        while not server.should_exit:
            if process_gone(pid):
                server.should_exit = True
                return
            time.sleep(poll_s)

    threading.Thread(target=watch, name=f"exit-with:{pid}", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aggregator.devnet.venues.aevo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-with", type=int, default=None, metavar="PID",
                        help="stop once this process is gone")  # fmt: skip
    args = parser.parse_args(argv)
    server = uvicorn.Server(uvicorn_config(create_app(), args.host, args.port))
    if args.exit_with is not None:
        _exit_with(server, args.exit_with)
    server.run()


if __name__ == "__main__":
    main()
