"""The fast static codec of ``adapters.lending_common`` against ``eth_abi`` (the reference)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from adapters.addresses import ChecksumAddress
from adapters.base import CallResult
from adapters.evm.abi import load_contract
from adapters.lending_common import CallFailed, decode_result, encode_call, wad_health
from risk.exact.wadray import MAX_UINT256

COMET = load_contract("comet")
POOL = load_contract("aave_pool")
MORPHO = load_contract("morpho_blue")
TARGET = ChecksumAddress("0x0000000000000000000000000000000000000001")
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@given(addresses, addresses)
def test_encode_matches_eth_abi(a: str, b: str) -> None:
    fn = COMET.function("userCollateral")
    assert encode_call(fn, TARGET, a, b).data == fn.call(TARGET, a, b).data
    pos = MORPHO.function("position")
    key = bytes(range(32))
    assert encode_call(pos, TARGET, key, a).data == pos.call(TARGET, key, a).data


@given(
    st.integers(-(2**103), 2**103 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**8 - 1),
)
def test_decode_signed_and_unsigned_matches_eth_abi(p: int, i: int, acc: int, assets_in: int, r: int) -> None:
    fn = COMET.function("userBasic")
    data = encode(["int104", "uint64", "uint64", "uint16", "uint8"], [p, i, acc, assets_in, r])
    assert decode_result(fn, CallResult(True, data), "t") == fn.decode(data)


def test_nested_static_tuple_matches_eth_abi() -> None:
    fn = POOL.function("getUserConfiguration")
    data = (12345).to_bytes(32, "big")
    assert decode_result(fn, CallResult(True, data), "t") == fn.decode(data) == ((12345,),)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "reverted or returned nothing"),
        (b"\x01\x02", "not whole ABI words"),
        ((2**200).to_bytes(32, "big") * 5, "out of range"),  # uint104 / uint64 with dirty bits
    ],
)
def test_garbage_is_a_call_failure(data: bytes, reason: str) -> None:
    fn = COMET.function("userBasic")
    with pytest.raises(CallFailed, match=reason):
        decode_result(fn, CallResult(bool(data), data), "Comet")


def test_too_short_and_dirty_address() -> None:
    with pytest.raises(CallFailed, match="too few bytes"):
        decode_result(COMET.function("userBasic"), CallResult(True, bytes(64)), "Comet")
    with pytest.raises(CallFailed, match="dirty high bytes"):
        decode_result(COMET.function("baseToken"), CallResult(True, b"\xff" * 32), "Comet")


def test_wad_health() -> None:
    assert wad_health(MAX_UINT256) == Decimal("Infinity")
    assert wad_health(1_050_000_000_000_000_001) == Decimal("1.050000000000000001")
