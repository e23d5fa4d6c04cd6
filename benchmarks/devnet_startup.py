"""Time to a full devnet (anvil + Multicall3 + Aave V3 + Morpho + Comet stand-in + venue server +
seeded demo book), target < 10 s on a 2-core machine. Prints anvil's own start time as the baseline
and the full start-up per run. Warm cache: Morpho / Comet artifacts compiled once by solcjs are
reused from ``devnet/.cache`` as every run after the first does.

Run: ``.venv/bin/python benchmarks/devnet_startup.py [runs]``
"""

from __future__ import annotations

import sys
import time

from aggregator.devnet.anvil import start_anvil
from aggregator.devnet.network import start_devnet

TARGET_S = 10.0


def main(runs: int) -> None:
    t0 = time.perf_counter()
    bare = start_anvil()
    anvil_s = time.perf_counter() - t0
    bare.stop()
    print(f"anvil alone (spawn + first answer): {anvil_s:6.2f} s")
    totals: list[float] = []
    for i in range(runs):
        t0 = time.perf_counter()
        net = start_devnet()
        elapsed = time.perf_counter() - t0
        txs = net.txs.count
        net.stop()
        totals.append(elapsed)
        rate = txs / elapsed
        print(f"run {i + 1}: full devnet {elapsed:6.2f} s  ({txs} transactions, {rate:5.0f} tx/s overall)")
    best, worst = min(totals), max(totals)
    verdict = "OK" if worst < TARGET_S else "MISSED"
    print(f"best {best:.2f} s, worst {worst:.2f} s, target {TARGET_S:.0f} s: {verdict}")
    print(f"deploy + seed beyond anvil start: {best - anvil_s:.2f} s ({(best - anvil_s) / best:.0%} of best)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
