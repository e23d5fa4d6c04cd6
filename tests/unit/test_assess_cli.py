"""``crossmargin assess`` end to end in a subprocess: tables, JSON contract, exit 2 on a bad file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aggregator.config import DEFAULTS_DIR

EXAMPLE = DEFAULTS_DIR / "examples" / "portfolio.toml"


def crossmargin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aggregator", *args], capture_output=True, text=True,
                          timeout=120)


def test_assess_json_contract() -> None:
    result = crossmargin("assess", "--portfolio", str(EXAMPLE), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    comp = doc["composite"]
    for key in ("chf", "chf_account", "stressed_chf", "p_liq", "p_liq_stderr", "pooled_hf", "netted_hf",
                "fragmentation_cost_usd", "liquidation_ladder", "distance_to_liquidation", "hedge_breaks",
                "greeks", "warnings"):
        assert key in comp, key
    # CHF = min account health; the Aave leg: 20 * 3000 * 0.83 / 30000
    aave = next(a for a in doc["accounts"] if a["venue"] == "aave_v3")
    assert aave["risk"]["health"] == comp["chf"] == 1.66
    assert comp["chf_account"] == f"{aave['deployment']}/{aave['account_id']}"
    assert aave["positions"][0]["quantity"] == 20
    assert 0 <= comp["p_liq"] <= 1
    # liquidation price of the Aave leg: debt / (collateral * LT)
    assert abs(aave["risk"]["liquidation_price"]["ETH"] - 30000 / (20 * 0.83)) < 1e-6
    # same seed, same figures
    again = json.loads(crossmargin("assess", "--portfolio", str(EXAMPLE), "--json").stdout)
    assert again["composite"]["p_liq"] == comp["p_liq"]


def test_infinite_health_is_null(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[prices]\nETH = 3000\n[[accounts]]\nvenue = "aave_v3"\naccount_id = "a"\nmodel = "lending"\n'
        '[[accounts.positions]]\ntoken = "WETH"\nkind = "collateral"\nquantity = 1\nliquidation_threshold = 0.8\n'
    )
    result = crossmargin("assess", "-p", str(path), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["accounts"][0]["risk"]["health"] is None
    assert doc["composite"]["chf"] is None


def test_assess_human_output() -> None:
    result = crossmargin("assess", "--portfolio", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "CHF" in result.stdout and "liquidation ladder" in result.stdout


def test_bad_file_exits_2_naming_the_item(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(EXAMPLE.read_text().replace("quantity = 20\n", "quantity = -20\n", 1))
    result = crossmargin("assess", "--portfolio", str(path))
    assert result.returncode == 2
    assert "accounts[0].positions[0] (WETH collateral)" in result.stderr
    missing = crossmargin("assess", "--portfolio", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
