"""GMX ``GET /prices/tickers``: ``[{tokenAddress, tokenSymbol, minPrice, maxPrice, medianPrice, updatedAt,
oracleDecimals}]`` with prices as integers scaled by ``10^(30 - tokenDecimals)`` (USD per smallest
token unit x 1e30; perps_options.md §3.5), from the factor prices and an optional min/max spread."""

from __future__ import annotations

import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aggregator.devnet.venues.common import serve, state_of
from aggregator.devnet.venues.state import GmxToken, VenueState

__all__ = ["scaled_price", "tickers"]

FLOAT_DECIMALS = 30


def scaled_price(usd: Decimal, token_decimals: int, rounding: str = ROUND_FLOOR) -> int:
    """``usd * 10^(30 - decimals)`` as an integer (GMX's price format)."""
    return int((usd.scaleb(FLOAT_DECIMALS - token_decimals)).to_integral_value(rounding=rounding))


def ticker_json(state: VenueState, token: GmxToken, now_ms: int) -> dict[str, Any]:
    price = state.price(token.factor)
    low, high = price * (1 - state.gmx_spread), price * (1 + state.gmx_spread)
    return {
        "tokenAddress": token.address,
        "tokenSymbol": token.symbol,
        "minPrice": str(scaled_price(low, token.decimals, ROUND_FLOOR)),
        "maxPrice": str(scaled_price(high, token.decimals, ROUND_CEILING)),
        "medianPrice": str(scaled_price(price, token.decimals)),
        "updatedAt": now_ms,
        "oracleDecimals": FLOAT_DECIMALS - token.decimals,
    }


async def tickers(request: Request) -> Response:
    state = state_of(request)

    def build() -> Any:
        now_ms = int(time.time() * 1000)
        with state.lock:
            return [ticker_json(state, t, now_ms) for t in state.gmx_tokens]

    return await serve(request, "gmx", build)
