"""dYdX v4 indexer (comlink) routes in the documented shapes (perps_options.md §2), computed from the state.

``GET /v4/addresses/{a}`` -> ``{"subaccounts":[...], "totalTradingRewards"}`` (404 for an unknown address);
``GET /v4/addresses/{a}/subaccountNumber/{n}`` -> ``{"subaccount": {...}}``;
``GET /v4/addresses/{a}/parentSubaccountNumber/{n}`` -> ``{"subaccount": {address, parentSubaccountNumber,
equity, freeCollateral, childSubaccounts}}`` (children ``n + 128k``, sums over them);
``GET /v4/perpetualMarkets[?ticker=]`` -> ``{"markets": {ticker: {...}}}``.

Rules (comlink ``calculateEquityAndFreeCollateral``): ``equity = USDC + sum(size * oraclePrice)``,
``freeCollateral = equity - sum(|size| * oraclePrice * IMF)``; ``unrealizedPnl`` at the oracle price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aggregator.devnet.venues.common import fmt, serve, state_of
from aggregator.devnet.venues.state import DydxMarket, DydxSubaccount, VenueState

__all__ = ["address", "markets", "parent_subaccount", "subaccount"]

CHILD_STRIDE = 128
HEIGHT = "1000"


def _markets(state: VenueState) -> dict[str, DydxMarket]:
    return {m.ticker: m for m in state.dydx_markets}


def _figures(state: VenueState, sub: DydxSubaccount) -> tuple[Decimal, Decimal]:
    markets = _markets(state)
    equity, initial = sub.usdc, Decimal(0)
    for p in sub.positions:
        market = markets[p.ticker]
        notional = p.size * state.price(market.factor)
        equity += notional
        initial += abs(notional) * market.imf
    return equity, equity - initial


def subaccount_json(state: VenueState, address_: str, sub: DydxSubaccount) -> dict[str, Any]:
    markets = _markets(state)
    equity, free = _figures(state, sub)
    positions = {}
    for p in sub.positions:
        if p.size == 0:
            continue
        oracle = state.price(markets[p.ticker].factor)
        positions[p.ticker] = {
            "market": p.ticker,
            "status": "OPEN",
            "side": "LONG" if p.size > 0 else "SHORT",
            "size": fmt(p.size),
            "maxSize": fmt(p.size),
            "entryPrice": fmt(p.entry_price),
            "exitPrice": None,
            "realizedPnl": "0",
            "unrealizedPnl": fmt(p.size * (oracle - p.entry_price)),
            "createdAt": "2026-01-01T00:00:00.000Z",
            "createdAtHeight": "100",
            "closedAt": None,
            "sumOpen": fmt(abs(p.size)),
            "sumClose": "0",
            "netFunding": fmt(p.net_funding),
            "subaccountNumber": sub.number,
        }
    assets = {}
    if sub.usdc != 0:
        assets["USDC"] = {
            "symbol": "USDC",
            "side": "LONG" if sub.usdc > 0 else "SHORT",
            "size": fmt(abs(sub.usdc)),
            "assetId": "0",
            "subaccountNumber": sub.number,
        }
    return {
        "address": address_,
        "subaccountNumber": sub.number,
        "equity": fmt(equity),
        "freeCollateral": fmt(free),
        "openPerpetualPositions": positions,
        "assetPositions": assets,
        "marginEnabled": True,
        "updatedAtHeight": HEIGHT,
        "latestProcessedBlockHeight": HEIGHT,
    }


def _subs(state: VenueState, address_: str) -> dict[int, DydxSubaccount]:
    if address_ not in state.dydx_addresses:
        raise KeyError(f"No subaccounts found for address {address_}")
    return state.dydx_addresses[address_]


def market_json(state: VenueState, m: DydxMarket) -> dict[str, Any]:
    return {
        "clobPairId": str(m.clob_pair_id),
        "ticker": m.ticker,
        "status": "ACTIVE",
        "oraclePrice": fmt(state.price(m.factor)),
        "priceChange24H": "0",
        "volume24H": "1000000",
        "trades24H": 100,
        "nextFundingRate": fmt(m.funding, 10),
        "initialMarginFraction": fmt(m.imf),
        "maintenanceMarginFraction": fmt(m.mmf),
        "openInterest": "100",
        "atomicResolution": m.atomic_resolution,
        "quantumConversionExponent": -9,
        "tickSize": "0.1",
        "stepSize": "0.001",
        "stepBaseQuantums": 1000000,
        "subticksPerTick": 100000,
        "marketType": m.market_type,
        "openInterestLowerCap": None,
        "openInterestUpperCap": None,
        "baseOpenInterest": "100",
        "defaultFundingRate1H": "0",
    }


async def address(request: Request) -> Response:
    state = state_of(request)
    addr = request.path_params["address"]

    def build() -> Any:
        with state.lock:
            subs = _subs(state, addr)
            return {
                "subaccounts": [subaccount_json(state, addr, s) for _, s in sorted(subs.items())],
                "totalTradingRewards": "0",
            }

    return await serve(request, "dydx_v4", build)


async def subaccount(request: Request) -> Response:
    state = state_of(request)
    addr, number = request.path_params["address"], int(request.path_params["number"])

    def build() -> Any:
        with state.lock:
            subs = _subs(state, addr)
            if number not in subs:
                raise KeyError(f"Subaccount {number} not found for address {addr}")
            return {"subaccount": subaccount_json(state, addr, subs[number])}

    return await serve(request, "dydx_v4", build)


async def parent_subaccount(request: Request) -> Response:
    state = state_of(request)
    addr, parent = request.path_params["address"], int(request.path_params["number"])

    def build() -> Any:
        with state.lock:
            subs = _subs(state, addr)
            children = [s for n, s in sorted(subs.items()) if n % CHILD_STRIDE == parent]
            rendered = [subaccount_json(state, addr, s) for s in children]
            equity = sum((Decimal(c["equity"]) for c in rendered), Decimal(0))
            free = sum((Decimal(c["freeCollateral"]) for c in rendered), Decimal(0))
            return {
                "subaccount": {
                    "address": addr,
                    "parentSubaccountNumber": parent,
                    "equity": fmt(equity),
                    "freeCollateral": fmt(free),
                    "childSubaccounts": rendered,
                }
            }

    return await serve(request, "dydx_v4", build)


async def markets(request: Request) -> Response:
    state = state_of(request)
    ticker = request.query_params.get("ticker")

    def build() -> Any:
        with state.lock:
            return {
                "markets": {
                    m.ticker: market_json(state, m)
                    for m in state.dydx_markets
                    if ticker is None or m.ticker == ticker
                }
            }

    return await serve(request, "dydx_v4", build)
