"""GMX v2 (gmx-synthetics) perps, on-chain: every position of a wallet is its own margin account.

See :mod:`adapters.gmx_v2.adapter` for what is read per cycle, :mod:`adapters.gmx_v2.positions` for
the decoding and how one position becomes a :class:`risk.model.MarginAccount`, and
:mod:`risk.exact.gmx` for the integer liquidation rule.
"""

from adapters.gmx_v2.adapter import MAX_POSITIONS, GmxV2Adapter
from adapters.gmx_v2.positions import (
    MarketParams,
    PositionData,
    Ticker,
    TokenView,
    VenueCheck,
    data_store_key,
    decode_position_info,
    liquidation_figures,
    market_key,
    parse_position_account,
    parse_tickers,
    position_key,
    usd_price,
)
from risk.exact.gmx import exact_health

__all__ = [
    "MAX_POSITIONS",
    "GmxV2Adapter",
    "MarketParams",
    "PositionData",
    "Ticker",
    "TokenView",
    "VenueCheck",
    "data_store_key",
    "decode_position_info",
    "exact_health",
    "liquidation_figures",
    "market_key",
    "parse_position_account",
    "parse_tickers",
    "position_key",
    "usd_price",
]
