"""Helpers for tests that read the devnet venue servers (``aggregator.devnet.venues``) over real HTTP:
an adapter context on a fresh ``httpx.AsyncClient``, an admin client that resets the server before and
after the test, and HTTP venue adapters built with a short timeout and fast retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx

from adapters.base import AdapterContext
from adapters.http import RetryPolicy
from adapters.http_adapter import HttpVenueAdapter
from adapters.specs import RateLimit, VenueSpec
from tests.unit.adapters.conftest import shipped_assets

__all__ = ["FAST", "adapter_context", "fast_adapter", "reset_admin", "venue_spec"]

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, deadline_seconds=3.0)
"""Retries for tests: three attempts within 3 s."""

A = TypeVar("A", bound=HttpVenueAdapter)


@asynccontextmanager
async def adapter_context() -> AsyncIterator[AdapterContext]:
    """An ``AdapterContext`` on a fresh HTTP client, no chains, the shipped asset map."""
    async with httpx.AsyncClient() as http:
        yield AdapterContext(http=http, chains={}, assets=shipped_assets())


@asynccontextmanager
async def reset_admin(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the venue server at ``url``; ``POST /_devnet/reset`` before and after the block."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        (await client.post("/_devnet/reset")).raise_for_status()
        yield client
        (await client.post("/_devnet/reset")).raise_for_status()


def venue_spec(api_url: str, *, timeout_seconds: float = 0.5, **extra: Any) -> VenueSpec:
    """``[venues.<name>]`` for a local server: ``timeout_seconds``, 200 requests a second."""
    return VenueSpec(
        api_url=api_url,
        timeout_seconds=timeout_seconds,
        rate_limit=RateLimit(requests=200, per_seconds=1.0),
        **extra,
    )


def fast_adapter(
    cls: type[A], api_url: str, context: AdapterContext, *, timeout_seconds: float = 0.5, **extra: Any
) -> A:
    """``cls`` (instance ``devnet``) on ``venue_spec(api_url, ...)`` with the ``FAST`` retries."""
    adapter = cls(
        instance="devnet", spec=venue_spec(api_url, timeout_seconds=timeout_seconds, **extra), context=context
    )
    adapter.http.policy = FAST
    return adapter
