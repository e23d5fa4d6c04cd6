"""Hardhat artifacts from ``devnet/node_modules`` and library linking.

An artifact is the JSON Hardhat writes per contract: ``abi``, ``bytecode`` (creation code, with
``__$...$__`` placeholders where libraries go) and ``linkReferences`` (``{source: {library:
[{start, length}]}}``, byte offsets into the creation code). ``link`` writes each library's address
at those offsets. Paths are data (``AAVE_ARTIFACTS``), not globbed, so a missing package fails by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from aggregator.devnet.paths import node_modules
from aggregator.errors import ConfigError

__all__ = ["AAVE_ARTIFACTS", "Artifact", "load_artifact"]

_CORE = "@aave/core-v3/artifacts/contracts"
_PERIPHERY = "@aave/periphery-v3/artifacts/contracts"

#: contract name -> artifact path below ``devnet/node_modules``
AAVE_ARTIFACTS: dict[str, str] = {
    "PoolAddressesProvider": (
        f"{_CORE}/protocol/configuration/PoolAddressesProvider.sol/PoolAddressesProvider.json"
    ),
    "ACLManager": f"{_CORE}/protocol/configuration/ACLManager.sol/ACLManager.json",
    "Pool": f"{_CORE}/protocol/pool/Pool.sol/Pool.json",
    "PoolConfigurator": f"{_CORE}/protocol/pool/PoolConfigurator.sol/PoolConfigurator.json",
    "DefaultReserveInterestRateStrategy": (
        f"{_CORE}/protocol/pool/DefaultReserveInterestRateStrategy.sol/DefaultReserveInterestRateStrategy.json"
    ),
    "AToken": f"{_CORE}/protocol/tokenization/AToken.sol/AToken.json",
    "StableDebtToken": f"{_CORE}/protocol/tokenization/StableDebtToken.sol/StableDebtToken.json",
    "VariableDebtToken": f"{_CORE}/protocol/tokenization/VariableDebtToken.sol/VariableDebtToken.json",
    "AaveOracle": f"{_CORE}/misc/AaveOracle.sol/AaveOracle.json",
    "AaveProtocolDataProvider": f"{_CORE}/misc/AaveProtocolDataProvider.sol/AaveProtocolDataProvider.json",
    "MintableERC20": f"{_CORE}/mocks/tokens/MintableERC20.sol/MintableERC20.json",
    "SupplyLogic": f"{_CORE}/protocol/libraries/logic/SupplyLogic.sol/SupplyLogic.json",
    "BorrowLogic": f"{_CORE}/protocol/libraries/logic/BorrowLogic.sol/BorrowLogic.json",
    "LiquidationLogic": f"{_CORE}/protocol/libraries/logic/LiquidationLogic.sol/LiquidationLogic.json",
    "EModeLogic": f"{_CORE}/protocol/libraries/logic/EModeLogic.sol/EModeLogic.json",
    "BridgeLogic": f"{_CORE}/protocol/libraries/logic/BridgeLogic.sol/BridgeLogic.json",
    "FlashLoanLogic": f"{_CORE}/protocol/libraries/logic/FlashLoanLogic.sol/FlashLoanLogic.json",
    "PoolLogic": f"{_CORE}/protocol/libraries/logic/PoolLogic.sol/PoolLogic.json",
    "ConfiguratorLogic": f"{_CORE}/protocol/libraries/logic/ConfiguratorLogic.sol/ConfiguratorLogic.json",
    "UiPoolDataProviderV3": f"{_PERIPHERY}/misc/UiPoolDataProviderV3.sol/UiPoolDataProviderV3.json",
}


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: ABI, unlinked creation code and where its libraries go."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code, possibly with placeholders
    link_references: dict[str, dict[str, list[dict[str, int]]]]

    @property
    def libraries(self) -> list[str]:
        """Names of the libraries this contract must be linked against."""
        return sorted({lib for refs in self.link_references.values() for lib in refs})

    def link(self, addresses: dict[str, str]) -> str:
        """Creation code with every library placeholder replaced by its 20-byte address."""
        text = list(self.bytecode.removeprefix("0x"))
        for refs in self.link_references.values():
            for lib, spots in refs.items():
                if lib not in addresses:
                    raise ConfigError(f"{self.name} needs library {lib}: no address given", source="devnet")
                hex_address = addresses[lib].removeprefix("0x").lower()
                for spot in spots:
                    start, length = 2 * spot["start"], 2 * spot["length"]
                    text[start : start + length] = list(hex_address)
        linked = "".join(text)
        if "__" in linked or "$" in linked:
            raise ConfigError(f"{self.name}: a library placeholder was left unlinked", source="devnet")
        return "0x" + linked


@cache
def load_artifact(name: str) -> Artifact:
    """Load a Hardhat artifact by contract name (see ``AAVE_ARTIFACTS``)."""
    if name not in AAVE_ARTIFACTS:
        raise ConfigError(f"unknown devnet artifact {name!r}", source="devnet")
    path = node_modules() / AAVE_ARTIFACTS[name]
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read artifact {path}: {exc}; run `make setup`", source="devnet") from exc
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=data["bytecode"],
        link_references=data.get("linkReferences", {}),
    )
