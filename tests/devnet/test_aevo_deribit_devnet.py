"""Aevo and Deribit on the session devnet: ``start_devnet`` starts and seeds the Aevo / Deribit server,
the user config points ``[venues.aevo]`` / ``[venues.deribit]`` at it, and the devnet secrets file
carries the throwaway credentials. A scan with ``--only aevo,deribit`` (``aggregator.scan.run_scan``
with the real config loader, and ``crossmargin scan`` itself) returns the fund's accounts OK with the
health the server reports on its own private endpoints; ``Devnet.set_price`` moves them.

Independent check (Aevo, ``venue_client`` docstring): 2,000 USDC + long 2 ETH-PERP at 3,000 with the
server's 3 % maintenance rule gives ``h = (2,000 + 2 (P - 3,000)) / (0.06 P)``.

The risk engine (``risk.engine.assess`` on the scanned accounts) gives each account the venue's own
figure (within 1e-9): the adapters map these standard-margin accounts to the venues' documented
per-position rules (``risk.model.StandardMarginModel``), which the server follows too. Deribit's
option mark decays with time, so the checks that compare the scan with a later server read freeze
the server's clock (``POST /_devnet/clock``) for their duration.
"""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from adapters.addresses import parse_address
from aggregator.cli import app
from aggregator.cli.app import run
from aggregator.config import load_config
from aggregator.devnet import venue_client
from aggregator.devnet.network import Devnet
from aggregator.devnet.user_config import SECRETS_NOTE_PREFIX, write_user_config
from aggregator.errors import ConfigError
from aggregator.scan import run_scan
from risk.engine import assess
from risk.model import AccountStatus, FactorId, MarginAccount, MarketState, Portfolio
from risk.params import RiskParams

pytestmark = pytest.mark.devnet


def _need_cred_server(devnet: Devnet) -> None:
    """Skip without the server; else put the state's factor prices back on it (``fresh_devnet`` puts
    back only the main venue server's prices after a test that moved one)."""
    if devnet.state.cred_api_url is None or devnet.state.credentials is None:
        pytest.skip("Aevo / Deribit server not part of this devnet: " + "; ".join(devnet.state.notes))
    for factor, price in devnet.state.factor_prices.items():
        venue_client.set_price(devnet.state.cred_api_url, factor, Decimal(price))


def _files(devnet: Devnet, tmp_path: Path) -> tuple[Path, Path]:
    config = write_user_config(devnet.state, tmp_path / "config.toml")
    assert devnet.state.secrets_path is not None
    return config, Path(devnet.state.secrets_path)


def _scan(devnet: Devnet, tmp_path: Path, wallets: list[str]) -> list[MarginAccount]:
    config, secrets = _files(devnet, tmp_path)
    environ = {"HOME": str(tmp_path), "CROSSMARGIN_SECRETS_FILE": str(secrets)}
    settings = load_config(config, environ=environ).settings
    result = asyncio.run(
        run_scan(settings, [parse_address(devnet.wallets[w]) for w in wallets], only="aevo,deribit")
    )
    return result.accounts


