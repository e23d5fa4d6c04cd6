"""Helpers shared by the on-chain lending adapters (``aave_v3``, ``compound_v3``, ``morpho_blue``):
strict decoding of one Multicall3 result, exact integer -> ``Decimal`` conversions, the per-wallet
failure type that turns into an ``UNAVAILABLE`` account with its reason, the ``read_accounts`` frame
(:func:`read_pinned`: reader, pinned block, deployment-level failure -> every wallet UNAVAILABLE), the
per-wallet decode and build loops (:func:`decode_each`, :func:`build_each`), and a process-level
:class:`DiscoveryCache` for deployment facts that do not change between cycles.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from eth_abi.exceptions import DecodingError

from adapters.addresses import ChecksumAddress
from adapters.base import BlockRef, Call, CallResult, ChainReader, VenueAdapter
from adapters.errors import VenueError
from adapters.evm.abi import Function
from risk.exact.wadray import MAX_UINT256
from risk.model import AsOf, MarginAccount

__all__ = [
    "DISCOVERY",
    "Batch",
    "CallFailed",
    "DiscoveryCache",
    "build_each",
    "decode_each",
    "decode_result",
    "encode_call",
    "fraction_bps",
    "read_pinned",
    "units",
    "wad_health",
]

T = TypeVar("T")


class CallFailed(Exception):
    """One read failed (revert, empty or undecodable answer): ``str()`` is the reason to report."""


_Type = str | tuple["_Type", ...]


def _parse(types: tuple[str, ...] | list[str]) -> list[_Type] | None:
    """Canonical ABI types -> nested static structure, or ``None`` when any type is dynamic."""
    out: list[_Type] = []
    for t in types:
        if t.startswith("(") and t.endswith(")"):
            inner = _split(t[1:-1])
            parsed = _parse(inner)
            if parsed is None:
                return None
            out.append(tuple(parsed))
        elif t in {"address", "bool", "bytes32"} or (t.startswith(("uint", "int")) and not t.endswith("]")):
            out.append(t)
        else:
            return None
    return out


def _split(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if text:
        parts.append(text[start:])
    return parts


def _width(t: _Type) -> int:
    return sum(_width(x) for x in t) if isinstance(t, tuple) else 1


def _word(t: str, raw: bytes, what: str) -> object:
    value = int.from_bytes(raw, "big")
    if t == "address":
        if value >> 160:
            raise CallFailed(f"{what}: address word has dirty high bytes")
        return "0x" + raw[12:].hex()
    if t == "bool":
        if value > 1:
            raise CallFailed(f"{what}: bool word is {value}")
        return bool(value)
    if t == "bytes32":
        return raw
    bits = int(t.removeprefix("u").removeprefix("int") or "256")
    if t.startswith("uint"):
        if value >> bits:
            raise CallFailed(f"{what}: {t} out of range")
        return value
    signed = value - (1 << 256) if value >> 255 else value
    if not -(1 << (bits - 1)) <= signed < (1 << (bits - 1)):
        raise CallFailed(f"{what}: {t} out of range")
    return signed


def _decode_static(types: list[_Type], data: bytes, offset: int, what: str) -> tuple[tuple[Any, ...], int]:
    out: list[Any] = []
    for t in types:
        if isinstance(t, tuple):
            value, offset = _decode_static(list(t), data, offset, what)
            out.append(value)
        else:
            out.append(_word(t, data[offset : offset + 32], what))
            offset += 32
    return tuple(out), offset


_STATIC: dict[tuple[str, ...], list[_Type] | None] = {}
_SELECTORS: dict[str, bytes] = {}


def _static_outputs(fn: Function) -> list[_Type] | None:
    if fn.outputs not in _STATIC:
        _STATIC[fn.outputs] = _parse(fn.outputs)
    return _STATIC[fn.outputs]


def encode_call(fn: Function, target: ChecksumAddress, *args: Any) -> Call:
    """``fn.call(target, *args)`` with a fast path for static word arguments (address, uintN,
    bytes32): the same bytes ``eth_abi`` produces, without its per-call overhead."""
    if len(args) == len(fn.inputs) and all(
        t in {"address", "bytes32"} or (t.startswith("uint") and "[" not in t) for t in fn.inputs
    ):
        words = []
        for t, a in zip(fn.inputs, args, strict=True):
            if t == "address":
                words.append(bytes(12) + bytes.fromhex(str(a)[2:]))
            elif t == "bytes32":
                if not isinstance(a, bytes) or len(a) != 32:
                    return fn.call(target, *args)
                words.append(a)
            else:
                if not isinstance(a, int) or a < 0 or a >> int(t[4:] or "256"):
                    return fn.call(target, *args)
                words.append(a.to_bytes(32, "big"))
        selector = _SELECTORS.get(fn.signature)
        if selector is None:
            selector = _SELECTORS[fn.signature] = fn.selector  # a keccak per access otherwise
        return Call(target=target, data=selector + b"".join(words))
    return fn.call(target, *args)


def decode_result(fn: Function, result: CallResult, what: str) -> tuple[Any, ...]:
    """Decode ``result`` with ``fn``'s output types, or raise :class:`CallFailed` saying ``what`` failed.

    A revert, empty return data (no code at the target), or data that does not decode (too short,
    garbage) are all failures; data longer than the static head is accepted as ``eth_abi`` does."""
    if not result.success:
        detail = f" (revert data 0x{result.data[:36].hex()})" if result.data else ""
        raise CallFailed(f"{what}: {fn.name} reverted or returned nothing{detail}")
    if not result.data or len(result.data) % 32:
        raise CallFailed(f"{what}: {fn.name} returned {len(result.data)} bytes, not whole ABI words")
    static = _static_outputs(fn)
    if static is not None:
        if len(result.data) < 32 * sum(_width(t) for t in static):
            raise CallFailed(f"{what}: {fn.name} returned too few bytes ({len(result.data)})")
        return _decode_static(static, result.data, 0, f"{what}: {fn.name}")[0]
    try:
        return fn.decode(result.data)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise CallFailed(f"{what}: {fn.name} returned undecodable data ({type(exc).__name__})") from None


def units(amount: int, decimals: int) -> Decimal:
    """``amount / 10**decimals`` exactly (``Decimal.scaleb`` never rounds an integer coefficient)."""
    return Decimal(amount).scaleb(-decimals)


def wad_health(value: int) -> Decimal:
    """A wad health factor as ``Decimal``: ``type(uint256).max`` (no debt) is ``Infinity``."""
    if value == MAX_UINT256:
        return Decimal("Infinity")
    return units(value, 18)


def fraction_bps(bps: int) -> Decimal:
    """Basis points as a fraction: ``8250 -> 0.825``."""
    return units(bps, 4)


class Batch:
    """Calls collected under keys, sent in ONE ``ChainReader.call_many`` at the pinned block."""

    def __init__(self) -> None:
        self._keys: list[Hashable] = []
        self._calls: list[Call] = []

    def add(self, key: Hashable, call: Call) -> None:
        self._keys.append(key)
        self._calls.append(call)

    def __len__(self) -> int:
        return len(self._calls)

    async def run(self, reader: ChainReader, block: BlockRef) -> dict[Hashable, CallResult]:
        if not self._calls:
            return {}
        results = await reader.call_many(self._calls, block)
        if len(results) != len(self._calls):
            raise CallFailed(f"the reader returned {len(results)} results for {len(self._calls)} calls")
        return dict(zip(self._keys, results, strict=True))


Reader = Callable[[ChainReader, BlockRef, list[ChecksumAddress]], Awaitable[list[MarginAccount]]]


async def read_pinned(
    adapter: VenueAdapter,
    chain: str,
    wallets: Sequence[ChecksumAddress],
    block: BlockRef | None,
    read: Reader,
    *,
    pin: Callable[[ChainReader], Awaitable[BlockRef]] | None = None,
) -> list[MarginAccount]:
    """The frame of every lending ``read_accounts``: wallets deduplicated, the chain's reader from the
    context, the block pinned (by ``pin`` when given, else ``reader.pin()``) unless the caller pinned
    it, then ``read``. A deployment-level failure (no reader, ``VenueError``, :class:`CallFailed`)
    makes every wallet one UNAVAILABLE account with the reason, as of the block when there is one."""
    unique = list(dict.fromkeys(wallets))
    as_of = AsOf(timestamp=adapter.context.now(), chain=chain)
    try:
        reader = adapter.context.chains.get(chain)
        if reader is None:
            raise CallFailed(f"no reader for chain {chain!r}")
        if block is None:
            block = await (pin(reader) if pin is not None else reader.pin())
        as_of = block.as_of()
        return await read(reader, block, unique)
    except (VenueError, CallFailed) as exc:
        return [adapter.unavailable(w, f"{adapter.deployment}: {exc}", as_of) for w in unique]


def decode_each(
    wallets: Sequence[ChecksumAddress], decode: Callable[[ChecksumAddress], T]
) -> tuple[dict[ChecksumAddress, T], dict[ChecksumAddress, str]]:
    """``decode(wallet)`` per wallet: (decoded, failed reasons); a :class:`CallFailed` fails that
    wallet only."""
    decoded: dict[ChecksumAddress, T] = {}
    failed: dict[ChecksumAddress, str] = {}
    for w in wallets:
        try:
            decoded[w] = decode(w)
        except CallFailed as exc:
            failed[w] = str(exc)
    return decoded, failed


def build_each(
    adapter: VenueAdapter,
    wallets: Sequence[ChecksumAddress],
    failed: dict[ChecksumAddress, str],
    block: BlockRef,
    build: Callable[[ChecksumAddress], MarginAccount | None],
) -> list[MarginAccount]:
    """Per wallet in order: UNAVAILABLE with its reason when it failed earlier or ``build`` raises
    :class:`CallFailed` / ``ValueError``; nothing when ``build`` returns None (no position here)."""
    out: list[MarginAccount] = []
    for w in wallets:
        if w in failed:
            out.append(adapter.unavailable(w, f"{adapter.deployment}: {failed[w]}", block.as_of()))
            continue
        try:
            account = build(w)
        except (CallFailed, ValueError) as exc:
            out.append(adapter.unavailable(w, f"{adapter.deployment}: {exc}", block.as_of()))
            continue
        if account is not None:
            out.append(account)
    return out


class DiscoveryCache:
    """Process-level facts about a deployment that do not change between cycles (a Pool proxy's
    address, a reserve's id and tokens), keyed by the caller (e.g. chain id, RPC URLs, configured
    address) so that a rebuilt adapter reuses them. Entries expire after ``ttl_s`` (monotonic time);
    callers still check what they read against the pinned block and :meth:`forget` a stale entry."""

    def __init__(self, ttl_s: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry[0] > self.ttl_s:
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        self._entries[key] = (self.clock(), value)

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


DISCOVERY = DiscoveryCache()
"""The process's cache (a module-level instance so every adapter instance of a deployment shares it)."""
