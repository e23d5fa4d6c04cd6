"""New blocks of one chain, as they come: ``eth_subscribe("newHeads")`` over WebSocket when the chain
has a WebSocket endpoint, else polling ``eth_blockNumber`` over HTTP.

Where the WebSocket URL comes from: ``[watch.chains.<chain>] ws_url``, else the first ``ws://`` /
``wss://`` URL in the chain's ``rpc_urls``, else (``block_source = "auto"``) the first HTTP RPC URL with
its scheme swapped (``http`` -> ``ws``): anvil, geth and many nodes serve both on one port. When the
WebSocket handshake or the subscription fails the first time, the watcher polls instead for good
(``auto``) or retries with backoff (``ws``); a subscription that worked and then dropped is re-opened
with backoff (1 s doubling to 30 s), polling in the meantime.

``on_block(NewBlock)`` is called once per new head seen (in order; a poll that finds several new
blocks reports only the newest, which is what a rescan needs). URLs in log lines are redacted
(``adapters.evm.redact.redact_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from adapters.evm.redact import redact_url
from adapters.specs import ChainSpec
from aggregator.service.logs import LOGGER_NAME, log_event
from aggregator.service.settings import WatchSettings

__all__ = ["BlockWatcher", "NewBlock", "ws_url_for"]

logger = logging.getLogger(f"{LOGGER_NAME}.blocks")

BlockSource = Literal["auto", "ws", "poll"]
_OPEN_TIMEOUT_S = 5.0
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class NewBlock:
    chain: str
    number: int
    seen_at: float  # time.monotonic() when it was seen
    source: Literal["ws", "poll"]


class SubscriptionRefused(Exception):
    """The endpoint answered ``eth_subscribe`` with an error (no newHeads support)."""


def ws_url_for(chain: str, spec: ChainSpec, watch: WatchSettings) -> str | None:
    """The WebSocket URL to subscribe on, or None (poll). See the module docstring for the order."""
    own = watch.chains.get(chain)
    if own is not None and own.ws_url is not None:
        return own.ws_url.strip() or None
    for url in spec.rpc_urls:
        if url.startswith(("ws://", "wss://")):
            return url
    if watch.block_source == "poll":
        return None
    for url in spec.rpc_urls:
        if url.startswith("http://"):
            return "ws://" + url.removeprefix("http://")
        if url.startswith("https://"):
            return "wss://" + url.removeprefix("https://")
    return None


def _http_url(spec: ChainSpec) -> str | None:
    return next((u for u in spec.rpc_urls if u.startswith(("http://", "https://"))), None)


class BlockWatcher:
    """Watches one chain (see the module docstring). ``run()`` until cancelled."""

    def __init__(
        self,
        chain: str,
        spec: ChainSpec,
        watch: WatchSettings,
        http: httpx.AsyncClient,
        on_block: Callable[[NewBlock], None],
    ) -> None:
        self.chain = chain
        self.ws_url = ws_url_for(chain, spec, watch)
        self.http_url = _http_url(spec)
        self.source: BlockSource = watch.block_source
        own = watch.chains.get(chain)
        self.poll_interval = (
            own.poll_interval if own is not None and own.poll_interval is not None
            else min(watch.block_poll_interval, spec.block_time_seconds)
        )
        self.http = http
        self.on_block = on_block
        self.last_number: int | None = None
        self.mode: Literal["ws", "poll", "starting"] = "starting"

    def _emit(self, number: int, source: Literal["ws", "poll"]) -> None:
        if self.last_number is not None and number <= self.last_number:
            return
        first = self.last_number is None
        self.last_number = number
        if first:
            return  # the head at start is not a *new* block: the first cycle reads it anyway
        self.on_block(NewBlock(self.chain, number, time.monotonic(), source))

    async def run(self) -> None:
        backoff = 1.0
        ws_worked = False
        while True:
            if self.ws_url is not None and self.source != "poll":
                try:
                    await self._subscribe(self.ws_url)
                    ws_worked = True  # a clean end: the server closed; reconnect
                except asyncio.CancelledError:
                    raise
                except (OSError, WebSocketException, TimeoutError, SubscriptionRefused, ValueError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    if self.mode == "ws":
                        ws_worked = True
                    if not ws_worked and self.source == "auto":
                        log_event(logger, logging.INFO, "blocks.poll",
                                  f"{self.chain}: no WebSocket newHeads ({reason[:120]}); "
                                  "polling eth_blockNumber",
                                  chain=self.chain, ws_url=redact_url(self.ws_url), poll_s=self.poll_interval)
                        self.ws_url = None
                        continue
                    log_event(logger, logging.WARNING, "blocks.ws_lost",
                              f"{self.chain}: WebSocket subscription failed; retrying in {backoff:.0f} s",
                              chain=self.chain, reason=reason[:200])
                    await self._poll_for(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                backoff = 1.0
                continue
            await self._poll_forever()

    async def _subscribe(self, url: str) -> None:
        async with connect(url, open_timeout=_OPEN_TIMEOUT_S, ping_interval=20, max_size=2**20) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                      "params": ["newHeads"]}))
            first = json.loads(await asyncio.wait_for(ws.recv(), _OPEN_TIMEOUT_S))
            if not isinstance(first, dict) or "result" not in first:
                error = first.get("error") if isinstance(first, dict) else first
                raise SubscriptionRefused(f"eth_subscribe newHeads refused: {str(error)[:200]}")
            self.mode = "ws"
            log_event(logger, logging.INFO, "blocks.ws",
                      f"{self.chain}: subscribed to newHeads over WebSocket",
                      chain=self.chain, ws_url=redact_url(url))
            if self.last_number is None:
                await self._poll_once()
            async for raw in ws:
                message: Any = json.loads(raw)
                if not isinstance(message, dict) or message.get("method") != "eth_subscription":
                    continue
                head = message.get("params", {}).get("result", {})
                number = head.get("number") if isinstance(head, dict) else None
                if isinstance(number, str):
                    self._emit(int(number, 16), "ws")

    async def _poll_once(self) -> None:
        if self.http_url is None:
            raise ValueError(f"chain {self.chain} has no HTTP RPC URL to poll")
        response = await self.http.post(
            self.http_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        )
        response.raise_for_status()
        result = response.json().get("result")
        if isinstance(result, str):
            self._emit(int(result, 16), "poll")

    async def _poll_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                await self._poll_once()
            await asyncio.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))

    async def _poll_forever(self) -> None:
        self.mode = "poll"
        failures = 0
        while True:
            try:
                await self._poll_once()
                failures = 0
            except (httpx.HTTPError, ValueError) as exc:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log_event(logger, logging.WARNING, "blocks.poll_failed",
                              f"{self.chain}: eth_blockNumber failed ({type(exc).__name__})",
                              chain=self.chain, failures=failures)
            await asyncio.sleep(self.poll_interval)
