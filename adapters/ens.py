"""ENS names (``vitalik.eth``) -> addresses, read through a :class:`adapters.base.ChainReader`.

What is read from where
-----------------------
1. ``node = namehash(name)`` (EIP-137): ``node_0 = 0x00 * 32``;
   ``node_{i+1} = keccak256(node_i ++ keccak256(label))`` over the labels from the right
   (``eth``, then ``vitalik``).
2. The ENS registry's ``resolver(node)`` at one pinned block (the registry address is
   ``[chains.<name>] ens_registry``, default :data:`MAINNET_REGISTRY` on chain id 1). A zero address:
   the name has no resolver (it is not registered, or its owner never set one).
3. That resolver's ``addr(node)`` (EIP-137 ``addr(bytes32)``, coin type 60) at the same block. A zero
   address: the name has no ETH address.

Both reads go through ``ChainReader.call_many`` (Multicall3, or JSON-RPC batches), so the RPC pool's
failover and circuit breaker apply. Names are resolved together: one registry batch, one resolver batch.

Normalization (what is done, and what of ENSIP-15 is not)
---------------------------------------------------------
Done: Unicode NFC, lowercase (``str.lower``), surrounding whitespace stripped; refused: an empty label
(``a..eth``, a leading or trailing dot), whitespace or control characters inside, ASCII characters
other than ``a-z 0-9 - _``, a name that does not end in ``.eth`` (:func:`looks_like_ens`).
**Not done** (ENSIP-15 / UTS-46): the full mapping table (e.g. full-width and compatibility
characters are not mapped), emoji sequence validation, confusable and mixed-script checks, the
``--`` in position 3-4 rule, disallowed non-ASCII code points. A non-ASCII name is hashed as given after
NFC + lowercase, which matches ENSIP-15 for names that are already normalized; type names in their
normalized form when in doubt. Wildcard resolution (ENSIP-10) and CCIP-read (EIP-3668) are not
supported: a name served only that way reports "no resolver".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from adapters.addresses import ChecksumAddress, parse_address
from adapters.base import BlockRef, ChainReader
from adapters.evm.abi import load_contract
from risk.errors import CrossmarginError

__all__ = [
    "MAINNET_REGISTRY",
    "EnsError",
    "EnsResolution",
    "looks_like_ens",
    "namehash",
    "normalize_name",
    "resolve_names",
]

MAINNET_REGISTRY = ChecksumAddress("0x00000000000C2E074eC69A0dFb2997BA6C7d2e1e")
"""The ENS registry (with fallback) on Ethereum mainnet, chain id 1."""

_ZERO = "0x" + "00" * 20
_ASCII_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class EnsError(CrossmarginError):
    """A name is malformed, unregistered or has no address (a bad input, not a venue failure)."""


@dataclass(frozen=True, slots=True)
class EnsResolution:
    name: str  # normalized
    address: ChecksumAddress
    block: BlockRef


def looks_like_ens(text: str) -> bool:
    """True for text meant as an ENS name: it ends in ``.eth`` (any case)."""
    return text.strip().lower().endswith(".eth")


def normalize_name(text: str) -> str:
    """NFC + lowercase + the basic checks of the module docstring; raises :class:`EnsError`."""
    name = unicodedata.normalize("NFC", text.strip()).lower()
    if not name.endswith(".eth"):
        raise EnsError(f"{text!r} is not an ENS name: expected a name ending in .eth")
    for label in name.split("."):
        if not label:
            raise EnsError(f"{text!r}: empty label (two dots, or a leading or trailing dot)")
        for ch in label:
            if ch.isspace() or unicodedata.category(ch).startswith("C"):
                raise EnsError(f"{text!r}: label {label!r} holds whitespace or a control character")
            if ord(ch) < 128 and ch not in _ASCII_ALLOWED:
                raise EnsError(f"{text!r}: character {ch!r} is not allowed in an ENS name")
    return name


def namehash(name: str) -> bytes:
    """EIP-137 namehash of an already normalized name (``""`` -> 32 zero bytes)."""
    node = b"\x00" * 32
    if name:
        for label in reversed(name.split(".")):
            node = keccak(node + keccak(label.encode("utf-8")))
    return bytes(node)


def _address(data: bytes, what: str) -> str:
    try:
        (value,) = load_contract("ens_registry").function("resolver").decode(data)
    except (DecodingError, ValueError) as exc:
        raise EnsError(f"{what}: malformed answer ({exc})") from None
    return str(value)


async def resolve_names(
    reader: ChainReader,
    names: Sequence[str],
    *,
    registry: ChecksumAddress,
    block: BlockRef | None = None,
) -> Mapping[str, EnsResolution]:
    """Resolve every name (as typed) at one block (pinned here unless given); see the module docstring.

    Returns ``{name as typed: EnsResolution}``; a name without resolver or address raises
    :class:`EnsError` naming it. RPC failures propagate as the reader raises them."""
    if not names:
        return {}
    normalized = {text: normalize_name(text) for text in names}
    pinned = block or await reader.pin()
    nodes = {text: namehash(name) for text, name in normalized.items()}
    resolver_fn = load_contract("ens_registry").function("resolver")
    addr_fn = load_contract("ens_resolver").function("addr")
    order = list(nodes)
    registry_results = await reader.call_many([resolver_fn.call(registry, nodes[t]) for t in order], pinned)
    resolvers: dict[str, str] = {}
    for text, result in zip(order, registry_results, strict=True):
        if not result.success:
            raise EnsError(
                f"{text}: the ENS registry {registry} on {reader.chain} did not answer resolver() "
                "(is ens_registry right for this chain?)"
            )
        resolver = _address(result.data, f"ENS registry resolver({normalized[text]})")
        if resolver.lower() == _ZERO:
            raise EnsError(f"{text}: no resolver set in the ENS registry on {reader.chain} (not registered?)")
        resolvers[text] = resolver
    addr_results = await reader.call_many(
        [addr_fn.call(parse_address(resolvers[t]), nodes[t]) for t in order], pinned
    )
    out: dict[str, EnsResolution] = {}
    for text, result in zip(order, addr_results, strict=True):
        if not result.success:
            raise EnsError(f"{text}: its resolver {resolvers[text]} did not answer addr()")
        address = _address(result.data, f"ENS resolver addr({normalized[text]})")
        if address.lower() == _ZERO:
            raise EnsError(f"{text}: the name has no ETH address set")
        out[text] = EnsResolution(name=normalized[text], address=parse_address(address), block=pinned)
    return out
