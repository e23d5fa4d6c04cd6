"""``aggregator.pipeline.run_cycle`` and ``crossmargin scan`` without a chain.

Two test-double venues (HTTP families, nothing leaves the machine): a lending account on ``derive``
(10 WETH at 3000 with LT 0.825 against 15,000 USDC: h = 8.25 P / 15,000) and a cross-perp account on
``hyperliquid`` (36,000 USDC cash, short 10 ETH at a mark of 3010, maintenance 2 %:
h = (36,000 - 10 P) / (0.2 P)). The figures are checked against those closed forms, the database rows
against the report, and the CLI's exit codes 0 / 2 / 3 / 4 and its renderings against the document.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa

from adapters.addresses import ChecksumAddress
from adapters.base import BlockRef
from adapters.errors import VenueUnavailable
from aggregator.cli.render_csv import CSV_COLUMNS
from aggregator.config import load_config
from aggregator.db.migrate import open_database
from aggregator.db.models import AccountSnapshot, AssessmentRow, FactorPrice, OutboxRow
from aggregator.db.repository import Repository
from aggregator.errors import ExitCode, InputError
from aggregator.pipeline import critical_chf, cycle_exit_code, run_cycle
from aggregator.report import ScanReport
from aggregator.targets import resolve_targets
from risk.model import (
    AsOf,
    CrossPerpModel,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginModel,
    MarginTier,
    PerpParams,
    Position,
    PositionKind,
)
from tests.support.cli import FakeHttpAdapter, register
from tests.support.cli import run_cli as cli

WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
OTHER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
P_LEND = 3000.0
P_PERP = 3010.0
LT = LendingParams(ltv=Decimal("0.8"), liquidation_threshold=Decimal("0.825"), liquidation_bonus=Decimal("0.05"))


class Lender(FakeHttpAdapter):
    family = "derive"
    margin_model: ClassVar[MarginModel] = LendingModel()

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        positions = (
            Position(token="WETH", factor=FactorId("ETH"), kind=PositionKind.COLLATERAL, quantity=Decimal(10),
                     price=Decimal(str(P_LEND)), lending=LT),
            Position(token="USDC", factor=FactorId("USD"), kind=PositionKind.DEBT, quantity=Decimal(-15000),
                     price=Decimal(1)),
        )
        return [MarginAccount(venue=self.family, deployment=self.deployment, account_id="lend", wallet=w,
                              margin_model=self.margin_model, positions=positions, as_of=AsOf(timestamp=T),
                              venue_health=Decimal("1.65"))
                for w in wallets if w == WALLET]


class Perps(FakeHttpAdapter):
    family = "hyperliquid"
    margin_model: ClassVar[MarginModel] = CrossPerpModel()

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        perp = PerpParams(entry_price=Decimal(3000), margin_tiers=(MarginTier(Decimal(0), Decimal("0.02")),))
        positions = (
            Position(token="USDC", factor=FactorId("USD"), kind=PositionKind.SPOT, quantity=Decimal(36000),
                     price=Decimal(1)),
            Position(token="ETH", factor=FactorId("ETH"), kind=PositionKind.PERP, quantity=Decimal(-10),
                     price=Decimal(str(P_PERP)), perp=perp),
        )
        return [MarginAccount(venue=self.family, deployment=self.deployment, account_id=w, wallet=w,
                              margin_model=self.margin_model, positions=positions, as_of=AsOf(timestamp=T))
                for w in wallets if w == WALLET]


class Down(FakeHttpAdapter):
    family = "dydx_v4"
    margin_model: ClassVar[MarginModel] = CrossPerpModel()

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        raise VenueUnavailable("HTTP 503 from the indexer", venue=self.deployment)


LEND_KEY = "derive:main/lend"
PERP_KEY = f"hyperliquid:main/{WALLET}"
REF = (P_LEND + P_PERP) / 2  # the reference ETH price: median of the two venues' prices


def lend_health(p: float) -> float:
    return 10 * p * 0.825 / 15000


def perp_health(p: float) -> float:
    return (36000 - 10 * p) / (0.02 * 10 * p)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, Lender, Perps, Down)


FAST = "--seed", "3"


@pytest.fixture
def fast_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fewer Monte Carlo paths (the figures checked here do not depend on them)."""
    path = tmp_path / "config.toml"
    path.write_text("[risk]\nmc_paths = 500\nmc_steps = 6\n")
    monkeypatch.setenv("CROSSMARGIN_CONFIG", str(path))
    return path


