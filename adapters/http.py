"""HTTP venue I/O over the ONE shared ``httpx.AsyncClient`` of ``AdapterContext``.

What it does, per request (``VenueHttp.request_json``):

- **rate limit**: a token bucket per venue holding ``VenueSpec.rate_limit.requests`` tokens, refilled
  at ``requests / per_seconds`` per second (``RateLimiter``); a request waits for a token.
- **retries**: on HTTP 429, 500, 502, 503, 504, timeouts and connection errors, up to
  ``RetryPolicy.max_attempts`` attempts, never past the policy's deadline. The wait is the server's
  ``Retry-After`` (seconds or an HTTP date) when it sends one, else full jitter:
  ``uniform(0, min(max_delay, base_delay * 2**attempt))``.
- **errors**: everything that may pass on retry is ``VenueUnavailable`` (a 403 geo-block carries
  the venue's own reason); an answer we cannot trust is ``VenueDataError`` (not JSON, a shape that
  fails the pydantic model, naming the field). Messages name the method and the path only: never the
  host's query string or headers, which is where API keys live.

``parse_model`` validates decoded JSON against a pydantic model and turns a validation error into a
``VenueDataError`` naming the first failing field (``assetPositions.0.position.szi: Field required``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, TypeVar

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from adapters.errors import VenueDataError, VenueUnavailable
from adapters.specs import RateLimit, VenueSpec

__all__ = [
    "RETRYABLE_STATUSES",
    "DecimalString",
    "JsonModel",
    "JsonResponse",
    "RateLimiter",
    "RetryPolicy",
    "VenueHttp",
    "parse_model",
    "retry_after_seconds",
]

RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
MAX_REASON_CHARS: Final = 200

M = TypeVar("M", bound=BaseModel)


def _decimal_from_string(value: object) -> Decimal:
    """Venues send exact figures as decimal strings; a JSON float here would already have lost digits."""
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value[:40]!r} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError(f"{value[:40]!r} is not a finite number")
    return result


DecimalString = Annotated[Decimal, BeforeValidator(_decimal_from_string)]
"""A field the venue sends as a decimal string (``"2986.3"``), parsed exactly."""


class JsonModel(BaseModel):
    """Base of the venues' response models: every field we read is required with its documented type;
    fields we do not read are ignored (venues add fields), and models are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries: at most ``max_attempts`` tries, none starting after ``deadline_seconds``
    (None: three times the venue's request timeout)."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    deadline_seconds: float | None = None

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog): uniform over [0, min(cap, base * 2**attempt)]."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))


class RateLimiter:
    """A token bucket: ``requests`` tokens, refilled continuously over ``per_seconds``."""

    def __init__(self, limit: RateLimit) -> None:
        self.capacity = float(limit.requests)
        self.rate = limit.requests / limit.per_seconds
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def parse_model(model: type[M], data: object, *, venue: str, what: str) -> M:
    """Validate ``data`` against ``model``; a failure is a ``VenueDataError`` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise VenueDataError(
            f"unexpected {what} shape: {_field_path(first['loc'])}: {first['msg']}{more}", venue=venue
        ) from None


@dataclass(frozen=True, slots=True)
class JsonResponse:
    """A decoded JSON body with the server's ``Date`` (or None when the server sent none)."""

    status: int
    body: Any
    server_time: datetime | None


def _reason_from_body(response: httpx.Response) -> str | None:
    """The venue's own explanation (dYdX ``{"errors":[{"msg":...}]}``, ``{"error":...}``), shortened."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:MAX_REASON_CHARS] or None
    message: object = None
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            message = errors[0].get("msg") or errors[0].get("message")
        message = message or body.get("error") or body.get("message") or body.get("msg")
        if isinstance(message, Mapping):
            message = message.get("message")
    return str(message)[:MAX_REASON_CHARS] if message else None


class VenueHttp:
    """One venue's view of the shared client: base URL, rate limit, retries and error mapping."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        venue: str,
        spec: VenueSpec,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.venue = venue
        self.base_url = str(spec.api_url).rstrip("/")
        self.timeout = spec.timeout_seconds
        self.limiter = RateLimiter(spec.rate_limit)
        # requests of this venue on the wire at once: many wallets must not pile thousands of waiting
        # requests into the shared client's connection pool (its queue is scanned per assignment)
        self.in_flight = asyncio.Semaphore(spec.max_in_flight)
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        allow_404: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> JsonResponse | None:
        return await self.request_json("GET", path, params=params, allow_404=allow_404, headers=headers)

    async def post(
        self, path: str, body: object, *, allow_404: bool = False, headers: Mapping[str, str] | None = None
    ) -> JsonResponse | None:
        return await self.request_json("POST", path, json_body=body, allow_404=allow_404, headers=headers)

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: object = None,
        headers: Mapping[str, str] | None = None,
        allow_404: bool = False,
    ) -> JsonResponse | None:
        """The decoded body, or None for a 404 when ``allow_404``. Raises ``VenueUnavailable`` or
        ``VenueDataError``; messages name ``method path`` only."""
        where = f"{method} {path}"
        deadline_s = self.policy.deadline_seconds or 3 * self.timeout
        deadline = time.monotonic() + deadline_s
        last = "no attempt made"
        for attempt in range(self.policy.max_attempts):
            wait: float | None = None
            try:
                async with self.in_flight:
                    await self.limiter.acquire()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    response = await self.client.request(
                        method,
                        self.base_url + path,
                        params=params,
                        json=json_body,
                        headers=headers,
                        timeout=min(self.timeout, remaining),
                    )
            except httpx.TimeoutException:
                last = f"{where}: timed out after {min(self.timeout, remaining):.1f}s"
            except httpx.TransportError as exc:
                last = f"{where}: connection failed ({type(exc).__name__})"
            else:
                status = response.status_code
                if status in RETRYABLE_STATUSES:
                    reason = _reason_from_body(response)
                    last = f"{where}: HTTP {status}" + (f" ({reason})" if reason else "")
                    wait = retry_after_seconds(response.headers.get("retry-after"))
                else:
                    return self._decode(response, where, allow_404=allow_404)
            if attempt + 1 >= self.policy.max_attempts:
                break
            delay = wait if wait is not None else self.policy.backoff(attempt, self._rng)
            if time.monotonic() + delay >= deadline:
                last += f"; next retry in {delay:.1f}s is past the {deadline_s:.1f}s deadline"
                break
            await asyncio.sleep(delay)
        raise VenueUnavailable(f"{last} (gave up after {attempt + 1} attempt(s))", venue=self.venue)

    def _decode(self, response: httpx.Response, where: str, *, allow_404: bool) -> JsonResponse | None:
        status = response.status_code
        if status == 404 and allow_404:
            return None
        if status == 403:
            blocked = _reason_from_body(response) or "forbidden"
            raise VenueUnavailable(f"{where}: HTTP 403, blocked by the venue: {blocked}", venue=self.venue)
        if status >= 400:
            reason = _reason_from_body(response)
            raise VenueUnavailable(
                f"{where}: HTTP {status}" + (f" ({reason})" if reason else ""), venue=self.venue
            )
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise VenueDataError(
                f"{where}: response is not JSON ({type(exc).__name__})", venue=self.venue
            ) from None
        server_time = None
        date = response.headers.get("date")
        if date:
            try:
                server_time = email.utils.parsedate_to_datetime(date)
            except (TypeError, ValueError):
                server_time = None
        return JsonResponse(status=status, body=body, server_time=server_time)
