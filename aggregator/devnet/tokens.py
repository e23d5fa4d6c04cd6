"""Mintable test ERC20s (``MintableERC20`` from ``@aave/core-v3`` mocks) for the devnet tokens.

``MintableERC20.mint(address, uint256)`` mints to anyone; the seeding mints real balances this way,
then approves and supplies through the protocols.
"""

from __future__ import annotations

from eth_typing import ChecksumAddress
from web3.contract import Contract

from aggregator.devnet.artifacts import load_artifact
from aggregator.devnet.market import TOKENS
from aggregator.devnet.txs import Txs

__all__ = ["approve", "deploy_tokens", "erc20", "mint"]


def deploy_tokens(txs: Txs, deployer: str) -> dict[str, ChecksumAddress]:
    """Deploy one MintableERC20 per ``market.TOKENS`` entry; symbol -> address."""
    artifact = load_artifact("MintableERC20")
    return {
        spec.symbol: txs.deploy(artifact, spec.name, spec.symbol, spec.decimals, sender=deployer).address
        for spec in TOKENS
    }


def erc20(txs: Txs, address: str) -> Contract:
    """Bind the MintableERC20 ABI (a superset of ERC20) to ``address``."""
    return txs.contract(load_artifact("MintableERC20"), address)


def mint(txs: Txs, token: str, to: str, amount: int) -> None:
    """Mint ``amount`` base units of ``token`` to ``to`` (sent by ``to`` itself)."""
    fn = erc20(txs, token).get_function_by_signature("mint(address,uint256)")(to, amount)
    txs.transact(fn, to)


def approve(txs: Txs, token: str, owner: str, spender: str, amount: int) -> None:
    """``owner`` approves ``spender`` for ``amount`` base units of ``token``."""
    txs.transact(erc20(txs, token).functions.approve(spender, amount), owner)
