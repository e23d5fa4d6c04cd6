"""Normalization shared by the HTTP venue adapters: symbol -> risk factor with warnings kept, a
SPOT position and the USDC cash leg of a perp account, the greeks kept in ``raw``, a venue's
millisecond/second timestamps as ``AsOf``, and the JSON-RPC 2.0 envelope (Derive, Deribit).

Unknown symbols are never dropped: they become their own factor (``AssetMap.resolve``) and the
warning is kept in a ``Warnings`` list that the adapter stores in ``MarginAccount.raw["warnings"]``
and logs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.assets import AssetInfo, AssetMap
from adapters.errors import VenueDataError, VenueUnavailable
from adapters.http import JsonModel, parse_model
from risk.model import AsOf, OptionParams, PerpParams, Position, PositionKind, PriceSource

__all__ = [
    "Warnings",
    "as_of_millis",
    "as_of_seconds",
    "cash_position",
    "greeks_raw",
    "marked_position",
    "resolve_symbol",
    "rpc_result",
    "spot_position",
]

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


def spot_position(
    assets: AssetMap,
    symbol: str,
    quantity: Decimal,
    price: Decimal,
    *,
    venue: str,
    warnings: Warnings,
    token: str | None = None,
    price_source: PriceSource = PriceSource.MARK,
) -> Position:
    """A SPOT holding of ``symbol``'s factor (``token`` names it when it is not the symbol, e.g. an
    instrument), ``quantity`` at ``price`` quote units."""
    info = resolve_symbol(assets, symbol, venue, warnings)
    return Position(
        token=symbol if token is None else token,
        factor=info.factor,
        basis_factor=info.basis,
        kind=PositionKind.SPOT,
        quantity=quantity,
        price=price,
        price_source=price_source,
    )


def marked_position(
    assets: AssetMap,
    symbol: str,
    *,
    token: str,
    quantity: Decimal,
    mark: Decimal,
    venue: str,
    warnings: Warnings,
    perp: PerpParams | None = None,
    option: OptionParams | None = None,
) -> Position:
    """A PERP (``perp`` given) or OPTION (``option`` given) on ``symbol``'s factor, named ``token`` (the
    venue's instrument), ``quantity`` held at the venue's ``mark`` price."""
    if (perp is None) == (option is None):
        raise ValueError(f"{token}: give exactly one of perp / option parameters")
    info = resolve_symbol(assets, symbol, venue, warnings)
    return Position(
        token=token,
        factor=info.factor,
        basis_factor=info.basis,
        kind=PositionKind.PERP if perp is not None else PositionKind.OPTION,
        quantity=quantity,
        price=mark,
        price_source=PriceSource.MARK,
        perp=perp,
        option=option,
    )


def cash_position(
    assets: AssetMap, symbol: str, quantity: Decimal, venue: str, warnings: Warnings
) -> Position:
    """The settlement-token leg of a perp account (signed: negative when the account owes USDC),
    valued at 1 quote unit per token (the venues margin USDC at par)."""
    return spot_position(assets, symbol, quantity, Decimal(1), venue=venue, warnings=warnings)


def greeks_raw(
    *, delta: Decimal | None, gamma: Decimal | None, vega: Decimal | None, theta: Decimal | None
) -> dict[str, str | None]:
    """A position's greeks as the venue reported them, kept in ``raw`` (decimal strings, None unsent)."""
    return {
        k: None if v is None else str(v)
        for k, v in (("delta", delta), ("gamma", gamma), ("vega", vega), ("theta", theta))
    }


def as_of_millis(millis: int) -> AsOf:
    return AsOf(timestamp=datetime.fromtimestamp(millis / 1000, tz=UTC))


def as_of_seconds(seconds: int | Decimal) -> AsOf:
    return AsOf(timestamp=datetime.fromtimestamp(float(seconds), tz=UTC))


class _RpcError(JsonModel):
    code: int
    message: str


class _RpcEnvelope(JsonModel):
    result: Any = None
    error: _RpcError | None = None
    usOut: int | None = None  # noqa: N815 (Deribit's name: server time, microseconds)


def rpc_result(raw: object, what: str, venue: str) -> tuple[object, int | None]:
    """``(result, usOut)`` of a JSON-RPC 2.0 answer ``{"result"} | {"error": {"code", "message"}}``
    (``usOut`` None when the venue sends none); an ``error`` member is ``VenueUnavailable`` (message cut
    to 200 characters), neither member ``VenueDataError``."""
    envelope = parse_model(_RpcEnvelope, raw, venue=venue, what=what)
    if envelope.error is not None:
        raise VenueUnavailable(
            f"{what}: error {envelope.error.code}: {envelope.error.message[:200]}", venue=venue
        )
    if envelope.result is None:
        raise VenueDataError(f"{what}: neither result nor error in the answer", venue=venue)
    return envelope.result, envelope.usOut
