"""Helpers the venue routes share: decimal strings as the venues print them, request decoding, and
the fault switch applied to every venue request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aggregator.devnet.venues.state import VenueState

__all__ = ["BadRequest", "dec", "drop_field", "fmt", "serve", "state_of"]


class BadRequest(ValueError):
    """A request body the server cannot use (answered with 400 and the reason)."""


def fmt(value: Decimal, places: int = 8) -> str:
    """A decimal string rounded to ``places`` and without trailing zeros, always with a decimal
    point (Hyperliquid prints ``"0.0"``, ``"13104.514502"``)."""
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = format(q.normalize(), "f")
    if text in ("-0", "-0.0"):
        text = "0"
    return text if "." in text else text + ".0"


def dec(value: object, what: str) -> Decimal:
    """A JSON number or decimal string from an admin request."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{what}: expected a number or decimal string")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise BadRequest(f"{what}: {value!r} is not a number") from None
    if not result.is_finite():
        raise BadRequest(f"{what}: must be finite")
    return result


def state_of(request: Request) -> VenueState:
    state: VenueState = request.app.state.venues
    return state


def drop_field(payload: Any, path: str | None) -> Any:
    """``payload`` without the field at dotted ``path`` (list items by index); without a path, without
    its first top-level key (or, for a list, the first key of its first item)."""
    if not path:
        if isinstance(payload, dict) and payload:
            first = next(iter(payload))
            return {k: v for k, v in payload.items() if k != first}
        if isinstance(payload, list) and payload:
            return [drop_field(payload[0], None), *payload[1:]]
        return payload
    head, _, rest = path.partition(".")
    if isinstance(payload, dict) and head in payload:
        if not rest:
            return {k: v for k, v in payload.items() if k != head}
        return {**payload, head: drop_field(payload[head], rest)}
    if isinstance(payload, list) and head.isdigit() and int(head) < len(payload):
        index = int(head)
        return [*payload[:index], drop_field(payload[index], rest) if rest else None, *payload[index + 1 :]]
    return payload


async def serve(request: Request, venue: str, build: Callable[[], Any], *, status: int = 200) -> Response:
    """Apply ``venue``'s fault switch, else answer ``build()`` as JSON (404 when it raises KeyError)."""
    state = state_of(request)
    fault = state.take_fault(venue)
    if fault.mode == "429":
        return JSONResponse(
            {"error": "rate limited"}, status_code=429, headers={"Retry-After": f"{fault.retry_after:g}"}
        )
    if fault.mode == "500":
        return JSONResponse({"error": "internal server error"}, status_code=500)
    if fault.mode == "403":
        return JSONResponse(
            {
                "errors": [
                    {
                        "msg": "Because you appear to be a resident of, or using this application "
                        "from, a jurisdiction that violates our terms of use, you have "
                        "been blocked."
                    }
                ]
            },
            status_code=403,
        )
    if fault.mode == "timeout":
        await asyncio.sleep(fault.hang_seconds)
    if fault.mode == "garbage":
        return Response(b'{"assetPositions": [ {"coin": "ETH", "szi": ', media_type="application/json")
    try:
        payload = build()
    except KeyError as exc:
        return JSONResponse(
            {"errors": [{"msg": str(exc.args[0]) if exc.args else "not found"}]}, status_code=404
        )
    except BadRequest as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if fault.mode == "missing_field":
        payload = drop_field(payload, fault.field)
    return JSONResponse(payload, status_code=status)
