"""``crossmargin scan`` without a chain: target selection, input errors, adapter failures, JSON shape.

Adapters are test doubles registered in ``adapters.registry.REGISTRY`` under configured family names
(HTTP venues, so nothing leaves the machine); the CLI is run in-process through ``aggregator.cli``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import pytest

from adapters.addresses import ChecksumAddress
from adapters.base import BlockRef
from adapters.errors import VenueUnavailable
from adapters.registry import REGISTRY
from aggregator.config import load_config
from aggregator.errors import InputError
from aggregator.scan import parse_only, run_scan, select_targets
from risk.model import (
    AsOf,
    CrossPerpModel,
    FactorId,
    MarginAccount,
    MarginModel,
    Position,
    PositionKind,
)
from tests.support.cli import FakeHttpAdapter, register
from tests.support.cli import run_cli as cli

WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
OTHER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SERVER_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class _Fake(FakeHttpAdapter):
    margin_model: ClassVar[MarginModel] = CrossPerpModel()


class RaisingAdapter(_Fake):
    family = "hyperliquid"

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        raise VenueUnavailable("HTTP 503 from the info endpoint", venue=self.deployment)


class BuggyAdapter(_Fake):
    family = "dydx_v4"

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        raise KeyError("marginSummary")


class SpotAdapter(_Fake):
    """One account with 2.5 ETH of spot for WALLET; nothing for anyone else."""

    family = "derive"

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        assert block is None  # HTTP venues get no block
        out = []
        for wallet in wallets:
            if wallet == WALLET:
                position = Position(token="ETH", factor=FactorId("ETH"), kind=PositionKind.SPOT,
                                    quantity=Decimal("2.5"), price=Decimal("3000.10"))
                out.append(MarginAccount(
                    venue=self.family, deployment=self.deployment, account_id="7", wallet=wallet,
                    margin_model=self.margin_model, positions=(position,), as_of=AsOf(timestamp=SERVER_TIME),
                ))
        return out


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, RaisingAdapter, BuggyAdapter, SpotAdapter)


def test_parse_only() -> None:
    assert parse_only("aave_v3:arbitrum, hyperliquid") == [("aave_v3", "arbitrum"), ("hyperliquid", None)]
    assert parse_only(None) == []
    with pytest.raises(InputError, match="FAMILY:INSTANCE"):
        parse_only("aave_v3:")
    with pytest.raises(InputError):
        parse_only(" , ")


def test_select_targets_suggests_and_restricts(fakes: None) -> None:
    settings = load_config().settings
    with pytest.raises(InputError, match=r"unknown family 'hyperliquidd' \(did you mean 'hyperliquid'\?\)"):
        select_targets(settings, "hyperliquidd", REGISTRY)
    with pytest.raises(InputError, match=r"no instance 'mian' \(did you mean 'main'\?\)"):
        select_targets(settings, "derive:mian", REGISTRY)
    targets, _ = select_targets(settings, "derive,hyperliquid:main", REGISTRY)
    assert sorted(t.deployment for t in targets) == ["derive:main", "hyperliquid:main"]
    with pytest.raises(InputError, match="no adapter in this build"):
        select_targets(settings, "derive", {})


def test_bad_wallet_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(monkeypatch, capsys, "scan", WALLET, "0xnot-an-address", "--only", "derive")
    assert code == 2
    assert "0xnot-an-address" in err and out == ""
    bad_checksum = "0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266"  # mixed case, wrong EIP-55 checksum
    code, _, err = cli(monkeypatch, capsys, "scan", bad_checksum, "--json")
    assert code == 2 and "checksum" in err and bad_checksum in err


def test_unknown_only_family_exits_2_with_suggestion(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(monkeypatch, capsys, "scan", WALLET, "--only", "aave_v33")
    assert code == 2
    assert "did you mean 'aave_v3'" in err


def test_unknown_only_instance_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(monkeypatch, capsys, "scan", WALLET, "--only", "aave_v3:arbitrun")
    assert code in (2,)
    assert "arbitrum" in err


def test_raising_adapter_is_unavailable_and_exit_3(
    fakes: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(monkeypatch, capsys, "scan", WALLET, OTHER, "--only", "hyperliquid,dydx_v4,derive", "--json")
    assert code == 3
    doc = json.loads(out)
    assert doc["schema_version"] == "1"
    assert doc["wallets"] == [WALLET, OTHER]
    by_key = {(a["deployment"], a["wallet"]): a for a in doc["accounts"]}
    down = by_key[("hyperliquid:main", WALLET)]
    assert down["status"] == "unavailable" and "HTTP 503" in down["status_reason"]
    assert down["positions"] == [] and down["health"] is None and down["health_source"] is None
    buggy = by_key[("dydx_v4:main", OTHER)]
    assert buggy["status"] == "unavailable" and buggy["status_reason"] == "KeyError: 'marginSummary'"
    spot = by_key[("derive:main", WALLET)]
    assert spot["status"] == "ok" and spot["account_id"] == "7"
    assert spot["positions"] == [{"token": "ETH", "factor": "ETH", "kind": "spot", "quantity": 2.5,
                                  "price": 3000.1, "value_usd": 7500.25}]
    assert spot["as_of"] == {"chain": None, "block": None, "block_hash": None,
                             "timestamp": "2026-01-02T03:04:05+00:00"}
    assert ("derive:main", OTHER) not in by_key  # nothing there: no account, read ok
    reads = {(r["deployment"], r["wallet"]): r for r in doc["reads"]}
    assert reads[("derive:main", OTHER)] == {"deployment": "derive:main", "wallet": OTHER, "status": "ok",
                                             "reason": None, "accounts": 0}
    assert reads[("hyperliquid:main", OTHER)]["status"] == "unavailable"
    assert len(doc["reads"]) == 6


def test_all_ok_exits_0_with_table(fakes: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(monkeypatch, capsys, "scan", WALLET, OTHER, "--only", "derive")
    assert code == 0
    assert "derive:main" in out and "2.5000 ETH" in out
    assert "no positions" in out


async def test_run_scan_directly_counts_reads(fakes: None) -> None:
    settings = load_config().settings
    result = await run_scan(settings, [ChecksumAddress(WALLET), ChecksumAddress(WALLET)], only="derive,hyperliquid")
    assert result.wallets == (WALLET,)  # duplicates collapse
    assert result.any_unavailable
    assert [(r.deployment, r.status) for r in result.reads] == [("derive:main", "ok"), ("hyperliquid:main", "unavailable")]