async def test_cycle_figures_rows_and_report_agree(fakes: None, fast_config: Path) -> None:
    settings = load_config().settings
    repository = Repository(open_database(settings))
    result = await run_cycle(settings, portfolio="book", wallets=[ChecksumAddress(WALLET)],
                             only="derive,hyperliquid", repository=repository, now=T, rng_seed=1)
    assert result.assessment is not None and result.snapshot_id is not None
    # reference price = median of the venues' prices; each account's health is on its own venue price
    assert result.market.prices[FactorId("ETH")] == pytest.approx(REF)
    figures = {a.account_key: a for a in result.assessment.accounts}
    assert figures[LEND_KEY].health == pytest.approx(lend_health(P_LEND), rel=1e-12)
    assert figures[PERP_KEY].health == pytest.approx(perp_health(P_PERP), rel=1e-12)
    assert result.assessment.chf == pytest.approx(lend_health(P_LEND))
    assert result.assessment.chf_account == LEND_KEY
    # liquidation price in reference terms: the venue price that gives h = 1, scaled by REF / venue price
    report = result.report
    composite = report.composite
    assert composite is not None and composite.chf_account == LEND_KEY
    lend = next(a for a in report.accounts if a.deployment == "derive:main")
    perp = next(a for a in report.accounts if a.deployment == "hyperliquid:main")
    assert lend.risk is not None and perp.risk is not None
    liq = lend.risk.liquidation_price["ETH"]
    assert liq == pytest.approx(15000 / 8.25 * REF / P_LEND, rel=1e-4)
    up = perp.risk.liquidation_price["ETH"]
    assert up == pytest.approx(36000 / 10.2 * REF / P_PERP, rel=1e-4)  # 36,000 - 10 P = 0.2 P
    assert lend.health_source == "lending_formula" and lend.health == Decimal("1.65")
    assert perp.health_source == "risk" and float(perp.health or 0) == pytest.approx(perp_health(P_PERP))
    assert lend.risk.model_drift == pytest.approx(0.0, abs=1e-12)
    assert report.market is not None and report.market.vol_sources["ETH"] == "default"
    assert report.critical_chf == 1.0 and report.snapshot_id == result.snapshot_id
    # the database holds the same figures
    with repository.engine.connect() as conn:
        rows = {(r.deployment, r.account_id): r for r in conn.execute(
            sa.select(AccountSnapshot).where(AccountSnapshot.snapshot_id == result.snapshot_id))}
        stored = conn.execute(sa.select(AssessmentRow).where(AssessmentRow.snapshot_id == result.snapshot_id)).one()
        prices = {str(f): float(v) for f, v in conn.execute(sa.select(FactorPrice.factor, FactorPrice.price))}
    assert rows[("derive:main", "lend")].health == lend.risk.health
    assert rows[("hyperliquid:main", WALLET)].health == perp.risk.health
    assert stored.chf == composite.chf and stored.stressed_chf == composite.stressed_chf
    assert stored.chf_account == LEND_KEY and stored.p_liq == composite.p_liq
    assert prices == {"ETH": pytest.approx(REF)}
    assert cycle_exit_code(result) is ExitCode.OK


async def test_ewma_from_stored_history(fakes: None, fast_config: Path) -> None:
    """With 40 daily ETH closes stored, the vol is the EWMA of their log returns (computed here by hand)."""
    settings = load_config().settings
    engine = open_database(settings)
    closes = [3000.0 * (1.0 + 0.03 * ((-1) ** k) * (1 + k % 3) / 3) for k in range(41)]
    with engine.begin() as conn:
        conn.execute(sa.insert(FactorPrice), [
            {"factor": "ETH", "time": datetime(2026, 10, 1, 12, tzinfo=UTC) + timedelta(days=k), "price": p,
             "resolution": "raw"}
            for k, p in enumerate(closes)])
    result = await run_cycle(settings, portfolio="book", wallets=[ChecksumAddress(WALLET)],
                             only="derive", repository=Repository(engine), now=T, rng_seed=1)
    returns = [math.log(closes[k + 1] / closes[k]) for k in range(40)]
    lam = settings.risk.ewma_lambda
    weights = [(1 - lam) * lam ** (39 - k) for k in range(40)]
    expected = math.sqrt(365 * sum(w * r * r for w, r in zip(weights, returns, strict=True)) / sum(weights))
    assert result.report.market is not None
    assert result.report.market.vol_sources["ETH"] == "ewma"
    assert result.report.market.history_days["ETH"] == 40
    assert result.market.vols[FactorId("ETH")] == pytest.approx(max(expected, settings.risk.vol_floor))


