"""``crossmargin demo`` runs to completion: the command itself in a subprocess (what ``make demo``
runs), checked against figures computed here from the demo book, and nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from aggregator.devnet.demo import DOWN, UP

pytestmark = [pytest.mark.devnet, pytest.mark.slow]


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def test_demo_runs_to_completion_and_stops_what_it_started(tmp_path: os.PathLike[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSMARGIN")}
    env["COLUMNS"] = "200"
    before = set(_children_of(os.getpid()))
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "demo", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    out = result.stdout
    assert result.returncode == 0, (out[-3000:], result.stderr[-3000:])
    assert set(_children_of(os.getpid())) == before  # anvil and the venue server were stopped
    # health of the hedged book's legs at each price, from the book (aggregator/devnet/book.py,
    # venue_client.py): Aave 10 WETH vs 15,000 USDC at LT 0.825; Hyperliquid short 10 ETH with
    # 6,000 USDC, maintenance 2 % of notional
    for price in (*DOWN, *UP):
        p = float(price)
        aave = 10 * p * 0.825 / 15_000
        hyperliquid = (6_000 + 10 * (3_000 - p)) / (0.02 * 10 * p)
        block = out.split(f"ETH → {price:,} USD", 1)[1].split("ETH →", 1)[0]
        shown = [float(x) for x in re.findall(r"\b\d+\.\d{3}\b", block)]
        # interest accrues between blocks: the Aave figure may sit a hair below the seeded formula
        assert any(abs(v - aave) <= 2e-3 * aave for v in shown), (price, aave, block)
        assert any(abs(v - hyperliquid) <= 2e-3 * hyperliquid for v in shown), (price, hyperliquid, block)
    titles = re.findall(r"signature verified ✓\s+(\S+)[^\n]*?(aave_v3|hyperliquid|Composite)", out)
    kinds = {(severity.split()[0], leg) for severity, leg in titles}
    assert ("WARNING", "aave_v3") in kinds and ("WARNING", "hyperliquid") in kinds
    assert ("RESOLVED", "aave_v3") in kinds
    summary = re.search(r"Demo done: (\d+) cycles, (\d+) alerts delivered and verified, (\d+) rejected", out)
    assert summary is not None
    cycles, delivered, rejected = map(int, summary.groups())
    assert cycles == 1 + len(DOWN) + len(UP) and delivered >= 4 and rejected == 0
