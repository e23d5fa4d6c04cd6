"""``EvmChainReader``: the :class:`adapters.base.ChainReader` of one chain.

Built from an :class:`adapters.specs.ChainSpec`:

- ``pin()`` reads ``eth_getBlockByNumber("latest")`` once (number, hash, timestamp) and starts the
  scan-cycle deadline (``cycle_deadline_s``); every later call of the cycle passes that block *number*
  as its block parameter (the hash is recorded in ``as_of``). With several endpoints it reads every
  endpoint's head and pins the best; laggards are skipped for the cycle (``lags()`` reports them).
  ``pin_with(calls)`` pins and runs first calls (an adapter's discovery) in one HTTP request.
- ``call_many`` batches through Multicall3 ``aggregate3`` (``allowFailure`` per call; empty return
  data is a failure) in slices planned by :func:`adapters.evm.multicall.plan_batches` under the
  chain's ``max_call_gas`` (``gas_per_call`` weight per call, overridable with ``gas_of``) and
  ``max_response_bytes``; each ``eth_call`` is sent with ``gas = max_call_gas``. A slice the node
  rejects as too big (out of gas, gas cap, response size) is halved and retried. Without Multicall3
  (``multicall3`` unset in the spec) the calls go out as JSON-RPC batch requests of at most
  ``max_batch_requests`` ``eth_call`` each. Slices run concurrently, at most ``max_concurrency``.
- ``get_logs`` walks ``[from_block, to_block]`` in chunks of ``log_chunk_blocks`` and halves the
  chunk whenever the node says the range or result set is too large.

Failures: no endpoint answers -> :class:`VenueUnavailable` (from :class:`adapters.evm.rpc.RpcPool`);
an answer we cannot trust (undecodable aggregate3 result, a reverting multicall) ->
:class:`VenueDataError`. RPC URLs never appear in messages unredacted.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.addresses import ChecksumAddress
from adapters.base import BlockRef, Call, CallResult
from adapters.errors import VenueDataError
from adapters.evm.abi import load_contract
from adapters.evm.multicall import BatchLimits, decode_aggregate3, encode_aggregate3, plan_batches
from adapters.evm.rpc import RpcError, RpcOptions, RpcPool, is_log_range_error
from adapters.specs import ChainSpec

__all__ = ["EvmChainReader", "ReaderOptions"]

_MULTICALL = load_contract("multicall3")
_TOO_BIG_TEXT = re.compile(
    r"out ?of ?gas|gas (cap|limit)|exceeds? .*gas|intrinsic gas|response (size|too large)|"
    r"too large|exceeds? .*(limit|size)|memory", re.I,
)


@dataclass(frozen=True, slots=True)
class ReaderOptions:
    """Reader knobs; the gas cap itself comes from ``ChainSpec.max_call_gas``."""

    rpc: RpcOptions = field(default_factory=RpcOptions)
    cycle_deadline_s: float = 60.0
    gas_per_call: int = 200_000  # estimated gas of one call inside aggregate3
    max_response_bytes: int = 4_000_000
    return_bytes_per_call: int = 512
    max_calls_per_batch: int = 1_000
    max_batch_requests: int = 100  # JSON-RPC batch path
    max_concurrency: int = 4
    log_chunk_blocks: int = 50_000


def _hex_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{what}: expected 0x-prefixed hex, got {type(value).__name__}")
    return bytes.fromhex(value[2:])


class EvmChainReader:
    """Reads one chain through a pool of RPC endpoints (see the module docstring)."""

    def __init__(
        self,
        *,
        chain: str,
        spec: ChainSpec,
        http: httpx.AsyncClient,
        options: ReaderOptions | None = None,
        gas_of: Callable[[Call], int] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chain = chain
        self.chain_id = spec.chain_id
        self.spec = spec
        self.options = options or ReaderOptions()
        self.multicall3: ChecksumAddress | None = (
            ChecksumAddress(spec.multicall3) if spec.multicall3 else None
        )
        self.gas_of = gas_of
        self.clock = clock
        self.pool = RpcPool(
            chain=chain, chain_id=spec.chain_id, urls=spec.rpc_urls, http=http,
            options=self.options.rpc, rng=rng, clock=clock,
        )
        self._limits = BatchLimits(
            max_gas=spec.max_call_gas,
            gas_per_call=self.options.gas_per_call,
            max_response_bytes=self.options.max_response_bytes,
            return_bytes_per_call=self.options.return_bytes_per_call,
            max_calls=self.options.max_calls_per_batch,
        )
        self._semaphore = asyncio.Semaphore(self.options.max_concurrency)

    def _data_error(self, message: str) -> VenueDataError:
        return VenueDataError(message, venue="rpc", chain=self.chain)

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (JSON-RPC batches count once)."""
        return self.pool.requests_sent

    # -- pin ------------------------------------------------------------------------------------

    async def pin(self) -> BlockRef:
        """Start a cycle: set its deadline and read the head block once. With several endpoints every
        endpoint's head is read at once (:meth:`RpcPool.survey_heads`): the best one is pinned, and an
        endpoint lagging more than ``max_lag_blocks`` behind it is skipped for the cycle."""
        self.pool.deadline = self.clock() + self.options.cycle_deadline_s
        if len(self.pool.endpoints) > 1:
            return self._block_ref((await self.pool.survey_heads())[0][1])
        try:
            block = await self.pool.request("eth_getBlockByNumber", ["latest", False])
        except RpcError as exc:
            raise self._data_error(f"eth_getBlockByNumber failed: {exc}") from None
        return self._block_ref(block)

    async def pin_with(self, calls: Sequence[Call]) -> tuple[BlockRef, list[CallResult]]:
        """:meth:`pin` and ``call_many(calls)`` at the pinned block, in ONE HTTP request where possible.

        One JSON-RPC batch holds ``eth_getBlockByNumber("latest")`` and an ``aggregate3`` at
        ``latest`` whose first call is Multicall3's own ``getBlockNumber()``: when that number equals
        the pinned block's, the calls provably ran at the pinned block; otherwise (a block arrived in
        between) they are read again at the pinned block. Without Multicall3 or with several endpoints
        (the head survey) this is ``pin`` then ``call_many``."""
        if not calls or self.multicall3 is None or len(self.pool.endpoints) > 1:
            block = await self.pin()
            return block, await self.call_many(calls, block)
        self.pool.deadline = self.clock() + self.options.cycle_deadline_s
        probe = [_MULTICALL.function("getBlockNumber").call(self.multicall3), *calls]
        request = {"to": self.multicall3, "data": "0x" + encode_aggregate3(probe).hex(),
                   "gas": hex(self.spec.max_call_gas)}
        head, answer = await self.pool.batch(
            [("eth_getBlockByNumber", ["latest", False]), ("eth_call", [request, "latest"])]
        )
        if isinstance(head, RpcError):
            raise self._data_error(f"eth_getBlockByNumber failed: {head}")
        block = self._block_ref(head)
        try:
            if isinstance(answer, RpcError):
                raise ValueError(str(answer))
            results = decode_aggregate3(_hex_bytes(answer, "eth_call result"), len(probe))
            ran_at = int.from_bytes(results[0].data[:32], "big") if results[0].success else -1
        except ValueError:
            ran_at = -1  # too big, or garbage: read the calls the ordinary way (split, checked)
        if ran_at != block.number:
            return block, await self.call_many(calls, block)
        return block, results[1:]

    def _block_ref(self, block: object) -> BlockRef:
        try:
            if not isinstance(block, dict):
                raise ValueError("no block object")
            number = int(block["number"], 16)
            block_hash = str(block["hash"])
            timestamp = datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
            if not re.fullmatch(r"0x[0-9a-fA-F]{64}", block_hash):
                raise ValueError("bad block hash")
        except (KeyError, TypeError, ValueError) as exc:
            raise self._data_error(f"malformed head block: {exc}") from None
        return BlockRef(chain=self.chain, number=number, hash=block_hash, timestamp=timestamp)

    def lags(self) -> dict[str, int]:
        """Blocks each endpoint (redacted label) was behind the best head at the last pin."""
        return self.pool.lags()

    # -- calls ----------------------------------------------------------------------------------

    async def call_many(self, calls: Sequence[Call], block: BlockRef) -> list[CallResult]:
        if not calls:
            return []
        if block.chain != self.chain:
            raise ValueError(f"block of chain {block.chain} passed to the {self.chain} reader")
        tag = hex(block.number)
        if self.multicall3 is None:
            size = self.options.max_batch_requests
            slices = [(i, min(i + size, len(calls))) for i in range(0, len(calls), size)]
            parts = await asyncio.gather(*(self._rpc_batch(calls[a:b], tag) for a, b in slices))
        else:
            slices = plan_batches(calls, self._limits, self.gas_of)
            parts = await asyncio.gather(*(self._aggregate(calls[a:b], tag) for a, b in slices))
        return [r for part in parts for r in part]

    async def _aggregate(self, calls: Sequence[Call], tag: str) -> list[CallResult]:
        assert self.multicall3 is not None
        request = {
            "to": self.multicall3,
            "data": "0x" + encode_aggregate3(calls).hex(),
            "gas": hex(self.spec.max_call_gas),
        }
        async with self._semaphore:
            try:
                result = await self.pool.request("eth_call", [request, tag], min_block=int(tag, 16))
            except RpcError as exc:
                error: RpcError | None = exc
            else:
                error = None
        if error is not None:
            if len(calls) > 1 and _TOO_BIG_TEXT.search(error.message):
                half = len(calls) // 2
                first, second = await asyncio.gather(
                    self._aggregate(calls[:half], tag), self._aggregate(calls[half:], tag)
                )
                return first + second
            raise self._data_error(f"Multicall3 aggregate3 of {len(calls)} calls failed: {error}")
        try:
            return decode_aggregate3(_hex_bytes(result, "eth_call result"), len(calls))
        except ValueError as exc:
            hint = (
                f" (no Multicall3 at {self.multicall3}? set multicall3 = \"\" for chain {self.chain} "
                "to use JSON-RPC batches)"
                if result == "0x" else ""
            )
            raise self._data_error(f"malformed aggregate3 answer: {exc}{hint}") from None

    async def _rpc_batch(self, calls: Sequence[Call], tag: str) -> list[CallResult]:
        requests = [("eth_call", [{"to": c.target, "data": "0x" + c.data.hex()}, tag]) for c in calls]
        async with self._semaphore:
            answers = await self.pool.batch(requests, min_block=int(tag, 16))
        out: list[CallResult] = []
        for answer in answers:
            if isinstance(answer, RpcError):
                revert = answer.data if isinstance(answer.data, str) else "0x"
                out.append(CallResult(success=False, data=_safe_hex(revert)))
                continue
            try:
                data = _hex_bytes(answer, "eth_call result")
            except ValueError as exc:
                raise self._data_error(f"malformed eth_call answer in a batch: {exc}") from None
            out.append(CallResult(success=len(data) > 0, data=data))
        return out

    # -- logs -----------------------------------------------------------------------------------

    async def get_logs(
        self,
        *,
        address: ChecksumAddress,
        topics: Sequence[str | Sequence[str] | None],
        from_block: int,
        to_block: int,
        chunk_blocks: int | None = None,
    ) -> list[Mapping[str, object]]:
        """Logs of ``address`` in ``[from_block, to_block]``, in chunks (halved on "too many results")."""
        if from_block > to_block:
            return []
        chunk = max(1, chunk_blocks or self.options.log_chunk_blocks)
        topic_param: list[Any] = [t if t is None or isinstance(t, str) else list(t) for t in topics]
        logs: list[Mapping[str, object]] = []
        start = from_block
        while start <= to_block:
            end = min(to_block, start + chunk - 1)
            query = {"address": address, "topics": topic_param, "fromBlock": hex(start), "toBlock": hex(end)}
            try:
                result = await self.pool.request("eth_getLogs", [query], min_block=end)
            except RpcError as exc:
                if end > start and is_log_range_error(exc):
                    chunk = max(1, (end - start + 1) // 2)
                    continue
                raise self._data_error(f"eth_getLogs of block {start} failed: {exc}") from None
            if not isinstance(result, list) or not all(isinstance(x, dict) for x in result):
                raise self._data_error("malformed eth_getLogs answer (not a list of logs)")
            logs.extend(result)
            start = end + 1
        return logs


def _safe_hex(text: str) -> bytes:
    if not text.startswith("0x"):
        return b""
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        return b""
