"""A pool of JSON-RPC endpoints for one chain: timeouts, failover, full-jitter retries, circuit breakers,
a deadline.

Raw JSON-RPC 2.0 over the shared ``httpx.AsyncClient``. A request goes to the preferred endpoint (the
last one that answered, so one cycle stays on one provider), and on an endpoint fault to the next
available one in configured order. After a full round without an answer the pool sleeps
``uniform(0, min(backoff_cap_s, backoff_base_s * 2**round))`` (full jitter) and goes round again, at
most ``rounds`` times, never past the deadline.

Endpoint faults (retried elsewhere, counted by the endpoint's breaker): timeout, connection error,
HTTP 429 / 5xx / other non-200, a body that is not a JSON-RPC response, JSON-RPC ``-32005`` or a
"rate limit" message (opens the breaker at once, honoring ``Retry-After``), a node that lags the pinned
block ("header not found", "unknown block", anvil's "BlockOutOfRange"), internal errors (-32603,
-32002). Before its first use an endpoint's ``eth_chainId`` is checked, in the same JSON-RPC batch as
the first request (no extra round trip); a wrong chain disables it for good.

Hedged reads: every request here is a read pinned to an explicit block (or ``latest`` for the pin),
so when an endpoint has not answered after ``hedge_after_s`` the same request also goes to the next
endpoint and the first good answer wins (the slower attempt is cancelled, not counted as a fault).

Lagging nodes: :meth:`RpcPool.survey_heads` (called when the cycle's block is pinned with several
endpoints) reads every endpoint's head; one more than ``max_lag_blocks`` behind the best is skipped
for the cycle (logged with its lag, see :meth:`RpcPool.lags`), and a read of block ``min_block`` tries
the endpoints whose surveyed head is older last.

Any other JSON-RPC error is the node's answer (a revert, invalid params) and is returned to the
caller as :class:`RpcError`. When no endpoint answers, :class:`adapters.errors.VenueUnavailable` is
raised naming each endpoint (redacted, see ``adapters.evm.redact``) with its last fault.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.errors import VenueUnavailable
from adapters.evm.breaker import CircuitBreaker
from adapters.evm.redact import redact_url, scrub

__all__ = ["Endpoint", "RpcError", "RpcOptions", "RpcPool", "is_log_range_error"]

logger = logging.getLogger(__name__)

_RATE_LIMIT_TEXT = re.compile(r"rate.?limit|too many requests|exceeded .*(capacity|quota)|throughput", re.I)
_LAG_TEXT = re.compile(
    r"header not found|unknown block|block not found|missing trie node|not yet|"
    r"block ?out ?of ?range|block height is \d+ but requested|requested block .* (not|isn't) available",
    re.I,
)
_RATE_LIMIT_CODE = -32005
_ENDPOINT_FAULT_CODES = frozenset({-32603, -32002})
# An internal error that is really the EVM's answer (anvil reports OutOfGas as -32603).
_EXECUTION_TEXT = re.compile(r"revert|gas|evm|execution|opcode|stack|invalid jump", re.I)


@dataclass(frozen=True, slots=True)
class RpcOptions:
    """Per-chain transport knobs (defaults follow ``shared/reliability.md`` §4)."""

    timeout_s: float = 5.0  # one HTTP request, connect to last byte
    rounds: int = 3  # passes over the endpoint list before giving up
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 4.0
    failure_threshold: int = 3  # consecutive faults that open an endpoint's breaker
    cooldown_s: float = 30.0  # open breaker without Retry-After
    max_cooldown_s: float = 300.0  # cap on a server's Retry-After
    # a read not answered after this long is also sent to the next endpoint (None: never hedge)
    hedge_after_s: float | None = 1.5
    max_lag_blocks: int = 3  # an endpoint further behind the best head is skipped for the cycle


class RpcError(Exception):
    """A JSON-RPC error object the node answered with (not an endpoint fault)."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class _EndpointFault(Exception):
    def __init__(self, reason: str, *, rate_limited: bool = False, retry_after_s: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rate_limited = rate_limited
        self.retry_after_s = retry_after_s
        self.permanent = permanent


@dataclass
class Endpoint:
    url: str = field(repr=False)
    breaker: CircuitBreaker
    verified: bool = False

    @property
    def label(self) -> str:
        return redact_url(self.url)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_of(obj: dict[str, Any]) -> RpcError:
    err = obj.get("error")
    if not isinstance(err, dict) or not isinstance(err.get("code"), int):
        raise _EndpointFault("malformed JSON-RPC error object")
    return RpcError(int(err["code"]), str(err.get("message", "")), err.get("data"))


def _classify(error: RpcError, method: str) -> RpcError:
    """Raise ``_EndpointFault`` for endpoint-side errors, else return the node's answer."""
    if method == "eth_getLogs" and is_log_range_error(error):
        return error
    if error.code == _RATE_LIMIT_CODE or _RATE_LIMIT_TEXT.search(error.message):
        raise _EndpointFault(f"rate limited ({error.code}: {error.message[:120]})", rate_limited=True)
    if _LAG_TEXT.search(error.message):
        raise _EndpointFault(f"node lags the pinned block ({error.message[:120]})")
    if error.code in _ENDPOINT_FAULT_CODES and not _EXECUTION_TEXT.search(error.message):
        raise _EndpointFault(f"node error {error.code}: {error.message[:120]}")
    return error


_LOG_RANGE_TEXT = re.compile(
    r"more than \d+ results|too many (results|logs)|block range|range (is )?too (large|wide)|"
    r"query returned more than|response size|limit exceeded|exceed.*(range|results|logs)", re.I,
)


def is_log_range_error(error: RpcError) -> bool:
    return bool(_LOG_RANGE_TEXT.search(error.message))


class _Failed(Exception):
    """One endpoint attempt failed with an endpoint fault (already recorded on its breaker)."""


class RpcPool:
    """The endpoints of one chain. ``deadline`` (a ``clock()`` instant) bounds every request."""

    def __init__(
        self,
        *,
        chain: str,
        chain_id: int,
        urls: Sequence[str],
        http: httpx.AsyncClient,
        options: RpcOptions = RpcOptions(),
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError(f"chain {chain}: no RPC URL")
        self.chain = chain
        self.chain_id = chain_id
        self.http = http
        self.options = options
        self.rng = rng or random.Random()
        self.clock = clock
        self.endpoints = [
            Endpoint(
                url=u,
                breaker=CircuitBreaker(
                    failure_threshold=options.failure_threshold,
                    cooldown_s=options.cooldown_s,
                    max_cooldown_s=options.max_cooldown_s,
                    clock=clock,
                ),
            )
            for u in urls
        ]
        self.deadline: float | None = None
        self.requests_sent = 0  # HTTP requests, for benchmarks and tests
        self.hedges_sent = 0  # requests duplicated to a second endpoint after ``hedge_after_s``
        self.heads: dict[int, int] = {}  # endpoint index -> head block seen by the last survey
        self.lagging: dict[int, int] = {}  # endpoint index -> blocks behind the best; skipped this cycle
        self._preferred = 0
        self._ids = itertools.count(1)

    # -- public ---------------------------------------------------------------------------------

    async def request(self, method: str, params: list[Any], *, min_block: int | None = None) -> Any:
        """One call's ``result``; raises :class:`RpcError` for the node's error answer. ``min_block``:
        the call reads that block, so endpoints whose surveyed head is older are tried last."""

        def take(ep: Endpoint, body: Any, ids: list[int]) -> Any:
            if isinstance(body, list) and len(body) == 1:
                body = body[0]
            if not isinstance(body, dict) or body.get("id") != ids[0]:
                raise _EndpointFault("malformed response (not a JSON-RPC response to this request)")
            if "error" in body:
                return _classify(_error_of(body), method)
            if "result" not in body:
                raise _EndpointFault("malformed response (no result)")
            return body["result"]

        out = await self._send([(method, params)], take, min_block)
        if isinstance(out, RpcError):
            raise out
        return out

    async def batch(
        self, requests: Sequence[tuple[str, list[Any]]], *, min_block: int | None = None
    ) -> list[Any]:
        """A JSON-RPC batch: per request its ``result`` or an :class:`RpcError` (in request order)."""
        if not requests:
            return []

        def take(ep: Endpoint, body: Any, ids: list[int]) -> list[Any]:
            if isinstance(body, dict) and "error" in body:  # the whole batch was refused
                raise _EndpointFault(str(_classify(_error_of(body), "batch")))
            if not isinstance(body, list):
                raise _EndpointFault("malformed response (batch answered with a non-list)")
            by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
            out: list[Any] = []
            for request_id, (method, _) in zip(ids, requests, strict=True):
                item = by_id.get(request_id)
                if item is None:
                    raise _EndpointFault("malformed response (batch item missing)")
                if "error" in item:
                    out.append(_classify(_error_of(item), method))
                elif "result" in item:
                    out.append(item["result"])
                else:
                    raise _EndpointFault("malformed response (batch item without result)")
            return out

        result: list[Any] = await self._send(list(requests), take, min_block, as_batch=True)
        return result

    async def survey_heads(self) -> list[tuple[int, dict[str, Any]]]:
        """``eth_getBlockByNumber("latest")`` from every available endpoint at once (one request each,
        no failover): ``(endpoint index, block object)`` per endpoint that answered, best head first.

        Records every answer in ``heads``; an endpoint more than ``max_lag_blocks`` behind the best
        goes to ``lagging`` and is skipped until the next survey (its lag is logged)."""
        self.lagging = {}
        live = [i for i, ep in enumerate(self.endpoints) if ep.breaker.available()]

        async def head(i: int) -> tuple[int, dict[str, Any]] | None:
            def take(ep: Endpoint, body: Any, ids: list[int]) -> Any:
                if isinstance(body, dict) and "error" in body:
                    error = _classify(_error_of(body), "eth_getBlockByNumber")
                    raise _EndpointFault(f"head block refused: {error}")
                result = body.get("result") if isinstance(body, dict) and body.get("id") == ids[0] else None
                if not isinstance(result, dict):
                    raise _EndpointFault("malformed response to eth_getBlockByNumber(latest)")
                return result

            latest = [("eth_getBlockByNumber", ["latest", False])]
            try:
                block = await self._attempt(self.endpoints[i], latest, take, prefer=False)
                number = int(block["number"], 16)
            except _Failed:
                return None
            except (KeyError, TypeError, ValueError):
                self.endpoints[i].breaker.record_failure("malformed head block")
                return None
            self.heads[i] = number
            return i, block

        answers = [a for a in await asyncio.gather(*(head(i) for i in live)) if a is not None]
        if not answers:
            summary = self._faults_summary()
            raise self._unavailable(f"all {len(self.endpoints)} RPC endpoints failed: {summary}")
        best = max(self.heads[i] for i, _ in answers)
        for i, _ in answers:
            lag = best - self.heads[i]
            if lag > self.options.max_lag_blocks:
                self.lagging[i] = lag
                logger.warning(
                    "%s: RPC endpoint %s is %d blocks behind the best head %d; skipped this cycle",
                    self.chain, self.endpoints[i].label, lag, best,
                )
        answers.sort(key=lambda a: (-self.heads[a[0]], self._rank(a[0])))
        return answers

    def lags(self) -> dict[str, int]:
        """Blocks behind the best head, per endpoint label, as of the last survey."""
        if not self.heads:
            return {}
        best = max(self.heads.values())
        return {self.endpoints[i].label: best - h for i, h in self.heads.items()}

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def describe(self) -> str:
        return ", ".join(f"{e.label} [{e.breaker.state}]" for e in self.endpoints)

    # -- failover loop ---------------------------------------------------------------------------

    def _rank(self, index: int) -> int:
        return (index - self._preferred) % len(self.endpoints)

    def _order(self, min_block: int | None = None) -> list[Endpoint]:
        """Preferred first, then configured order; lagging endpoints left out (unless every one lags),
        endpoints whose surveyed head is older than ``min_block`` last."""
        indices = sorted(range(len(self.endpoints)), key=self._rank)
        fresh = [i for i in indices if i not in self.lagging] or indices
        if min_block is not None:
            fresh.sort(key=lambda i: self.heads.get(i, min_block) < min_block)
        return [self.endpoints[i] for i in fresh]

    def _unavailable(self, message: str) -> VenueUnavailable:
        return VenueUnavailable(message, venue="rpc", chain=self.chain)

    def _check_deadline(self) -> float:
        """Seconds left for one HTTP request (per-request timeout, cut by the deadline)."""
        remaining = self.remaining()
        if remaining is None:
            return self.options.timeout_s
        if remaining <= 0:
            raise self._unavailable(f"scan-cycle deadline exceeded ({self._faults_summary()})")
        return min(self.options.timeout_s, remaining)

    def _faults_summary(self) -> str:
        faults = [f"{e.label}: {e.breaker.last_reason}" for e in self.endpoints if e.breaker.last_reason]
        return "; ".join(faults) if faults else "no endpoint answered"

    async def _send(self, requests: list[tuple[str, list[Any]]],
                    take: Callable[[Endpoint, Any, list[int]], Any], min_block: int | None = None,
                    *, as_batch: bool = False) -> Any:
        for round_no in range(self.options.rounds):
            order = [ep for ep in self._order(min_block) if ep.breaker.available()]
            if order:
                found, out = await self._race(order, requests, take, as_batch)
                if found:
                    return out
            if round_no == self.options.rounds - 1:
                break
            backoff = min(self.options.backoff_cap_s, self.options.backoff_base_s * 2**round_no)
            wait = self.rng.uniform(0, backoff)  # full jitter
            if not order:
                waits = [w for e in self.endpoints if (w := e.breaker.seconds_until_available()) is not None]
                if not waits:
                    break  # every endpoint disabled for good
                wait = max(wait, min(waits))
            remaining = self.remaining()
            if remaining is not None and wait >= remaining:
                break
            await asyncio.sleep(wait)
        raise self._unavailable(f"all {len(self.endpoints)} RPC endpoints failed: {self._faults_summary()}")

    async def _race(self, order: list[Endpoint], requests: list[tuple[str, list[Any]]],
                    take: Callable[[Endpoint, Any, list[int]], Any], as_batch: bool) -> tuple[bool, Any]:
        """Try ``order`` in turn; while an attempt has not answered after ``hedge_after_s``, send the
        same request to the next endpoint too (a hedge) and take the first good answer. At most two
        attempts are in flight; the loser is cancelled. ``(False, None)`` when every endpoint failed."""
        queue = list(order)
        running: set[asyncio.Task[Any]] = set()
        hedge = self.options.hedge_after_s

        def start() -> None:
            ep = queue.pop(0)
            running.add(asyncio.create_task(self._attempt(ep, requests, take, as_batch=as_batch)))

        start()
        try:
            while running:
                can_hedge = hedge is not None and bool(queue) and len(running) < 2
                done, _ = await asyncio.wait(
                    running, timeout=hedge if can_hedge else None, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # no answer yet: hedge to the next endpoint
                    self.hedges_sent += 1
                    start()
                    continue
                for task in done:
                    running.discard(task)
                    error = task.exception()
                    if error is None:
                        return True, task.result()
                    if not isinstance(error, _Failed):
                        raise error
                if queue and len(running) < 2:
                    start()
            return False, None
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _attempt(self, ep: Endpoint, requests: list[tuple[str, list[Any]]],
                       take: Callable[[Endpoint, Any, list[int]], Any], *, as_batch: bool = False,
                       prefer: bool = True) -> Any:
        """One request to one endpoint (its chain id checked in the same HTTP request the first time);
        the breaker records the outcome. Raises :class:`_Failed` on an endpoint fault. A single
        request is sent as a JSON-RPC object, unless ``as_batch`` (a batch of one stays a batch)."""
        timeout = self._check_deadline()
        ep.breaker.before_request()
        try:
            ids = [next(self._ids) for _ in requests]
            payload: list[dict[str, Any]] = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in zip(ids, requests, strict=True)
            ]
            single = len(payload) == 1 and not as_batch
            if ep.verified:
                body = await self._post(ep, payload[0] if single else payload, timeout)
            else:
                body = await self._verified_post(ep, payload, timeout, single=single)
            out = take(ep, body, ids)
        except _EndpointFault as fault:
            if fault.permanent:
                ep.breaker.disable(fault.reason)
            else:
                ep.breaker.record_failure(
                    fault.reason, rate_limited=fault.rate_limited, retry_after_s=fault.retry_after_s
                )
            raise _Failed(fault.reason) from None
        except asyncio.CancelledError:
            ep.breaker.cancel_trial()  # a hedge lost the race: neither a success nor a fault
            raise
        ep.breaker.record_success()
        if prefer:  # the endpoint that answered keeps the cycle (the head survey does not choose)
            self._preferred = self.endpoints.index(ep)
        return out

    async def _verified_post(
        self, ep: Endpoint, payload: list[dict[str, Any]], seconds: float, *, single: bool
    ) -> Any:
        """First use of an endpoint: ``eth_chainId`` rides in the same JSON-RPC batch as the request.
        An endpoint that does not answer batches gets the check as a request of its own."""
        check_id = next(self._ids)
        check = {"jsonrpc": "2.0", "id": check_id, "method": "eth_chainId", "params": []}
        body = await self._post(ep, [check, *payload], seconds)
        if not isinstance(body, list):
            await self._verify(ep, seconds)
            return await self._post(ep, payload[0] if single else payload, seconds)
        answer = next((item for item in body if isinstance(item, dict) and item.get("id") == check_id), None)
        self._check_chain_id(answer)
        ep.verified = True
        rest = [item for item in body if not (isinstance(item, dict) and item.get("id") == check_id)]
        return rest[0] if single and len(rest) == 1 else rest

    def _check_chain_id(self, body: object) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("result"), str):
            raise _EndpointFault("malformed response to eth_chainId")
        try:
            got = int(body["result"], 16)
        except ValueError:
            raise _EndpointFault("malformed response to eth_chainId") from None
        if got != self.chain_id:
            raise _EndpointFault(f"serves chain id {got}, expected {self.chain_id}", permanent=True)

    async def _verify(self, ep: Endpoint, seconds: float) -> None:
        request_id = next(self._ids)
        body = await self._post(
            ep, {"jsonrpc": "2.0", "id": request_id, "method": "eth_chainId", "params": []}, seconds
        )
        self._check_chain_id(body)
        ep.verified = True

    async def _post(self, ep: Endpoint, payload: Any, seconds: float) -> Any:
        self.requests_sent += 1
        content = json.dumps(payload, separators=(",", ":")).encode()
        try:
            async with asyncio.timeout(seconds):
                response = await self.http.post(
                    ep.url,
                    content=content,
                    headers={"content-type": "application/json", "accept": "application/json"},
                    timeout=seconds,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise _EndpointFault(f"timed out after {seconds:.1f} s") from None
        except httpx.HTTPError as exc:
            detail = scrub(str(exc), ep.url)[:160] or type(exc).__name__
            raise _EndpointFault(f"{type(exc).__name__}: {detail}") from None
        if response.status_code == 429:
            raise _EndpointFault(
                "HTTP 429 rate limited",
                rate_limited=True,
                retry_after_s=_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise _EndpointFault(
                f"HTTP {response.status_code}",
                rate_limited=retry_after is not None,
                retry_after_s=retry_after,
            )
        try:
            return json.loads(response.content)
        except ValueError:
            raise _EndpointFault("malformed response (not JSON)") from None
