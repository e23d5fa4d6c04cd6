"""Deploy a tiny ENS (registry + resolver stand-ins, ``solidity/EnsRegistryStandIn.sol`` and
``solidity/EnsResolverStandIn.sol``) on the devnet and register names, with real transactions.

``deploy_ens(txs, sender)`` deploys both contracts (the sender owns the root node);
``register_name(txs, ens, "alice.eth", address, sender)`` creates every label from the right with
``setSubnodeOwner`` (owner: the sender), points the name's node at the resolver and sets its address.
Point crossmargin at it with ``ens_registry = "<registry>"`` under ``[chains.<name>]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3

from adapters.ens import namehash, normalize_name
from aggregator.devnet.solc import compile_devnet_contracts
from aggregator.devnet.txs import Txs

__all__ = ["EnsDeployment", "deploy_ens", "register_name"]


@dataclass(frozen=True)
class EnsDeployment:
    registry: ChecksumAddress
    resolver: ChecksumAddress


def deploy_ens(txs: Txs, sender: str) -> EnsDeployment:
    compiled = compile_devnet_contracts()
    registry = txs.deploy(compiled.get("EnsRegistryStandIn").deployable, sender=sender)
    resolver = txs.deploy(compiled.get("EnsResolverStandIn").deployable, sender=sender)
    return EnsDeployment(
        registry=Web3.to_checksum_address(registry.address),
        resolver=Web3.to_checksum_address(resolver.address),
    )


def register_name(txs: Txs, ens: EnsDeployment, name: str, address: str, sender: str) -> bytes:
    """Register ``name`` -> ``address``; returns the name's node (namehash)."""
    compiled = compile_devnet_contracts()
    registry = txs.contract(compiled.get("EnsRegistryStandIn").deployable, ens.registry)
    resolver = txs.contract(compiled.get("EnsResolverStandIn").deployable, ens.resolver)
    normalized = normalize_name(name)
    labels = normalized.split(".")
    parent = b"\x00" * 32
    for i in range(len(labels) - 1, -1, -1):
        label = labels[i]
        txs.transact(registry.functions.setSubnodeOwner(parent, keccak(label.encode()), sender), sender)
        parent = namehash(".".join(labels[i:]))
    txs.transact(registry.functions.setResolver(parent, ens.resolver), sender)
    txs.transact(resolver.functions.setAddr(parent, Web3.to_checksum_address(address)), sender)
    return parent
