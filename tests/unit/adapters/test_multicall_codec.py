"""The direct ``aggregate3`` encoder/decoder against ``eth_abi`` (the reference), property-based."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from adapters.addresses import ChecksumAddress
from adapters.base import Call, CallResult
from adapters.evm.abi import load_contract
from adapters.evm.multicall import decode_aggregate3, encode_aggregate3

AGGREGATE3 = load_contract("multicall3").function("aggregate3")

addresses = st.binary(min_size=20, max_size=20).map(lambda b: ChecksumAddress("0x" + b.hex()))
calls = st.lists(st.builds(Call, target=addresses, data=st.binary(max_size=100)), max_size=12)
results = st.lists(st.tuples(st.booleans(), st.binary(max_size=100)), max_size=12)


@given(calls)
def test_encoding_equals_eth_abi(batch: list[Call]) -> None:
    assert encode_aggregate3(batch) == AGGREGATE3.encode([(c.target, True, c.data) for c in batch])


@given(results)
def test_decoding_equals_eth_abi(answers: list[tuple[bool, bytes]]) -> None:
    data = encode(["(bool,bytes)[]"], [answers])
    assert decode_aggregate3(data, len(answers)) == [CallResult(ok and len(out) > 0, out) for ok, out in answers]


@given(results.filter(bool), st.data())
def test_truncated_or_corrupted_answers_are_errors(answers: list[tuple[bool, bytes]], data: st.DataObject) -> None:
    encoded = encode(["(bool,bytes)[]"], [answers])
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        decoded = decode_aggregate3(encoded[:cut], len(answers))
    except ValueError:
        return
    # a cut inside the final padding leaves every value intact
    assert decoded == [CallResult(ok and len(out) > 0, out) for ok, out in answers]


def test_wrong_count_and_bad_bool() -> None:
    encoded = encode(["(bool,bytes)[]"], [[(True, b"\x01")]])
    with pytest.raises(ValueError, match="1 results for 2 calls"):
        decode_aggregate3(encoded, 2)
    bad = bytearray(encoded)
    bad[3 * 32 + 31] = 2  # the element's bool word
    with pytest.raises(ValueError, match="bool"):
        decode_aggregate3(bytes(bad), 1)
    with pytest.raises(ValueError, match="empty"):
        decode_aggregate3(b"", 0)
