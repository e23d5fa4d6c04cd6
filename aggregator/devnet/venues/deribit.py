"""Deribit JSON-RPC-over-HTTP routes (``/api/v2/<method>``, POST with a JSON-RPC body or GET with query
parameters), answering ``{"jsonrpc", "id", "result", "usIn", "usOut", "usDiff", "testnet"}`` in the
documented shapes (JSON numbers), computed from the state. Served by the app in
``aggregator.devnet.venues.aevo`` (``create_app``), which also holds the admin API.

Auth: ``public/auth`` (client_credentials) checks the seeded client id / secret and issues a bearer
token (``expires_in`` 900 s); wrong credentials answer HTTP 400 with error 13004
``invalid_credentials``; a private method without a live token answers HTTP 401 with error 13009
``unauthorized`` (``POST /_devnet/deribit/expire`` revokes every token, to test re-authentication).

Devnet margin rules: Deribit's documented standard margin (the same rules ``adapters.deribit`` cites),
written out here apart from the adapter so the two can check each other:

- options (inverse, coins per contract, "Deribit margin requirements"): maintenance short call
  ``0.075 + mark``, short put ``max(0.075, 0.075 * mark) + mark``, long none; initial short call
  ``max(0.15 - OTM / index, 0.1) + mark``, short put ``max(that, maintenance)``. Linear (USDC) options
  use the same formulas times the index (not separately documented);
- futures (support.deribit.com "Linear Perpetual"; ETH from positionbuilder.deribit.com):
  maintenance ``(base + slope * coins) * coins`` with ``coins = |N| / mark`` for an inverse future of
  ``N`` USD (coins) and ``|size|`` for a linear one (USDC: times the index); ``(base, slope)`` BTC
  ``(1 %, 0.005 %)``, ETH ``(1 %, 0.0001 %)``, others ``(2 %, 0.0005 %)``; initial the same with the
  base doubled (BTC 2 %, SOL 4 % as documented; ETH assumed);
- ``equity = balance + futures PnL + options value``; ``margin_balance = equity - options value``
  (the identity of the documented example).

Remaining simplifications: option marks are Black-76 on the index (zero rate, no basis; the forward
``underlying_price`` is the index) divided by the index for inverse options; no funding, fees,
session/settlement split, open-orders margin, or cross-collateral; greeks are placeholders. Account
figures are printed at full float precision (the live API rounds them).

The server's clock (option time to expiry, ``usIn``/``usOut``) is ``now_of(request)``: the wall clock,
or the instant ``POST /_devnet/clock`` froze it at.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.derive import black76_price
from aggregator.devnet.venues.common import BadRequest, expiry_ddmmmyy, serve, state_of, years_to
from aggregator.devnet.venues.state import VenueState

__all__ = ["DeribitClient", "DeribitPosition", "DeribitState", "deribit_state", "rpc"]

TOKEN_SECONDS = 900
FUTURES_MM = {"BTC": (Decimal("0.01"), Decimal("0.00005")), "ETH": (Decimal("0.01"), Decimal("0.000001"))}
FUTURES_MM_OTHER = (Decimal("0.02"), Decimal("0.000005"))
OPTION_MM = Decimal("0.075")
_OPTION = re.compile(r"^(?P<u>[A-Z]+)(?:_USDC)?-(?P<d>\d{1,2}[A-Z]{3}\d{2})-(?P<k>\d+)-(?P<t>[CP])$")
_PERP = re.compile(r"^(?P<u>[A-Z]+)(?P<lin>_USDC)?-PERPETUAL$")


@dataclass
class DeribitPosition:
    instrument: str  # BTC-PERPETUAL, BTC_USDC-PERPETUAL, BTC-27DEC26-70000-C
    size: Decimal  # signed: inverse futures USD, options and linear futures base units
    average_price: Decimal = Decimal(0)
    iv: Decimal = Decimal("0.6")  # options: the implied vol the mark is priced at


@dataclass
class DeribitClient:
    client_id: str
    client_secret: str
    user_id: int
    username: str
    balances: dict[str, Decimal] = field(default_factory=dict)  # currency -> balance
    positions: list[DeribitPosition] = field(default_factory=list)


@dataclass
class DeribitState:
    clients: dict[str, DeribitClient] = field(default_factory=dict)  # client_id -> client
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (client_id, expiry)
    auth_calls: int = 0


def deribit_state(request: Request) -> DeribitState:
    state: DeribitState = request.app.state.deribit
    return state


def now_of(request: Request) -> datetime:
    """The server's time: frozen by ``POST /_devnet/clock`` (``app.state.clock``), else the wall clock."""
    frozen: datetime | None = getattr(request.app.state, "clock", None)
    return frozen if frozen is not None else datetime.now(UTC)


