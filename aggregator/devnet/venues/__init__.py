"""Local venue API servers: one Starlette app on 127.0.0.1 that answers like Hyperliquid, the dYdX v4
indexer, Derive and the GMX tickers API, in their documented shapes (decimal strings, nulls,
wrappers), from in-memory state. Account figures are computed from positions and prices by each
venue's documented rules, so they move when a price moves.

Run: ``python -m aggregator.devnet.venues --host 127.0.0.1 --port N``; in tests:
``with VenueServer() as server: server.url`` (a free port, in a thread).

Venue routes
------------
- Hyperliquid ``POST /info`` with ``type`` = ``clearinghouseState`` | ``spotClearinghouseState`` |
  ``userAbstraction`` | ``meta`` | ``metaAndAssetCtxs`` (markets BTC, ETH, SOL, ARB, HYPE).
- dYdX v4 ``GET /v4/addresses/{a}``, ``/v4/addresses/{a}/subaccountNumber/{n}`` (``{"subaccount":...}``),
  ``/v4/addresses/{a}/parentSubaccountNumber/{n}``, ``/v4/perpetualMarkets[?ticker=]`` (BTC-USD,
  ETH-USD, SOL-USD, ARB-USD isolated). Unknown address: 404.
- Derive ``POST /public/get_subaccounts {"wallet"}``, ``POST /public/margin_watch {"subaccount_id"}``.
- GMX ``GET /prices/tickers`` (prices x 10^(30 - token decimals)).

Admin API (``/_devnet/``; JSON bodies; numbers may be JSON numbers or decimal strings)
-------------------------------------------------------------------------------------
- ``POST /_devnet/price {"factor": "ETH", "price": 2500, "mark"?: 2501}``: the factor's oracle/index
  price on every venue (Hyperliquid mark and oracle, dYdX oracle, Derive index, GMX tickers); the mark
  follows the price unless ``mark`` is given.
- ``POST /_devnet/seed/hyperliquid {"wallet": "0x..", "usdc": 10000, "mode"?: "default"|"unifiedAccount",
  "spot"?: {"HYPE": 5}, "positions": [{"coin": "ETH", "szi": -2, "entryPx": 3000, "leverage": 10,
  "isolated"?: false, "margin"?: 500}]}``: replaces the wallet. ``usdc`` is the cross collateral;
  ``margin`` is the USDC put into an isolated position.
- ``POST /_devnet/seed/dydx_v4 {"address": "dydx1..", "subaccounts": [{"number": 0, "usdc": 5000,
  "positions": [{"ticker": "ETH-USD", "size": "1.5", "entryPrice": "3000"}]}]}``: replaces the address
  (``usdc`` signed; isolated children are numbers ``parent + 128k``; no subaccounts = unknown address).
- ``POST /_devnet/seed/derive {"wallet": "0x..", "subaccounts": [{"id": 7, "margin_type"?: "SM",
  "collaterals": {"USDC": 10000}, "positions": [{"instrument": "ETH-20261225-3000-C", "amount": -5,
  "iv"?: 0.6}, {"instrument": "ETH-PERP", "amount": 1, "avg_price": 3000}]}]}``: replaces the wallet's
  subaccounts.
- ``POST /_devnet/seed/gmx {"tokens"?: [{"address", "symbol", "decimals", "factor"}], "spread"?: 0.001}``.
- ``POST /_devnet/fault {"venue": "hyperliquid"|"dydx_v4"|"derive"|"gmx", "mode": "none"|"429"|"500"|
  "403"|"timeout"|"garbage"|"missing_field", "retry_after"?: 1, "times"?: N, "hang_seconds"?: 30,
  "field"?: "a.b.0.c"}``:
  the next ``times`` requests of that venue (all, when omitted) fail that way: 429 with
  ``Retry-After``, 500, 403 geo-block, a hang, malformed JSON, or the right answer minus one field
  (``field``, dotted, else the first top-level key).
- ``POST /_devnet/reset``; ``GET /_devnet/state`` (prices, faults, seeded keys).

Aevo and Deribit (API credentials) are served by a separate app: ``aggregator.devnet.venues.aevo``
(``python -m aggregator.devnet.venues.aevo --port N``; ``CredVenueServer`` in tests; its docstring has
the routes and the admin API).

Modules: ``state`` (data and fault switches), ``common`` (formatting, fault application, the admin
API's body / answer / fault helpers, option expiry codes), one module per venue, ``admin``, ``app``
(routes), ``server`` (thread / foreground runners; ``AppServer`` also runs the credentialed app).
"""

from aggregator.devnet.venues.app import create_app
from aggregator.devnet.venues.server import VenueServer

__all__ = ["VenueServer", "create_app"]
