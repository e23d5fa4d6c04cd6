"""Helpers the venue routes share: decimal strings as the venues print them, request decoding, the
fault switch applied to every venue request, the admin API's body / answer / fault handling (both
apps), and option expiries (``27DEC26`` codes, years to expiry)."""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aggregator.devnet.venues.state import FAULT_MODES, Fault, FaultMode, VenueState

__all__ = [
    "YEAR_SECONDS",
    "BadRequest",
    "answer",
    "dec",
    "drop_field",
    "expiry_ddmmmyy",
    "fmt",
    "json_body",
    "serve",
    "set_fault",
    "state_of",
    "with_body",
    "years_to",
]

YEAR_SECONDS = 365.0 * 24 * 3600
EXPIRY_HOUR_UTC = 8
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}


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


def years_to(expiry: datetime, now: datetime) -> float:
    """Years (365-day) from ``now`` to ``expiry``, 0 once expired."""
    return max(0.0, (expiry - now).total_seconds() / YEAR_SECONDS)


def expiry_ddmmmyy(code: str) -> datetime:
    """The expiry of an Aevo / Deribit date code ``27DEC26`` (day 1-2 digits, month, 2-digit year of
    the 2000s) at 08:00 UTC. Raises ``KeyError`` for an unknown month."""
    return datetime(2000 + int(code[-2:]), _MONTHS[code[-5:-2]], int(code[:-5]), EXPIRY_HOUR_UTC, tzinfo=UTC)


async def json_body(request: Request) -> dict[str, Any]:
    """An admin request's JSON object body (``BadRequest`` when it is not JSON or not an object)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def answer(run: Callable[[], dict[str, Any]]) -> Response:
    """``run()`` as JSON; ``BadRequest`` (its reason) and ``KeyError`` / ``ValueError`` / ``TypeError``
    (``bad request: ...``) answer 400."""
    try:
        return JSONResponse(run())
    except BadRequest as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except (KeyError, ValueError, TypeError) as exc:
        return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)


async def with_body(request: Request, run: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
    """``answer(run(body))`` for the request's JSON body; a body that is not a JSON object answers 400."""
    try:
        body = await json_body(request)
    except BadRequest as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return answer(lambda: run(body))


def set_fault(state: VenueState, body: dict[str, Any], venue: str, venues: Collection[str]) -> dict[str, Any]:
    """Set ``venue``'s fault switch (one of ``venues``) from an admin ``fault`` body: ``mode`` (one of
    ``FAULT_MODES``, default none), ``retry_after``, ``times``, ``hang_seconds``, ``field``."""
    mode = str(body.get("mode", "none"))
    if venue not in venues:
        raise BadRequest(f"venue: one of {list(venues)}")
    if mode not in FAULT_MODES:
        raise BadRequest(f"mode: one of {list(FAULT_MODES)}")
    times = body.get("times")
    new = Fault(
        mode=typing.cast(FaultMode, mode),
        retry_after=float(body.get("retry_after", 1.0)),
        times=None if times is None else int(times),
        hang_seconds=float(body.get("hang_seconds", 30.0)),
        field=str(body["field"]) if body.get("field") else None,
    )
    with state.lock:
        state.faults[venue] = new
    return {"venue": venue, "mode": mode, "times": new.times}
