"""Multicall3 ``aggregate3`` encoding and batch planning (pure functions, no I/O).

``aggregate3((address target, bool allowFailure, bytes callData)[])`` returns
``(bool success, bytes returnData)[]`` in call order (``shared/protocols/lending.md`` §4). Every call
is sent with ``allowFailure = true``; a call whose ``returnData`` is empty is a failure too (a call to
an address without code "succeeds" with no data).

Batches are planned so that the summed gas estimate stays under ``max_gas`` (the chain's
``max_call_gas``), the expected response under ``max_response_bytes``, and the count under
``max_calls``. A call's gas is ``gas_of(call)`` when given, else its ``gas`` attribute when it
has one, else ``gas_per_call``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.base import Call, CallResult
from adapters.evm.abi import load_contract

__all__ = ["BatchLimits", "decode_aggregate3", "encode_aggregate3", "plan_batches"]

# ABI overhead of one (bool, bytes) result: offset word, bool word, bytes offset, length word.
RESULT_OVERHEAD_BYTES = 4 * 32


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_gas: int
    gas_per_call: int = 200_000
    max_response_bytes: int = 4_000_000
    return_bytes_per_call: int = 512
    max_calls: int = 1_000


def plan_batches(
    calls: Sequence[Call], limits: BatchLimits, gas_of: Callable[[Call], int] | None = None
) -> list[tuple[int, int]]:
    """Split ``calls`` into consecutive ``[start, end)`` slices under the limits (at least one call
    per slice, so a single over-weight call still gets its own batch)."""
    def default_weight(call: Call) -> int:
        gas = getattr(call, "gas", None)  # a per-call estimate, if the Call type carries one
        return gas if isinstance(gas, int) and gas > 0 else limits.gas_per_call

    weight = gas_of or default_weight
    per_call_bytes = (limits.return_bytes_per_call + RESULT_OVERHEAD_BYTES) * 2  # hex doubles it
    slices: list[tuple[int, int]] = []
    start = 0
    gas = 0
    size = 0
    for i, call in enumerate(calls):
        g = weight(call)
        count = i - start
        if count > 0 and (
            gas + g > limits.max_gas
            or size + per_call_bytes > limits.max_response_bytes
            or count >= limits.max_calls
        ):
            slices.append((start, i))
            start, gas, size = i, 0, 0
        gas += g
        size += per_call_bytes
    if start < len(calls):
        slices.append((start, len(calls)))
    return slices


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 32)


def encode_aggregate3(calls: Sequence[Call]) -> bytes:
    """Calldata of ``aggregate3`` with ``allowFailure = true`` for every call.

    Written out directly (the bytes ``eth_abi`` produces, checked by a property test): selector,
    offset of the array (0x20), its length, one offset per element (from the start of the offsets),
    then each element ``(target, true, 0x60, len(callData), callData padded to 32 bytes)``. A scan
    encodes thousands of calls per cycle, where the generic encoder costs more than the RPC."""
    head: list[bytes] = []
    tails: list[bytes] = []
    offset = 32 * len(calls)
    for call in calls:
        target = bytes.fromhex(call.target[2:])
        if len(target) != 20:
            raise ValueError(f"not an address: {call.target!r}")
        tail = bytes(12) + target + _word(1) + _word(0x60) + _word(len(call.data)) + _padded(call.data)
        head.append(_word(offset))
        tails.append(tail)
        offset += len(tail)
    return _SELECTOR + _word(0x20) + _word(len(calls)) + b"".join(head) + b"".join(tails)


def decode_aggregate3(data: bytes, expected: int) -> list[CallResult]:
    """Per call (success and non-empty data, data). Raises ``ValueError`` on a malformed answer.

    A strict direct decoder of ``(bool success, bytes returnData)[]``: every offset and length is
    bounds-checked, the bool must be 0 or 1, padding is not inspected (as ``eth_abi`` in non-strict
    mode)."""
    if not data:
        raise ValueError("empty return data (is Multicall3 deployed at the configured address?)")
    size = len(data)

    def word(at: int) -> int:
        if at < 0 or at + 32 > size:
            raise ValueError("cannot decode aggregate3 result: truncated")
        return int.from_bytes(data[at : at + 32], "big")

    base = word(0)
    count = word(base)
    if count != expected:
        raise ValueError(f"aggregate3 returned {count} results for {expected} calls")
    start = base + 32
    if start + 32 * count > size:
        raise ValueError("cannot decode aggregate3 result: truncated")
    out: list[CallResult] = []
    for i in range(count):
        element = start + word(start + 32 * i)
        ok = word(element)
        if ok > 1:
            raise ValueError("cannot decode aggregate3 result: bool out of range")
        at = element + word(element + 32)
        length = word(at)
        if at + 32 + length > size:
            raise ValueError("cannot decode aggregate3 result: returnData overruns the answer")
        out.append(CallResult(success=bool(ok) and length > 0, data=data[at + 32 : at + 32 + length]))
    return out


_SELECTOR = load_contract("multicall3").function("aggregate3").selector