def _futures_margins(underlying: str, coins: Decimal) -> tuple[Decimal, Decimal]:
    """(maintenance, initial) in coins of a futures position of ``coins`` base units."""
    base, slope = FUTURES_MM.get(underlying, FUTURES_MM_OTHER)
    size = abs(coins)
    return (base + slope * size) * size, (2 * base + slope * size) * size


def _option_margins(p: Parsed, mark: Decimal, index: Decimal, size: Decimal) -> tuple[Decimal, Decimal]:
    """(maintenance, initial) of an option position in its settlement unit (coins for inverse: ``mark``
    in coins; linear: ``mark`` in USDC and the coin terms times the index)."""
    if size >= 0:
        return Decimal(0), Decimal(0)
    assert p.strike is not None and p.call is not None
    coin = Decimal(1) if p.inverse else index
    mark_c = mark / coin  # the mark in coins
    if p.call:
        mm_c = OPTION_MM + mark_c
        otm = max(Decimal(0), (p.strike - index) / index)
    else:
        mm_c = max(OPTION_MM, OPTION_MM * mark_c) + mark_c
        otm = max(Decimal(0), (index - p.strike) / index)
    im_c = max(Decimal("0.15") - otm, Decimal("0.1")) + mark_c
    if not p.call:
        im_c = max(im_c, mm_c)
    return mm_c * abs(size) * coin, im_c * abs(size) * coin


@dataclass(frozen=True)
class Parsed:
    underlying: str
    kind: str  # future | option
    settlement: str
    inverse: bool
    strike: Decimal | None = None
    expiry: datetime | None = None
    call: bool | None = None


def parse_name(name: str) -> Parsed:
    if m := _PERP.match(name):
        lin = bool(m["lin"])
        return Parsed(m["u"], "future", "USDC" if lin else m["u"], not lin)
    if m := _OPTION.match(name):
        expiry = expiry_ddmmmyy(m["d"])
        lin = "_USDC" in name
        return Parsed(
            m["u"], "option", "USDC" if lin else m["u"], not lin, Decimal(m["k"]), expiry, m["t"] == "C"
        )
    raise KeyError(f"instrument {name} not found")


def _num(value: Decimal) -> float | int:
    f = float(value)
    return int(f) if f.is_integer() and abs(f) < 1e15 else f


def _option_mark(state: VenueState, p: Parsed, iv: Decimal, now: datetime) -> tuple[Decimal, Decimal]:
    """(mark in the settlement unit, index)."""
    assert p.strike is not None and p.expiry is not None and p.call is not None
    index = state.price(p.underlying)
    years = years_to(p.expiry, now)
    usd = Decimal(repr(black76_price(float(index), float(p.strike), years, float(iv), p.call)))
    mark = usd / index if p.inverse else usd
    return mark.quantize(Decimal("1e-8")), index