def test_critical_threshold_precedence(tmp_path: Path) -> None:
    base = load_config().settings
    assert critical_chf(base, "x") == (1.0, "default (liquidatable)")
    path = tmp_path / "c.toml"
    path.write_text("""
[alerts.channels.ops]
type = "telegram"
chat_id = "1"
[[alerts.rules]]
name = "chf"
metric = "chf"
warning = 1.5
critical = 1.2
channels = ["ops"]
""")
    assert critical_chf(load_config(path).settings, "x") == (1.2, "alert rule 'chf' (critical)")
    path.write_text(path.read_text() + "\n[risk]\ncritical_chf = 1.05\n")
    assert critical_chf(load_config(path).settings, "x") == (1.05, "[risk] critical_chf")


def test_resolve_targets(fast_config: Path) -> None:
    settings = load_config().settings
    repository = Repository(open_database(settings))
    repository.add_wallet("fund", OTHER, "cold")
    groups = resolve_targets(settings, repository, [WALLET.lower(), "fund"])
    assert groups == [("default", (WALLET,)), ("fund", (OTHER,))]
    assert resolve_targets(settings, repository, [], portfolio="fund") == [("fund", (OTHER,))]
    with pytest.raises(InputError, match="did you mean 'fund'"):
        resolve_targets(settings, repository, ["fnud"])
    with pytest.raises(InputError, match=r"no Ethereum RPC"):
        resolve_targets(settings.model_copy(update={"chains": {}}), repository, ["alice.eth"])
    # a bad checksum names the address once, with the corrected form
    bad = WALLET[:2] + WALLET[2:].swapcase()
    with pytest.raises(InputError) as refused:
        resolve_targets(settings, repository, [bad])
    assert str(refused.value).count(bad) == 1 and "EIP-55" in str(refused.value)


def test_an_unreachable_ens_chain_says_it_was_resolving_ens(fast_config: Path) -> None:
    from adapters.errors import VenueUnavailable
    from adapters.specs import ChainSpec
    from tests.support.local_server import free_port

    settings = load_config().settings
    dead = ChainSpec(chain_id=1, rpc_urls=(f"http://127.0.0.1:{free_port()}",))
    settings = settings.model_copy(update={"chains": {"ethereum": dead}})
    with pytest.raises(VenueUnavailable, match=r"resolving ENS name\(s\) alice\.eth") as failed:
        resolve_targets(settings, None, ["alice.eth"])
    assert failed.value.chain == "ethereum"


