"""The Aave V3 ABIs this adapter uses (``adapters/abi/*.json``) and the decoders of their answers."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.addresses import ChecksumAddress, parse_address
from adapters.base import CallResult
from adapters.evm.abi import load_contract
from adapters.lending_common import CallFailed, decode_result

__all__ = [
    "ORACLE",
    "POOL",
    "PROVIDER",
    "TOKEN",
    "ReserveStatic",
    "address",
    "decode_symbol",
]

PROVIDER = load_contract("aave_pool_addresses_provider")
POOL = load_contract("aave_pool")
ORACLE = load_contract("aave_oracle")
TOKEN = load_contract("lending_token")
_TOKEN_BYTES32 = load_contract("lending_token_bytes32")


@dataclass(frozen=True, slots=True)
class ReserveStatic:
    """What never changes for a listed reserve: its id (user-configuration bit index), tokens, symbol."""

    asset: ChecksumAddress
    reserve_id: int
    a_token: ChecksumAddress
    stable_debt_token: ChecksumAddress
    variable_debt_token: ChecksumAddress
    symbol: str


def decode_symbol(result: CallResult, fallback: str) -> str:
    """ERC-20 ``symbol()`` as ``string``, else as ``bytes32`` (MKR-style), else ``fallback``."""
    try:
        (text,) = decode_result(TOKEN.function("symbol"), result, "symbol")
        return str(text)
    except CallFailed:
        pass
    try:
        (raw,) = decode_result(_TOKEN_BYTES32.function("symbol"), result, "symbol")
        return bytes(raw).rstrip(b"\0").decode("utf-8", errors="replace") or fallback
    except CallFailed:
        return fallback


def address(value: object) -> ChecksumAddress:
    """A decoded ABI address, checksummed."""
    return parse_address(str(value))