def _position_item(
    state: VenueState, pos: DeribitPosition, now: datetime
) -> tuple[dict[str, Any], Decimal, Decimal, Decimal]:
    """(the get_positions item, its PnL/value contribution to equity, its maintenance margin, its
    initial margin)."""
    p = parse_name(pos.instrument)
    index = state.price(p.underlying)
    direction = "buy" if pos.size > 0 else "sell" if pos.size < 0 else "zero"
    if p.kind == "option":
        mark, _ = _option_mark(state, p, pos.iv, now)
        value = pos.size * mark
        mm, im = _option_margins(p, mark, index, pos.size)
        fpl = value - pos.size * pos.average_price
        greeks = {"gamma": 0.0, "vega": 0.0, "theta": 0.0}
        extra: dict[str, Any] = {**greeks, "delta": _num(pos.size * Decimal("0.5"))}
        contribution = value
    else:
        mark = state.mark(p.underlying)
        if p.inverse:
            fpl = pos.size * (1 / pos.average_price - 1 / mark) if pos.average_price else Decimal(0)
            mm, im = _futures_margins(p.underlying, pos.size / mark)
            delta = pos.size / mark
        else:
            fpl = pos.size * (mark - pos.average_price)
            mm, im = (m * index for m in _futures_margins(p.underlying, pos.size))
            delta = pos.size
        extra = {"delta": _num(delta), "leverage": 50, "estimated_liquidation_price": None}
        contribution = fpl
    item = {
        "average_price": _num(pos.average_price),
        "direction": direction,
        "floating_profit_loss": _num(fpl.quantize(Decimal("1e-9"))),
        "index_price": _num(index),
        "initial_margin": _num(im.quantize(Decimal("1e-9"))),
        "instrument_name": pos.instrument,
        "kind": p.kind,
        "maintenance_margin": _num(mm.quantize(Decimal("1e-9"))),
        "mark_price": _num(mark),
        "open_orders_margin": 0,
        "realized_profit_loss": 0,
        "settlement_price": _num(mark),
        "size": _num(pos.size),
        "size_currency": _num((pos.size / mark) if p.kind == "future" and p.inverse else pos.size),
        "total_profit_loss": _num(fpl.quantize(Decimal("1e-9"))),
        **extra,
    }
    return item, contribution, mm, im


def _mine(client: DeribitClient, currency: str) -> list[DeribitPosition]:
    return [p for p in client.positions if parse_name(p.instrument).settlement == currency and p.size != 0]


def account_summary(state: VenueState, client: DeribitClient, currency: str, now: datetime) -> dict[str, Any]:
    balance = client.balances.get(currency, Decimal(0))
    futures_pl, options_value, mm, im = Decimal(0), Decimal(0), Decimal(0), Decimal(0)
    for pos in _mine(client, currency):
        _, contribution, req, initial = _position_item(state, pos, now)
        if parse_name(pos.instrument).kind == "option":
            options_value += contribution
        else:
            futures_pl += contribution
        mm += req
        im += initial
    equity = balance + futures_pl + options_value
    margin_balance = equity - options_value
    q = Decimal("1e-8")
    return {
        "currency": currency,
        "balance": _num(balance),
        "equity": _num(equity),
        "margin_balance": _num(margin_balance),
        "maintenance_margin": _num(mm),
        "initial_margin": _num(im),
        "available_funds": _num(margin_balance - im),
        "available_withdrawal_funds": _num(margin_balance - im),
        "options_value": _num(options_value),
        "futures_pl": _num(futures_pl.quantize(q)),
        "session_upl": _num((futures_pl + options_value).quantize(q)),
        "total_pl": _num((futures_pl + options_value).quantize(q)),
        "delta_total": 0,
        "options_delta": 0,
        "options_gamma": 0,
        "options_vega": 0,
        "options_theta": 0,
        "projected_maintenance_margin": _num(mm),
        "portfolio_margining_enabled": False,
        "cross_collateral_enabled": False,
        "margin_model": "segregated_sm",
        "fee_balance": 0,
        "id": client.user_id,
        "username": client.username,
        "email": f"{client.username}@example.com",
        "system_name": client.username,
        "type": "main",
        "creation_timestamp": 1687352432143,
    }


