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


def encode_aggregate3(calls: Sequence[Call]) -> bytes:
    """Calldata of ``aggregate3`` with ``allowFailure = true`` for every call."""
    function = load_contract("multicall3").function("aggregate3")
    return function.encode([(c.target, True, c.data) for c in calls])


def decode_aggregate3(data: bytes, expected: int) -> list[CallResult]:
    """Per call (success and non-empty data, data). Raises ``ValueError`` on a malformed answer."""
    if not data:
        raise ValueError("empty return data (is Multicall3 deployed at the configured address?)")
    function = load_contract("multicall3").function("aggregate3")
    try:
        (results,) = function.decode(data)
    except Exception as exc:  # eth_abi raises several unrelated types for bad input
        raise ValueError(f"cannot decode aggregate3 result: {type(exc).__name__}") from None
    if len(results) != expected:
        raise ValueError(f"aggregate3 returned {len(results)} results for {expected} calls")
    return [CallResult(success=bool(ok) and len(out) > 0, data=bytes(out)) for ok, out in results]
