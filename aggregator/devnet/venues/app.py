"""The one Starlette app serving every local venue API, and its routes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aggregator.devnet.venues import admin, derive, dydx, gmx, hyperliquid
from aggregator.devnet.venues.state import VENUES, VenueState

__all__ = ["create_app"]


async def root(request: Request) -> Response:
    return JSONResponse({"service": "crossmargin devnet venues", "venues": list(VENUES)})


def create_app(state: VenueState | None = None) -> Starlette:
    """A fresh app holding ``state`` (a new, unseeded ``VenueState`` by default) at ``app.state.venues``."""
    app = Starlette(
        routes=[
            Route("/", root),
            Route("/info", hyperliquid.info, methods=["POST"]),
            Route("/v4/addresses/{address}", dydx.address),
            Route("/v4/addresses/{address}/subaccountNumber/{number:int}", dydx.subaccount),
            Route("/v4/addresses/{address}/parentSubaccountNumber/{number:int}", dydx.parent_subaccount),
            Route("/v4/perpetualMarkets", dydx.markets),
            Route("/public/margin_watch", derive.margin_watch, methods=["POST"]),
            Route("/public/get_subaccounts", derive.get_subaccounts, methods=["POST"]),
            Route("/prices/tickers", gmx.tickers),
            Route("/_devnet/price", admin.price, methods=["POST"]),
            Route("/_devnet/seed/{venue}", admin.seed, methods=["POST"]),
            Route("/_devnet/fault", admin.fault, methods=["POST"]),
            Route("/_devnet/reset", admin.reset, methods=["POST"]),
            Route("/_devnet/state", admin.snapshot),
        ]
    )
    app.state.venues = state or VenueState()
    return app