def _instrument(name: str) -> dict[str, Any]:
    p = parse_name(name)
    item: dict[str, Any] = {
        "instrument_name": name,
        "kind": p.kind,
        "base_currency": p.underlying,
        "quote_currency": p.settlement if p.kind == "option" else "USD",
        "counter_currency": "USDC" if not p.inverse else "USD",
        "settlement_currency": p.settlement,
        "instrument_type": "reversed" if p.inverse else "linear",
        "contract_size": 1 if p.kind == "option" else 10,
        "is_active": True,
        "settlement_period": "perpetual" if p.kind == "future" else "month",
        "expiration_timestamp": 32503708800000 if p.expiry is None else int(p.expiry.timestamp() * 1000),
        "tick_size": 0.0005,
        "min_trade_amount": 0.1,
    }
    if p.kind == "option":
        item["strike"] = _num(p.strike or Decimal(0))
        item["option_type"] = "call" if p.call else "put"
    return item


def _ticker(state: VenueState, name: str, client_iv: Decimal | None, now: datetime) -> dict[str, Any]:
    p = parse_name(name)
    index = state.price(p.underlying)
    if p.kind == "option":
        iv = client_iv if client_iv is not None else Decimal("0.6")
        mark, _ = _option_mark(state, p, iv, now)
        return {
            "instrument_name": name,
            "timestamp": int(now.timestamp() * 1000),
            "mark_price": _num(mark),
            "index_price": _num(index),
            "underlying_price": _num(index),
            "underlying_index": f"SYN.{p.underlying}",
            "mark_iv": _num(iv * 100),
            "state": "open",
            "greeks": {"delta": 0.5, "gamma": 0.0, "vega": 0.0, "theta": 0.0, "rho": 0.0},
        }
    return {
        "instrument_name": name,
        "timestamp": int(now.timestamp() * 1000),
        "mark_price": _num(state.mark(p.underlying)),
        "index_price": _num(index),
        "state": "open",
    }


def _error(code: int, message: str, status: int, us_in: int) -> Response:
    return JSONResponse(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": code, "message": message},
            "usIn": us_in,
            "usOut": us_in + 5,
            "usDiff": 5,
            "testnet": True,
        },
        status_code=status,
    )


async def _request(request: Request) -> tuple[int | None, dict[str, Any]]:
    if request.method == "GET":
        return None, {k: v for k, v in request.query_params.items()}
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON-RPC object")
    params = body.get("params", {})
    return body.get("id"), params if isinstance(params, dict) else {}


def _client_for(request: Request, cred: DeribitState) -> DeribitClient | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    token = header[7:].strip()
    entry = cred.tokens.get(token)
    if entry is None or entry[1] < time.time():
        return None
    return cred.clients.get(entry[0])


async def rpc(request: Request) -> Response:
    """Every Deribit method under ``/api/v2/``."""
    state, cred = state_of(request), deribit_state(request)
    method = request.path_params["method"]
    us_in = int(now_of(request).timestamp() * 1_000_000)
    try:
        rpc_id, params = await _request(request)
    except BadRequest as exc:
        return _error(-32700, str(exc), 400, us_in)
    client: DeribitClient | None = None
    token = ""
    if method.startswith("private/"):
        with state.lock:
            client = _client_for(request, cred)
        if client is None:
            return _error(13009, "unauthorized", 401, us_in)
    if method == "public/auth":
        with state.lock:
            cred.auth_calls += 1
            found = cred.clients.get(str(params.get("client_id", "")))
            ok = (
                found is not None
                and params.get("grant_type") == "client_credentials"
                and secrets.compare_digest(found.client_secret, str(params.get("client_secret", "")))
            )
            if not ok or found is None:
                return _error(13004, "invalid_credentials", 400, us_in)
            token = secrets.token_hex(16)
            cred.tokens[token] = (found.client_id, time.time() + TOKEN_SECONDS)

    def build() -> Any:
        now = now_of(request)
        with state.lock:
            result = _result(state, cred, method, params, client=client, token=token, now=now)
        us_out = max(us_in, int(now_of(request).timestamp() * 1_000_000))
        return {
            "jsonrpc": "2.0",
            "id": rpc_id,
            "result": result,
            "usIn": us_in,
            "usOut": us_out,
            "usDiff": us_out - us_in,
            "testnet": True,
        }

    return await serve(request, "deribit", build)