def _aevo_account(devnet: Devnet) -> dict[str, Any]:
    assert devnet.state.cred_api_url and devnet.state.credentials
    creds = devnet.state.credentials["aevo"]
    headers = {"AEVO-KEY": creds["api_key"], "AEVO-SECRET": creds["api_secret"]}
    response = httpx.get(f"{devnet.state.cred_api_url}/account", headers=headers, timeout=5)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _deribit_summary(devnet: Devnet, currency: str = "ETH") -> dict[str, Any]:
    assert devnet.state.cred_api_url and devnet.state.credentials
    base = devnet.state.cred_api_url + "/api/v2"
    creds = devnet.state.credentials["deribit"]
    auth = httpx.post(
        f"{base}/public/auth",
        json={"jsonrpc": "2.0", "id": 1, "method": "public/auth",
              "params": {"grant_type": "client_credentials", **creds}},
        timeout=5,
    )  # fmt: skip
    auth.raise_for_status()
    token = auth.json()["result"]["access_token"]
    response = httpx.post(
        f"{base}/private/get_account_summary",
        json={"jsonrpc": "2.0", "id": 2, "method": "private/get_account_summary",
              "params": {"currency": currency, "extended": True}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )  # fmt: skip
    response.raise_for_status()
    result: dict[str, Any] = response.json()["result"]
    return result


def _by_venue(accounts: list[MarginAccount], wallet: str) -> dict[str, list[MarginAccount]]:
    out: dict[str, list[MarginAccount]] = {}
    for account in accounts:
        if account.wallet == wallet and account.positions:
            out.setdefault(account.venue, []).append(account)
    return out


class _FrozenClock:
    """``with _FrozenClock(devnet):`` the Aevo/Deribit server's clock stands still (option marks too)."""

    def __init__(self, devnet: Devnet) -> None:
        assert devnet.state.cred_api_url is not None
        self.url = devnet.state.cred_api_url + "/_devnet/clock"

    def __enter__(self) -> None:
        httpx.post(self.url, json={"freeze": True}, timeout=5).raise_for_status()

    def __exit__(self, *exc: object) -> None:
        httpx.post(self.url, json={"freeze": False}, timeout=5).raise_for_status()


def _engine_health(devnet: Devnet, accounts: list[MarginAccount]) -> dict[str, float]:
    """``h`` per account key by the whole engine (``risk.engine.assess``) at the devnet's prices."""
    portfolio = Portfolio("fund", tuple(accounts))
    factors = tuple(f for f in portfolio.factors if f != "USD")
    prices = {f: float(devnet.state.factor_prices.get(f, 1.0)) for f in factors}
    market = MarketState(
        factors=factors,
        prices=prices,
        vols={f: 0.6 if f in ("ETH", "BTC") else 0.0 for f in factors},
        correlation=np.eye(len(factors)),
        betas={FactorId("ETH"): 1.0},
        as_of=min(a.as_of.timestamp for a in accounts),
    )
    result = assess(portfolio, market, RiskParams(mc_paths=256, mc_steps=4), rng_seed=1)
    return {a.account_key: a.health for a in result.accounts}


def _aevo_closed_form(price: Decimal) -> Decimal:
    return (Decimal(2000) + 2 * (price - 3000)) / (Decimal("0.06") * price)


def _check_against_server(devnet: Devnet, accounts: list[MarginAccount]) -> tuple[Decimal, Decimal]:
    fund = devnet.wallets["fund"]
    by_venue = _by_venue(accounts, fund)
    assert set(by_venue) == {"aevo", "deribit"}, accounts
    (aevo,) = by_venue["aevo"]
    (deribit,) = by_venue["deribit"]
    for account in (aevo, deribit):
        assert account.status is AccountStatus.OK, account.status_reason
    server = _aevo_account(devnet)
    assert server["account"].lower() == fund.lower()
    aevo_h = Decimal(server["equity"]) / Decimal(server["maintenance_margin"])
    assert aevo.venue_health == pytest.approx(aevo_h, rel=Decimal("1e-12"))
    summary = _deribit_summary(devnet)
    deribit_h = Decimal(str(summary["margin_balance"])) / Decimal(str(summary["maintenance_margin"]))
    # the same instant (the callers freeze the server's clock): the option's mark has not moved
    assert deribit.venue_health == pytest.approx(deribit_h, rel=Decimal("1e-12"))
    assert aevo.venue_health is not None and deribit.venue_health is not None
    engine = _engine_health(devnet, [aevo, deribit])
    assert engine[aevo.key] == pytest.approx(float(aevo_h), rel=1e-9)
    assert engine[deribit.key] == pytest.approx(float(deribit_h), rel=1e-9)
    return aevo.venue_health, deribit.venue_health


def test_scan_only_aevo_deribit_reads_the_seeded_fund(devnet: Devnet, tmp_path: Path) -> None:
    _need_cred_server(devnet)
    with _FrozenClock(devnet):
        accounts = _scan(devnet, tmp_path, ["fund", "hedged"])
        aevo_h, deribit_h = _check_against_server(devnet, accounts)
    price = Decimal(devnet.state.factor_prices["ETH"])
    assert aevo_h == pytest.approx(_aevo_closed_form(price), rel=Decimal("1e-9"))
    assert 1 < deribit_h < 10  # 2 ETH vs (0.075 + mark) x 5 ETH: about 3 at 3,000
    assert not _by_venue(accounts, devnet.wallets["hedged"])  # credentials read the fund's accounts only


def test_set_price_moves_aevo_and_deribit(fresh_devnet: Devnet, tmp_path: Path) -> None:
    net = fresh_devnet
    _need_cred_server(net)
    start = Decimal(net.state.factor_prices["ETH"])
    with _FrozenClock(net):
        before = _check_against_server(net, _scan(net, tmp_path / "a", ["fund"]))
        try:
            moved = net.set_price("ETH", Decimal(3600))
            assert any(m.startswith("aevo/deribit server ETH") for m in moved)
            after = _check_against_server(net, _scan(net, tmp_path / "b", ["fund"]))
        finally:  # fresh_devnet puts back only the main venue server's prices
            assert net.state.cred_api_url is not None
            venue_client.set_price(net.state.cred_api_url, "ETH", start)
    # long perp gains: h up to (2,000 + 1,200) / 216; the short calls lose: Deribit h down
    assert after[0] == pytest.approx(_aevo_closed_form(Decimal(3600)), rel=Decimal("1e-9"))
    assert after[0] > before[0] and after[1] < before[1]


def test_secrets_file_and_config(devnet: Devnet, tmp_path: Path) -> None:
    _need_cred_server(devnet)
    assert devnet.state.credentials is not None
    config, secrets = _files(devnet, tmp_path)
    assert secrets == tmp_path / "secrets.toml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    text = config.read_text()
    for creds in devnet.state.credentials.values():
        for value in creds.values():
            assert value not in text and value in secrets.read_text()
    assert f"CROSSMARGIN_SECRETS_FILE={secrets}" in text
    assert [n for n in devnet.state.notes if n.startswith(SECRETS_NOTE_PREFIX)] == [
        f"{SECRETS_NOTE_PREFIX}export CROSSMARGIN_CONFIG={config} CROSSMARGIN_SECRETS_FILE={secrets}"
    ]
    assert repr(devnet.state.credentials["aevo"]["api_secret"]) not in repr(devnet.state)
    settings = load_config(config, environ={"HOME": str(tmp_path)}).settings
    assert settings.venues.aevo is not None and settings.venues.aevo.api_key is None  # not configured
    assert settings.venues.deribit is not None and devnet.state.cred_api_url is not None
    assert str(settings.venues.deribit.api_url) == devnet.state.cred_api_url + "/api/v2"
    secrets.write_text(secrets.read_text() + "\n[venues.aevo.bogus]\n")
    with pytest.raises(ConfigError):  # the secrets file goes through the same schema check
        load_config(config, environ={"HOME": str(tmp_path), "CROSSMARGIN_SECRETS_FILE": str(secrets)})


def test_cli_scan_only_aevo_deribit(
    devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need_cred_server(devnet)
    config, secrets = _files(devnet, tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CROSSMARGIN_SECRETS_FILE", str(secrets))
    fund = devnet.wallets["fund"]
    argv = ["crossmargin", "scan", fund, "--config", str(config), "--only", "aevo,deribit", "--json"]
    monkeypatch.setattr(sys, "argv", argv)
    code = run(app)
    doc = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert code == 0, doc
    venues = {a["venue"] for a in doc["accounts"] if a["status"] == "ok" and a.get("positions")}
    assert venues == {"aevo", "deribit"}, doc["accounts"]
    server = _aevo_account(devnet)
    (aevo,) = [a for a in doc["accounts"] if a["venue"] == "aevo"]
    expected = Decimal(server["equity"]) / Decimal(server["maintenance_margin"])
    assert Decimal(str(aevo["venue_reported_health"])) == pytest.approx(expected, rel=Decimal("1e-9"))


def test_server_exits_with_the_watched_process() -> None:
    """``--exit-with PID`` (how the devnet ties the server to anvil, so `devnet down` ends it too)."""
    from aggregator.devnet.anvil import free_port

    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregator.devnet.venues.aevo", "--port", str(port),
         "--exit-with", str(watched.pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5).status_code == 200
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert server.poll() is None  # still up while the watched process runs
        watched.kill()
        watched.wait(timeout=5)
        assert server.wait(timeout=10) == 0
    finally:
        for process in (server, watched):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)


def test_old_state_file_gmx_under_venues_is_read_into_gmx(tmp_path: Path) -> None:
    from aggregator.devnet.state import DevnetState, load_state, save_state

    old = DevnetState("http://127.0.0.1:1", 31337, "0x0", {}, {}, {"ETH": "3000"}, {}, 0)
    data = json.loads(old.to_json())
    for new_field in ("gmx", "cred_api_url", "cred_venue_pid", "credentials", "secrets_path"):
        del data[new_field]
    data["venues"] = {"api_urls": {"derive": "http://x"}, "gmx_v2": {"reader": "0xabc"}}
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    state = load_state(path)
    assert state.gmx == {"reader": "0xabc"} and state.venues == {"api_urls": {"derive": "http://x"}}
    save_state(state, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_state(path) == state
