"""The root of crossmargin's error tree and the risk layer's own input error.

The whole tree is drawn in ``aggregator.errors``; it is rooted here because ``risk`` is the bottom
layer and every other layer may import it.
"""

from __future__ import annotations

__all__ = ["CrossmarginError", "RiskInputError"]


class CrossmarginError(Exception):
    """Base of every error crossmargin raises on purpose."""


class RiskInputError(CrossmarginError, ValueError):
    """A portfolio, position or market state the risk engine cannot work with (names the item)."""