def _result(
    state: VenueState,
    cred: DeribitState,
    method: str,
    params: dict[str, Any],
    *,
    client: DeribitClient | None,
    token: str,
    now: datetime,
) -> Any:
    if method == "public/auth":
        return {
            "access_token": token,
            "expires_in": TOKEN_SECONDS,
            "refresh_token": secrets.token_hex(8),
            "scope": "connection mainaccount",
            "token_type": "bearer",
            "enabled_features": [],
        }
    if method == "public/get_instrument":
        return _instrument(str(params.get("instrument_name", "")))
    if method == "public/ticker":
        name = str(params.get("instrument_name", ""))
        ivs = [p.iv for c in cred.clients.values() for p in c.positions if p.instrument == name]
        return _ticker(state, name, ivs[0] if ivs else None, now)
    if method == "public/get_index_price":
        name = str(params.get("index_name", ""))
        return {
            "index_price": _num(state.price(name.split("_")[0].upper())),
            "estimated_delivery_price": _num(state.price(name.split("_")[0].upper())),
        }
    assert client is not None
    currency = str(params.get("currency", ""))
    if currency not in ("BTC", "ETH", "USDC", "USDT"):
        raise BadRequest(f"currency: {currency!r} is not a currency")
    if method == "private/get_account_summary":
        return account_summary(state, client, currency, now)
    if method == "private/get_positions":
        return [_position_item(state, p, now)[0] for p in _mine(client, currency)]
    raise KeyError(f"method {method} not found")


def seed(state: VenueState, cred: DeribitState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"client_id", "client_secret", "user_id"?, "username"?, "balances": {"BTC": 2},
    "positions": [{"instrument", "size", "average_price"?, "iv"?}]}``: replaces that client."""
    from aggregator.devnet.venues.common import dec

    client_id, client_secret = str(body.get("client_id", "")), str(body.get("client_secret", ""))
    if not client_id or not client_secret:
        raise BadRequest("client_id and client_secret are required")
    positions = []
    for i, p in enumerate(body.get("positions", [])):
        name = str(p.get("instrument", ""))
        try:
            parsed = parse_name(name)
        except KeyError:
            raise BadRequest(f"positions.{i}.instrument: {name!r} is not a Deribit instrument") from None
        if parsed.underlying not in state.prices:
            raise BadRequest(f"positions.{i}: no price for {parsed.underlying}")
        average = dec(p.get("average_price", 0), f"positions.{i}.average_price")
        if parsed.kind == "future" and average <= 0:
            raise BadRequest(f"positions.{i}.average_price: a future needs one > 0")
        positions.append(
            DeribitPosition(
                name,
                dec(p.get("size"), f"positions.{i}.size"),
                average,
                dec(p.get("iv", "0.6"), f"positions.{i}.iv"),
            )
        )
    balances = {str(k): dec(v, f"balances.{k}") for k, v in dict(body.get("balances", {})).items()}
    client = DeribitClient(
        client_id,
        client_secret,
        int(body.get("user_id", 10)),
        str(body.get("username", "devnet")),
        balances,
        positions,
    )
    with state.lock:
        cred.clients[client_id] = client
    return {"client_id": client_id, "positions": len(positions)}
