"""Normalization shared by the HTTP venue adapters: symbol -> risk factor with warnings kept,
the USDC cash leg of a perp account, and a venue's millisecond/second timestamps as ``AsOf``.

Unknown symbols are never dropped: they become their own factor (``AssetMap.resolve``) and the
warning is kept in a ``Warnings`` list that the adapter stores in ``MarginAccount.raw["warnings"]``
and logs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from adapters.assets import AssetInfo, AssetMap
from risk.model import AsOf, Position, PositionKind, PriceSource

__all__ = ["Warnings", "as_of_millis", "as_of_seconds", "cash_position", "resolve_symbol"]

_log = logging.getLogger("crossmargin.adapters")

Warnings = list[str]


def resolve_symbol(assets: AssetMap, symbol: str, venue: str, warnings: Warnings) -> AssetInfo:
    """The symbol's factor; an unknown one is its own factor and a warning is recorded and logged."""
    info = assets.resolve(symbol)
    if not info.known:
        message = f"{venue}: unknown symbol {symbol!r} mapped to its own factor {info.factor}"
        if message not in warnings:
            warnings.append(message)
            _log.warning(message)
    return info


def cash_position(
    assets: AssetMap, symbol: str, quantity: Decimal, venue: str, warnings: Warnings
) -> Position:
    """The settlement-token leg of a perp account (signed: negative when the account owes USDC),
    valued at 1 quote unit per token (the venues margin USDC at par)."""
    info = resolve_symbol(assets, symbol, venue, warnings)
    return Position(
        token=symbol,
        factor=info.factor,
        basis_factor=info.basis,
        kind=PositionKind.SPOT,
        quantity=quantity,
        price=Decimal(1),
        price_source=PriceSource.MARK,
    )


def as_of_millis(millis: int) -> AsOf:
    return AsOf(timestamp=datetime.fromtimestamp(millis / 1000, tz=UTC))


def as_of_seconds(seconds: int | Decimal) -> AsOf:
    return AsOf(timestamp=datetime.fromtimestamp(float(seconds), tz=UTC))
