"""Fixtures of the venue-server integration tests: a module defines ``server`` (a venue server with a
``url``: ``VenueServer`` or ``CredVenueServer``); ``admin`` resets it around each test and ``context``
is the adapters' context (``tests.support.venues``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.base import AdapterContext
from tests.support.venues import adapter_context, reset_admin


@pytest.fixture
async def admin(server: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with reset_admin(server.url) as client:
        yield client


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    async with adapter_context() as ctx:
        yield ctx
