"""The explicit registry of adapter families: family key -> adapter class. One line per module."""

from __future__ import annotations

from adapters.aave_v3 import AaveV3Adapter
from adapters.aevo import AevoAdapter
from adapters.base import VenueAdapter
from adapters.compound_v3 import CompoundV3Adapter
from adapters.deribit import DeribitAdapter
from adapters.derive import DeriveAdapter
from adapters.dydx_v4 import DydxV4Adapter
from adapters.gmx_v2 import GmxV2Adapter
from adapters.hyperliquid import HyperliquidAdapter
from adapters.morpho_blue import MorphoBlueAdapter

__all__ = ["REGISTRY"]

REGISTRY: dict[str, type[VenueAdapter]] = {}
REGISTRY["hyperliquid"] = HyperliquidAdapter
REGISTRY["dydx_v4"] = DydxV4Adapter
REGISTRY["derive"] = DeriveAdapter
REGISTRY["aave_v3"] = AaveV3Adapter
REGISTRY["compound_v3"] = CompoundV3Adapter
REGISTRY["morpho_blue"] = MorphoBlueAdapter
REGISTRY["aevo"] = AevoAdapter
REGISTRY["deribit"] = DeribitAdapter
REGISTRY["gmx_v2"] = GmxV2Adapter
