"""`crossmargin devnet` round trip in subprocesses: up (detached), price, status, down; the other
paths (warp, bad input, already up) in-process against the session devnet.

Checks the effects on the chain itself (oracle price, health factors), that the written user config
is accepted by the real config loader, and that `down` stops exactly the processes `up` started.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from aggregator.cli import app
from aggregator.config import load_config
from aggregator.devnet.anvil import pid_alive, stop_pid
from aggregator.devnet.artifacts import load_artifact
from aggregator.devnet.network import Devnet
from aggregator.devnet.state import save_state
from aggregator.errors import exit_code_for

pytestmark = pytest.mark.devnet


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "devnet", *args], capture_output=True, text=True, timeout=120
    )


def test_up_price_warp_status_down(tmp_path: Path) -> None:
    state = tmp_path / "devnet" / "state.json"
    s = ("--state", str(state))

    before = cli("status", *s)
    assert before.returncode == 2 and "not up" in before.stderr

    up = cli("up", *s, "--json")
    assert up.returncode == 0, up.stderr
    pids: list[int] = []
    try:
        summary = json.loads(up.stdout)
        saved = json.loads(state.read_text())
        pids = [p for p in (saved["anvil_pid"], saved.get("venue_pid")) if p]
        assert all(pid_alive(p) for p in pids)  # outlived the `up` process
        w3 = Web3(Web3.HTTPProvider(summary["rpc_url"]))
        assert w3.eth.chain_id == 31337

        settings = load_config(Path(summary["config_file"])).settings
        assert settings.chains["devnet"].rpc_urls == (summary["rpc_url"],)
        assert settings.deployments.aave_v3["devnet"].pool_addresses_provider == (
            summary["aave_pool_addresses_provider"]
        )

        moved = cli("price", "eth", "2500", *s, "--json")
        assert moved.returncode == 0, moved.stderr
        assert json.loads(moved.stdout)["factor_prices"]["ETH"] == "2500"
        oracle = w3.eth.contract(address=saved["aave"]["oracle"], abi=load_artifact("AaveOracle").abi)
        assert oracle.functions.getAssetPrice(saved["tokens"]["WETH"]).call() == 2500 * 10**8


        status = cli("status", *s, "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["factor_prices"]["ETH"] == "2500"
        # 5 WETH * 2500 * 0.825 / 11,785 USDC = 0.875: liquidatable; hedged: 10*2500*.825/15,000 = 1.375
        assert float(info["aave_health_factors"]["near_liquidation"]) < 1
        assert 1.3 < float(info["aave_health_factors"]["hedged"]) < 1.4
        assert info["aave_health_factors"]["empty"] == "-"

        down = cli("down", *s)
        assert down.returncode == 0, down.stderr
        assert not state.exists()
        assert not any(pid_alive(p) for p in pids)
        after = cli("status", *s)
        assert after.returncode == 2 and "not up" in after.stderr
    finally:
        for pid in pids:
            stop_pid(pid)


def invoke(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; a CrossmarginError maps to its exit code as `crossmargin` does."""
    result = CliRunner().invoke(app, ["devnet", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return int(exit_code_for(result.exception)), str(result.exception)
    return result.exit_code, result.output


@pytest.fixture
def state_file(fresh_devnet: Devnet, tmp_path: Path) -> Path:
    return save_state(fresh_devnet.state, tmp_path / "state.json")


def test_warp_and_bad_input(state_file: Path, fresh_devnet: Devnet) -> None:
    s = ("--state", str(state_file))
    t0 = fresh_devnet.w3.eth.get_block("latest")["timestamp"]
    code, out = invoke("warp", "1d", *s)
    assert code == 0, out
    assert fresh_devnet.w3.eth.get_block("latest")["timestamp"] - t0 >= 86_400
    assert invoke("warp", "-1", *s)[0] == 2
    assert invoke("warp", "soon", *s)[0] == 2
    code, out = invoke("price", "ETH", "abc", *s)
    assert code == 2 and "cannot read price" in out
    code, out = invoke("price", "DOGE", "1", *s)
    assert code == 2 and "unknown factor" in out
    assert invoke("price", "ETH", "-5", *s)[0] == 2
    code, out = invoke("up", *s)
    assert code == 2 and "already up" in out


def test_commands_refuse_a_dead_devnet(tmp_path: Path, fresh_devnet: Devnet) -> None:
    dead = tmp_path / "dead.json"
    fresh_devnet.state.anvil_pid, real = 2**22 + 7, fresh_devnet.state.anvil_pid
    try:
        save_state(fresh_devnet.state, dead)
    finally:
        fresh_devnet.state.anvil_pid = real
    code, out = invoke("status", "--state", str(dead))
    assert code == 2 and "not running" in out
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, out = invoke("price", "ETH", "1", "--state", str(broken))
    assert code == 2 and "unreadable" in out
