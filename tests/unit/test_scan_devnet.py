"""``run_scan`` / ``crossmargin scan`` over a real anvil chain with a test EVM adapter, and a dead chain
next to it: the dead chain's adapters are UNAVAILABLE, the live chain's accounts are pinned and OK."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from eth_abi.abi import decode

from adapters.addresses import ChecksumAddress
from adapters.base import BlockRef, VenueAdapter
from adapters.evm import load_contract
from adapters.registry import REGISTRY
from aggregator.cli import app
from aggregator.cli.app import run
from aggregator.devnet.anvil import free_port
from risk.model import (
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginModel,
    Position,
    PositionKind,
)
from tests.fixtures_devnet import AnvilChain

pytestmark = pytest.mark.devnet

MC = "0xcA11bde05977b3631167028862bE2a173976CA11"
EMPTY = "0x000000000000000000000000000000000000dEaD"


class BalanceLender(VenueAdapter):
    """A stand-in lending venue: collateral = the wallet's ETH balance at the pinned block (price 2000,
    LT 0.8), debt = 1000 USDC; wallets without ETH have no account."""

    family = "aave_v3"
    kind: ClassVar[Literal["evm", "http"]] = "evm"
    margin_model: ClassVar[MarginModel] = LendingModel()
    capabilities: ClassVar[frozenset[str]] = frozenset()

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        assert block is not None and self.chain is not None
        reader = self.context.chains[self.chain]
        balance_of = load_contract("multicall3").function("getEthBalance")
        results = await reader.call_many([balance_of.call(ChecksumAddress(MC), w) for w in wallets], block)
        out = []
        for wallet, result in zip(wallets, results, strict=True):
            (wei,) = decode(["uint256"], result.data)
            if wei == 0:
                continue
            params = LendingParams(ltv=Decimal("0.75"), liquidation_threshold=Decimal("0.8"),
                                   liquidation_bonus=Decimal("0.05"))
            positions = (
                Position(token="WETH", factor=FactorId("ETH"), kind=PositionKind.COLLATERAL,
                         quantity=Decimal(wei) / Decimal(10**18), price=Decimal(2000), lending=params),
                Position(token="USDC", factor=FactorId("USD"), kind=PositionKind.DEBT,
                         quantity=Decimal(-1000), price=Decimal(1)),
            )
            out.append(MarginAccount(venue=self.family, deployment=self.deployment, account_id=wallet,
                                     wallet=wallet, margin_model=self.margin_model, positions=positions,
                                     as_of=block.as_of()))
        return out


class DeadChainLender(BalanceLender):
    family = "compound_v3"


def config(tmp_path: Path, live_url: str) -> Path:
    path = tmp_path / "devnet.toml"
    path.write_text(f"""
[chains.devnet]
chain_id = 31337
rpc_urls = ["{live_url}"]

[chains.deadnet]
chain_id = 31337
rpc_urls = ["http://127.0.0.1:{free_port()}"]

[deployments.aave_v3.devnet]
chain = "devnet"
pool_addresses_provider = "0x0000000000000000000000000000000000000001"

[deployments.compound_v3.dead]
chain = "deadnet"
comet = "0x0000000000000000000000000000000000000002"
base_symbol = "USDC"
""")
    return path


def test_scan_pins_live_chain_and_isolates_dead_chain(
    anvil: AnvilChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(REGISTRY, "aave_v3", BalanceLender)
    monkeypatch.setitem(REGISTRY, "compound_v3", DeadChainLender)
    rich = anvil.accounts[4]
    monkeypatch.setattr(sys, "argv", ["crossmargin", "scan", rich, EMPTY, "--config", str(config(tmp_path, anvil.rpc_url)),
                                      "--only", "aave_v3:devnet,compound_v3", "--json"])
    code = run(app)
    doc = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert code == 3
    live = [a for a in doc["accounts"] if a["deployment"] == "aave_v3:devnet"]
    assert len(live) == 1 and live[0]["wallet"] == rich and live[0]["status"] == "ok"
    block = anvil.w3.eth.get_block(live[0]["as_of"]["block"])
    assert live[0]["as_of"]["block_hash"] == block["hash"].to_0x_hex()
    assert live[0]["chain"] == "devnet" and live[0]["as_of"]["chain"] == "devnet"
    balance = Decimal(anvil.w3.eth.get_balance(rich, block["number"])) / Decimal(10**18)
    assert live[0]["health"] == balance * 2000 * Decimal("0.8") / 1000  # Σ coll·price·LT / Σ debt·price
    assert live[0]["health_source"] in ("lending_formula", "risk")
    dead = [a for a in doc["accounts"] if a["deployment"] == "compound_v3:dead"]
    assert {a["wallet"] for a in dead} == {rich, EMPTY}
    assert all(a["status"] == "unavailable" and "cannot read chain deadnet" in a["status_reason"] for a in dead)
    reads = {(r["deployment"], r["wallet"]): r for r in doc["reads"]}
    assert reads[("aave_v3:devnet", EMPTY)] == {"deployment": "aave_v3:devnet", "wallet": EMPTY, "status": "ok",
                                                "reason": None, "accounts": 0}
