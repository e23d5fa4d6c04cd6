"""End to end on the devnet: ``crossmargin scan`` of an ENS name -> the real Aave V3 and Hyperliquid (venue
server) adapters -> risk engine -> database -> an alert delivered, signed, to a local webhook receiver.

The ENS name is served by the registry/resolver stand-ins deployed here (``aggregator.devnet.ens``) and
named in the chain config (``ens_registry``). The receiver verifies every request with
``aggregator.alerts.signing.verify`` (Standard Webhooks). Figures are cross-checked against the demo
book's closed forms (``aggregator.devnet.book``: the hedged wallet holds 10 WETH against 15,000 USDC on
Aave, LT 0.825, so HF = 8.25 P / 15,000; it is short 10 ETH on Hyperliquid with 6,000 USD of account
value at P = 3000).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator.alerts.signing import SignatureError, verify
from aggregator.cli import app
from aggregator.cli.app import run
from aggregator.config import load_config
from aggregator.db.migrate import open_database
from aggregator.db.models import AccountSnapshot, AssessmentRow, OutboxRow
from aggregator.devnet.ens import deploy_ens, register_name
from aggregator.devnet.network import Devnet
from aggregator.devnet.user_config import render_user_config
from tests.support.local_server import serve

pytestmark = pytest.mark.devnet

SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODkwYWI="


class Receiver:
    """A Standard Webhooks receiver: keeps (valid, body) for every POST."""

    def __init__(self) -> None:
        self.got: list[tuple[bool, Any]] = []

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                verify(SECRET, dict(request.headers), body, now=int(time.time()))
                ok = True
            except SignatureError:
                ok = False
            self.got.append((ok, json.loads(body)))
            return Response(status_code=200 if ok else 401)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver()
    with serve(r.app()) as url:
        yield r, url + "/hook"


def _config(tmp_path: Path, devnet: Devnet, registry: str, extra: str = "") -> Path:
    text = render_user_config(devnet.state)
    head = "[chains.devnet]\n"
    assert head in text
    text = text.replace(head, head + f'ens_registry = "{registry}"\n', 1)
    path = tmp_path / "config.toml"
    path.write_text(text + """
[risk]
mc_paths = 500
mc_steps = 6

[alerts.channels.hook]
type = "webhook"
allow_private = true

[[alerts.rules]]
name = "composite-health"
metric = "chf"
warning = 2.0
channels = ["hook"]
""" + extra)
    return path


def _scan(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["crossmargin", "scan", *args])
    monkeypatch.setenv("COLUMNS", "250")
    code = run(app)
    return code, capsys.readouterr().out


def test_scan_ens_to_database_to_signed_webhook(
    fresh_devnet: Devnet,
    tmp_path: Path,
    receiver: tuple[Receiver, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if fresh_devnet.api_url is None:
        pytest.skip("venue server not part of this devnet: " + "; ".join(fresh_devnet.state.notes))
    hook, url = receiver
    deployer = fresh_devnet.wallets["deployer"]
    ens = deploy_ens(fresh_devnet.txs, deployer)
    hedged = fresh_devnet.wallets["hedged"]
    register_name(fresh_devnet.txs, ens, "hedged.eth", hedged, deployer)
    config = _config(tmp_path, fresh_devnet, ens.registry)
    monkeypatch.setenv("CROSSMARGIN__ALERTS__CHANNELS__HOOK__WEBHOOK_URL", url)
    monkeypatch.setenv("CROSSMARGIN__ALERTS__CHANNELS__HOOK__SIGNING_SECRET", SECRET)

    code, out = _scan(monkeypatch, capsys, "Hedged.ETH", "--portfolio", "hedged", "--config", str(config),
                      "--only", "aave_v3:devnet,hyperliquid", "--json", "--seed", "5")
    assert code == 0, out
    doc = json.loads(out, parse_float=Decimal)
    assert doc["wallets"] == [hedged]  # resolved through the registry stand-in
    aave = next(a for a in doc["accounts"] if a["venue"] == "aave_v3")
    hl = next(a for a in doc["accounts"] if a["venue"] == "hyperliquid")
    price = float(fresh_devnet.factor_prices["ETH"])
    assert float(aave["risk"]["health"]) == pytest.approx(8.25 * price / 15000, rel=1e-6)
    assert float(aave["venue_reported_health"]) == pytest.approx(float(aave["risk"]["health"]), rel=1e-3)
    # Hyperliquid: account value 6,000 at 3000 over 2 % of the notional
    assert float(hl["risk"]["health"]) == pytest.approx(6000 / (0.02 * 10 * price), rel=1e-3)
    composite = doc["composite"]
    assert composite["chf_account"].startswith("aave_v3:devnet/")
    assert float(composite["chf"]) == pytest.approx(8.25 * price / 15000, rel=1e-6)
    assert composite["hedge_breaks"], "each leg of the hedged book liquidates alone"
    assert [(a["rule"], a["kind"]) for a in doc["alerts"]] == [("composite-health", "fire")]

    # the database holds what the report says
    engine = open_database(load_config(config).settings)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(AssessmentRow).where(AssessmentRow.snapshot_id == doc["snapshot_id"])).one()
        healths: dict[str, float | None] = {
            str(v): h for v, h in conn.execute(
                sa.select(AccountSnapshot.venue, AccountSnapshot.health)
                .where(AccountSnapshot.snapshot_id == doc["snapshot_id"]))}
        outbox = conn.execute(sa.select(OutboxRow.status, OutboxRow.event_id)).all()
    assert stored.chf == float(composite["chf"]) and stored.chf_account == composite["chf_account"]
    assert healths["aave_v3"] == float(aave["risk"]["health"])
    assert healths["hyperliquid"] == float(hl["risk"]["health"])
    assert len(outbox) == 1 and outbox[0][0] != "pending"

    # delivered once, signed, about the CHF
    got = hook.got
    assert len(got) == 1, got
    valid, body = got[0]
    assert valid
    assert "composite-health" in json.dumps(body)


def test_scan_exit_4_when_eth_falls(
    fresh_devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deployer = fresh_devnet.wallets["deployer"]
    ens = deploy_ens(fresh_devnet.txs, deployer)
    config = _config(tmp_path, fresh_devnet, ens.registry).read_text()
    config = config[: config.index("[alerts.channels.hook]")]  # no alerts here
    path = tmp_path / "plain.toml"
    path.write_text(config)
    near = fresh_devnet.wallets["near_liquidation"]  # 5 WETH vs 11,785 USDC: HF = 4.125 P / 11,785
    code, out = _scan(monkeypatch, capsys, near, "--config", str(path), "--only", "aave_v3:devnet", "--no-store")
    assert code == 0
    assert f"{4.125 * 3000 / 11785:.4f}" in out
    fresh_devnet.set_price("ETH", Decimal(2800))  # HF 0.980: liquidatable
    code, out = _scan(monkeypatch, capsys, near, "--config", str(path), "--only", "aave_v3:devnet", "--no-store")
    assert code == 4
    assert f"{4.125 * 2800 / 11785:.4f}" in out
