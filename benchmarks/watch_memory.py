"""Peak memory of ``crossmargin watch`` over 1,000 wallets on the devnet. Target: under 500 MB.

``crossmargin watch WALLET... --cycles 2`` runs as a subprocess (real scheduler, pipeline, SQLite,
the devnet's EVM deployments (Aave, Morpho, Comet stand-in, GMX) and Hyperliquid / dYdX; Derive is left
out: its per-wallet reads do not fit the 120 s adapter budget at 1,000 wallets) over the demo
wallets plus deterministic empty ones up to N; its
peak RSS is the kernel's ``ru_maxrss`` of that child (``os.wait4``). Baseline measured in the same
run: the same command over one wallet (the process's fixed cost: interpreter, web3, numpy, scipy).

Run: ``.venv/bin/python benchmarks/watch_memory.py [wallets]`` (default 1000).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aggregator.devnet.demo import _only
from aggregator.devnet.network import start_devnet
from aggregator.devnet.user_config import render_secrets, render_user_config

TARGET_MB = 500.0


def _wallets(net_wallets: dict[str, str], count: int) -> list[str]:
    out = [a for n, a in net_wallets.items() if n in ("hedged", "fund", "near_liquidation", "emode")]
    index = 0
    while len(out) < count:
        out.append("0x" + hashlib.sha256(f"bench-wallet-{index}".encode()).hexdigest()[:40])
        index += 1
    return out[:count]


def _peak_rss_mb(config: Path, workdir: Path, wallets: list[str], only: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSMARGIN")}
    env |= {"HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data"),
            "CROSSMARGIN_SECRETS_FILE": str(workdir / "secrets.toml")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "watch", *wallets, "--portfolio", "bench", "--config",
         str(config), "--only", only, "--cycles", "2", "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=open(workdir / f"watch-{len(wallets)}.log", "w"), env=env,  # noqa: SIM115
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"watch over {len(wallets)} wallets exited {process.returncode}; "
                           f"see {workdir}/watch-{len(wallets)}.log")
    return usage.ru_maxrss / 1024, time.perf_counter() - started  # Linux: KiB


def main(count: int) -> None:
    net = start_devnet()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            base = render_user_config(net.state)
            config = workdir / "config.toml"
            config.write_text(base + f'\n[database]\nurl = "sqlite:///{workdir / "bench.db"}"\n'
                              '[watch]\ninterval = "3s"\nretention = false\n')
            # every deployment and venue of the devnet; Aevo/Deribit read with the devnet's credentials
            (workdir / "secrets.toml").write_text(render_secrets(net.state))
            only = _only(base)
            wallets = _wallets(net.state.wallets, count)
            baseline, base_s = _peak_rss_mb(config, workdir, wallets[:1], only)
            peak, peak_s = _peak_rss_mb(config, workdir, wallets, only)
    finally:
        net.stop()
    print(f"crossmargin watch --cycles 2 on the devnet ({len(only.split(','))} deployments/venues)")
    print(f"  baseline, 1 wallet      : peak RSS {baseline:7.1f} MB  ({base_s:5.1f} s)")
    print(f"  {count:,} wallets           : peak RSS {peak:7.1f} MB  ({peak_s:5.1f} s)  "
          f"ratio {peak / baseline:4.2f}x, +{(peak - baseline) / count * 1024:.1f} KB per wallet")
    print(f"target: < {TARGET_MB:.0f} MB: {'OK' if peak < TARGET_MB else 'MISSED'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
