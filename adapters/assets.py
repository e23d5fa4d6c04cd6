"""Token symbol -> risk factor (``config/assets.toml``). Unknown symbols become their own factor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from risk.model import FactorId

__all__ = ["AssetInfo", "AssetMap"]


@dataclass(frozen=True, slots=True)
class AssetInfo:
    factor: FactorId
    basis: FactorId | None = None
    known: bool = True


class AssetMap:
    """Looks a venue's token symbol up exactly, then case-insensitively, then after stripping a
    venue suffix (``ETH-USD``, ``ETH-PERP``). An unknown symbol is its own factor, flagged ``known=False``
    so the caller can warn; it is never dropped."""

    def __init__(self, mapping: Mapping[str, AssetInfo]) -> None:
        self._exact = dict(mapping)
        self._folded = {k.casefold(): v for k, v in mapping.items()}

    def resolve(self, symbol: str) -> AssetInfo:
        for candidate in (symbol, symbol.split("-", maxsplit=1)[0]):
            if candidate in self._exact:
                return self._exact[candidate]
            folded = self._folded.get(candidate.casefold())
            if folded is not None:
                return folded
        return AssetInfo(factor=FactorId(symbol.split("-", maxsplit=1)[0].upper()), basis=None, known=False)
