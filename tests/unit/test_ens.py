"""ENS name handling: EIP-137 namehash vectors and the normalization this build does."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from adapters.ens import EnsError, looks_like_ens, namehash, normalize_name


def test_namehash_eip137_vectors() -> None:
    assert namehash("") == b"\x00" * 32
    assert namehash("eth").hex() == "93cdeb708b7545dc668eb9280176169d1c33cfd8ed6f04690a0bcc88a93fc4ae"
    assert namehash("foo.eth").hex() == "de9b09fd7c5f901e23a3f19fecc54828e9c848539801e86591bd9801b019f84f"


@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12),
                min_size=1, max_size=4))
def test_namehash_is_recursive(labels: list[str]) -> None:
    name = ".".join([*labels, "eth"])
    parent = ".".join([*labels[1:], "eth"])
    assert namehash(name) == keccak(namehash(parent) + keccak(labels[0].encode()))


def test_normalization() -> None:
    assert normalize_name("  Alice.ETH ") == "alice.eth"
    assert normalize_name("ca\u0301fe.eth") == "c\u00e1fe.eth"  # NFC composes a + U+0301
    assert looks_like_ens("Vitalik.eth") and not looks_like_ens("0xabc") and not looks_like_ens("fund")
    for bad, why in (("a..eth", "empty label"), (".eth", "empty label"), ("al ice.eth", "whitespace"),
                     ("al/ice.eth", "not allowed"), ("alice.com", "ending in .eth")):
        with pytest.raises(EnsError, match=why):
            normalize_name(bad)