def test_cli_exit_0_json_keeps_account_shape_and_adds_composite(
    fakes: None, fast_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(monkeypatch, capsys, "scan", WALLET, "--only", "derive,hyperliquid", "--json", *FAST)
    assert code == 0
    doc = json.loads(out, parse_float=Decimal)
    report = ScanReport.from_json(out)
    assert doc["schema_version"] == "1"
    account = doc["accounts"][0]
    assert set(account) >= {"venue", "deployment", "chain", "account_id", "wallet", "status", "status_reason",
                            "health", "health_source", "venue_reported_health", "quote", "as_of", "positions",
                            "risk"}
    assert doc["composite"]["chf_account"] == LEND_KEY
    assert float(doc["composite"]["chf"]) == pytest.approx(lend_health(P_LEND))
    assert report.snapshot_id is not None and report.portfolio == "default"


def test_cli_exit_3_when_a_venue_is_down(
    fakes: None, fast_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(monkeypatch, capsys, "scan", WALLET, "--only", "derive,dydx_v4", *FAST)
    assert code == int(ExitCode.VENUE_UNAVAILABLE)
    assert "unavailable" in out and "HTTP 503 from the indexer" in out
    assert f"warning: dydx_v4:main/{WALLET} is unavailable and left out of every figure" in out


def test_cli_exit_4_below_critical_and_report_renders_figures(
    fakes: None, fast_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fast_config.write_text(fast_config.read_text() + "critical_chf = 2.0\n")
    code, out, _ = cli(monkeypatch, capsys, "scan", WALLET, "--only", "derive,hyperliquid,dydx_v4", *FAST)
    assert code == int(ExitCode.CHF_CRITICAL)  # 4 wins over 3
    assert "CHF (composite health)" in out and f"{lend_health(P_LEND):.4f}" in out and LEND_KEY in out
    assert f"{perp_health(P_PERP):.4f}" in out  # the perp account's engine health
    liq = 15000 / 8.25 * REF / P_LEND
    assert f"{liq:,.2f}"[:-1] in out  # liquidation price (to the cent, last digit allowed to round)
    assert "stressed CHF" in out and "pooled HF / netted HF" in out and "fragmentation cost" in out
    assert "liquidation ladder" in out
    assert "critical CHF (exit 4 below)   2" in out


def test_cli_exit_2_bad_input(fakes: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(monkeypatch, capsys, "scan", "0x1234", "--no-store")
    assert code == 2 and "0x1234" in err and out == ""
    code, _, err = cli(monkeypatch, capsys, "scan", WALLET, "--json", "--csv")
    assert code == 2 and "cannot be combined" in err


def test_cli_csv_and_no_store(
    fakes: None, fast_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(monkeypatch, capsys, "scan", WALLET, "--only", "derive,hyperliquid", "--csv", "--no-store",
                       *FAST)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 3
    by = {r[2]: dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    assert float(by["derive:main"]["health"]) == pytest.approx(lend_health(P_LEND))
    assert by["derive:main"]["distance_factor"] == "ETH"
    assert float(by["derive:main"]["distance"]) == pytest.approx(15000 / 8.25 / P_LEND - 1, rel=1e-3)
    settings = load_config().settings
    with open_database(settings).connect() as conn:  # --no-store wrote nothing
        assert conn.execute(sa.select(sa.func.count()).select_from(AccountSnapshot)).scalar_one() == 0


def test_cli_alert_decided_and_queued(
    fakes: None, fast_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fast_config.write_text(fast_config.read_text() + """
[alerts.channels.hook]
type = "webhook"
allow_private = true
[[alerts.rules]]
name = "composite-health"
metric = "chf"
warning = 2.0
channels = ["hook"]
""")
    # an unreachable local port: delivery fails and the row stays in the outbox for `watch`
    monkeypatch.setenv("CROSSMARGIN__ALERTS__CHANNELS__HOOK__WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("CROSSMARGIN__ALERTS__CHANNELS__HOOK__SIGNING_SECRET", "whsec_" + "QUJD" * 8)
    code, out, _ = cli(monkeypatch, capsys, "scan", WALLET, "--only", "derive", "--json", *FAST)
    doc = json.loads(out)
    assert code == 0
    assert [(a["rule"], a["kind"], a["tier"]) for a in doc["alerts"]] == [("composite-health", "fire", "warning")]
    settings = load_config().settings
    with open_database(settings).connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(OutboxRow.channel, OutboxRow.snapshot_id))]
    assert rows == [("hook", doc["snapshot_id"])]


def test_wallets_cli_round_trip(fast_config: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(monkeypatch, capsys, "wallets", "add", WALLET.lower(), "--label", "hot", "--portfolio", "fund")[0] == 0
    assert cli(monkeypatch, capsys, "wallets", "add", OTHER, "--portfolio", "fund")[0] == 0
    code, out, _ = cli(monkeypatch, capsys, "wallets", "list", "--json")
    assert code == 0
    assert json.loads(out) == [{"portfolio": "fund", "address": WALLET, "label": "hot"},
                               {"portfolio": "fund", "address": OTHER, "label": None}]
    code, out, _ = cli(monkeypatch, capsys, "portfolios", "list", "--json")
    assert json.loads(out) == [{"name": "fund", "wallets": 2}]
    assert cli(monkeypatch, capsys, "wallets", "remove", OTHER, "--portfolio", "fund")[0] == 0
    code, _, err = cli(monkeypatch, capsys, "wallets", "remove", OTHER, "--portfolio", "fund")
    assert code == 2 and "not in portfolio fund" in err
    code, _, err = cli(monkeypatch, capsys, "wallets", "add", "0xnope")
    assert code == 2 and "0xnope" in err
