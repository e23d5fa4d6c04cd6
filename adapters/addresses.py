"""EVM address validation (EIP-55): checksummed or single-case input, normalized to the checksum form."""

from __future__ import annotations

import re
from typing import Annotated, NewType

from eth_utils.address import to_checksum_address
from pydantic import AfterValidator

__all__ = ["Address", "ChecksumAddress", "InvalidAddress", "parse_address"]

ChecksumAddress = NewType("ChecksumAddress", str)

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class InvalidAddress(ValueError):
    """The text is not an EVM address, or its mixed case fails the EIP-55 checksum."""


def parse_address(text: str) -> ChecksumAddress:
    """Accept ``0x`` + 40 hex digits: all-lowercase or all-uppercase as unchecked input, mixed case
    only with a valid EIP-55 checksum. Returns the checksummed form."""
    candidate = text.strip()
    if not _HEX_ADDRESS.match(candidate):
        digits = len(candidate) - 2 if candidate.startswith("0x") else len(candidate)
        raise InvalidAddress(
            f"{text!r} is not an address: expected 0x followed by 40 hex digits (got {digits} characters)"
        )
    body = candidate[2:]
    checksummed = to_checksum_address("0x" + body.lower())
    if body.lower() != body and body.upper() != body and checksummed != candidate:
        raise InvalidAddress(f"{text!r} fails its EIP-55 checksum (did you mean {checksummed}?)")
    return ChecksumAddress(checksummed)


Address = Annotated[str, AfterValidator(parse_address)]
"""A pydantic field type that validates and checksums an address."""
