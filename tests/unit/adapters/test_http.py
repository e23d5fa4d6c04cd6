"""adapters.http: retries with Retry-After, bounded attempts, error mapping, no secrets in messages.
Faults are injected at the transport (httpx.MockTransport), the one place mocking is allowed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import BaseModel

from adapters.errors import VenueDataError, VenueUnavailable
from adapters.http import (
    DecimalString,
    JsonModel,
    RateLimiter,
    RetryPolicy,
    VenueHttp,
    parse_model,
    retry_after_seconds,
)
from adapters.specs import RateLimit, VenueSpec

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, deadline_seconds=5)


def venue(
    handler: Callable[[httpx.Request], httpx.Response],
    policy: RetryPolicy = FAST,
    url: str = "http://127.0.0.1:9",
) -> tuple[VenueHttp, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    spec = VenueSpec(api_url=url, timeout_seconds=1, rate_limit=RateLimit(requests=100, per_seconds=1))
    return VenueHttp(client, venue="test", spec=spec, policy=policy), client


async def test_retry_after_is_honoured_then_read() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        return httpx.Response(200, json={"ok": True})

    http, client = venue(handler)
    async with client:
        response = await http.get("/x")
    assert response is not None and response.body == {"ok": True}
    assert calls[1] - calls[0] >= 0.29


async def test_attempts_are_bounded_and_reason_kept() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(503, json={"error": "maintenance"})

    http, client = venue(handler)
    async with client:
        with pytest.raises(VenueUnavailable, match=r"HTTP 503 \(maintenance\).*3 attempt"):
            await http.get("/x")
    assert count == 3


async def test_retry_after_past_deadline_gives_up_at_once() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(429, headers={"Retry-After": "60"})

    http, client = venue(handler, RetryPolicy(max_attempts=5, deadline_seconds=1))
    async with client:
        with pytest.raises(VenueUnavailable, match="deadline"):
            await http.get("/x")
    assert count == 1


async def test_errors_never_show_the_query_string_or_host() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("boom http://secret-host/?api_key=SECRET", request=request)

    http, client = venue(handler, url="http://user:pw@secret-host")
    async with client:
        with pytest.raises(VenueUnavailable) as excinfo:
            await http.get("/private/x", params={"api_key": "SECRET"})
    text = str(excinfo.value)
    assert "SECRET" not in text and "secret-host" not in text and "pw" not in text
    assert "GET /private/x" in text and "ConnectError" in text


async def test_non_json_403_and_404() -> None:
    responses = iter(
        [
            httpx.Response(200, content=b"<html>"),
            httpx.Response(403, json={"errors": [{"msg": "blocked in your region"}]}),
            httpx.Response(404, json={"errors": [{"msg": "no such address"}]}),
            httpx.Response(404),
        ]
    )
    http, client = venue(lambda request: next(responses))
    async with client:
        with pytest.raises(VenueDataError, match="not JSON"):
            await http.get("/a")
        with pytest.raises(VenueUnavailable, match=r"403.*blocked in your region"):
            await http.get("/b")
        assert await http.get("/c", allow_404=True) is None
        with pytest.raises(VenueUnavailable, match="404"):
            await http.get("/d")


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_full_jitter_is_bounded() -> None:
    import random

    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    rng = random.Random(1)
    for attempt in range(8):
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= min(3.0, 0.5 * 2**attempt) for d in delays)


async def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(RateLimit(requests=2, per_seconds=0.2))
    start = time.monotonic()
    for _ in range(6):
        await limiter.acquire()
    # 2 immediately, then 4 more at 10 per second
    assert time.monotonic() - start >= 0.35


def test_parse_model_names_the_field() -> None:
    class Inner(JsonModel):
        price: DecimalString

    class Outer(BaseModel):
        items: list[Inner]

    with pytest.raises(VenueDataError, match=r"items\.1\.price"):
        parse_model(Outer, {"items": [{"price": "1"}, {"price": "x"}]}, venue="v", what="thing")
    with pytest.raises(VenueDataError, match=r"items\.0\.price.*decimal string"):
        parse_model(Outer, {"items": [{"price": 1.5}]}, venue="v", what="thing")


async def test_requests_on_the_wire_are_bounded_per_venue() -> None:
    """Many wallets at once: no more than ``max_in_flight`` requests of one venue are open together
    (the rest wait in the adapter, not in the shared connection pool), and every one is answered."""
    import asyncio
    import threading

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.local_server import serve

    lock = threading.Lock()
    state = {"open": 0, "most": 0}

    async def slow(request: Request) -> JSONResponse:
        with lock:
            state["open"] += 1
            state["most"] = max(state["most"], state["open"])
        await asyncio.sleep(0.02)
        with lock:
            state["open"] -= 1
        return JSONResponse({"n": request.query_params["n"]})

    with serve(Starlette(routes=[Route("/x", slow)])) as url:
        spec = VenueSpec(api_url=url, timeout_seconds=5, rate_limit=RateLimit(requests=10_000, per_seconds=1),
                         max_in_flight=3)
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:
            http = VenueHttp(client, venue="test", spec=spec, policy=FAST)
            answers = await asyncio.gather(*(http.get("/x", params={"n": str(i)}) for i in range(40)))
    assert [a.body["n"] for a in answers if a is not None] == [str(i) for i in range(40)]
    assert state["most"] == 3
