from __future__ import annotations

import pytest
from eth_utils import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from adapters.addresses import InvalidAddress, parse_address

VITALIK = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"


@pytest.mark.parametrize("text", [VITALIK, VITALIK.lower(), "0x" + VITALIK[2:].upper(), f"  {VITALIK} "])
def test_accepts_checksummed_and_single_case(text: str) -> None:
    assert parse_address(text) == VITALIK


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (VITALIK[:-1], "39 characters"),
        (VITALIK + "0", "41 characters"),
        ("0x" + "g" * 40, "40 hex digits"),
        ("vitalik.eth", "not an address"),
        ("", "not an address"),
        (VITALIK.replace("dA6BF", "da6BF"), "checksum"),  # one letter with the wrong case
        ("0xD8dA6BF26964aF9D7eEd9e03E53415D37aA96045", "checksum"),
    ],
)
def test_rejects_with_a_message_naming_the_input(text: str, fragment: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        parse_address(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


@given(st.binary(min_size=20, max_size=20))
def test_round_trip_any_address(raw: bytes) -> None:
    lower = "0x" + raw.hex()
    expected = to_checksum_address(lower)
    assert parse_address(lower) == expected
    assert parse_address(expected) == expected


@given(st.binary(min_size=20, max_size=20), st.integers(min_value=2, max_value=41))
def test_a_flipped_case_is_rejected_or_equal(raw: bytes, index: int) -> None:
    good = to_checksum_address("0x" + raw.hex())
    char = good[index]
    if not char.isalpha():
        return
    flipped = good[:index] + char.swapcase() + good[index + 1 :]
    body = flipped[2:]
    if body.lower() == body or body.upper() == body:
        assert parse_address(flipped) == good  # became single-case: unchecked input
    else:
        with pytest.raises(InvalidAddress):
            parse_address(flipped)
