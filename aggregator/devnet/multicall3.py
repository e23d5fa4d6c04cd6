"""Put the real Multicall3 at its canonical address 0xcA11bde05977b3631167028862bE2a173976CA11.

The creation bytecode is viem's ``multicall3Bytecode`` constant (``devnet/node_modules/viem/_esm/
constants/contracts.js``; it is the mds1/multicall v3 contract, the same code that is deployed at the
canonical address on every chain). ``eth_call`` of the creation code without a ``to`` returns the
runtime code; ``anvil_setCode`` installs it at the canonical address. No transaction is sent, so the
dev accounts' nonces (and therefore every later contract address) do not depend on this step.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3

from aggregator.devnet.paths import node_modules
from aggregator.errors import ConfigError

__all__ = ["MULTICALL3_ADDRESS", "install_multicall3", "multicall3_abi", "multicall3_creation_code"]

MULTICALL3_ADDRESS: ChecksumAddress = Web3.to_checksum_address("0xcA11bde05977b3631167028862bE2a173976CA11")
_VIEM_CONSTANTS = Path("viem") / "_esm" / "constants" / "contracts.js"
_PATTERN = re.compile(r"multicall3Bytecode\s*=\s*['\"](0x[0-9a-fA-F]+)['\"]")


@cache
def multicall3_creation_code() -> str:
    """Multicall3's creation bytecode, read from viem's constants module."""
    path = node_modules() / _VIEM_CONSTANTS
    try:
        match = _PATTERN.search(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}; run `make setup`", source="devnet") from exc
    if match is None:
        raise ConfigError(f"multicall3Bytecode not found in {path}", source="devnet")
    return match.group(1)


@cache
def multicall3_abi() -> list[dict[str, Any]]:
    """The subset of Multicall3's ABI the devnet and its tests use (``abi/multicall3.json``)."""
    data: list[dict[str, Any]] = json.loads((Path(__file__).parent / "abi" / "multicall3.json").read_text())
    return data


def install_multicall3(w3: Web3) -> ChecksumAddress:
    """Install Multicall3's runtime code at the canonical address (idempotent) and return the address."""
    runtime = w3.eth.call({"data": multicall3_creation_code()})  # type: ignore[typeddict-item]
    if len(runtime) < 100:
        raise ConfigError("Multicall3 creation code returned no runtime code", source="devnet")
    w3.provider.make_request("anvil_setCode", [MULTICALL3_ADDRESS, Web3.to_hex(runtime)])  # type: ignore[arg-type]
    return MULTICALL3_ADDRESS
