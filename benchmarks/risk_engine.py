"""Risk-engine benchmark (issue 6, Performance). Prints figures and ratios; it is not a test.

1. One portfolio of 10 accounts across 6 factors (ETH, BTC, SOL, ARB, stETH/ETH, USDC/USD): the full
   ``risk.engine.assess`` including a 10,000-path x 24-step Monte Carlo (target < 150 ms on 2 cores),
   median and best of ``--repeat`` runs: cold (the Monte Carlo paths drawn in the call) and warm
   (``risk.montecarlo`` keeps the last paths: they depend on the seed and the covariance only).
2. A batch of such portfolios (default 1,000, quantities and leverage varied), built and assessed
   in chunks of 100, keeping a summary of each (target < 60 s, peak memory < 1 GB: max RSS from
   ``resource``; the tracemalloc peak of a few assessments is printed too: tracemalloc slows numpy
   down too much to run it over the whole batch), in one process and in ``--workers`` processes
   (the chunks are independent); the CPU time per portfolio is printed as well, the figure that
   does not depend on what else runs on the machine.
3. The health computation against a straightforward per-scenario Python loop over the same math
   (floats; ``for`` over scenarios, accounts, positions and tiers) for the lending and perp
   accounts, on the Monte Carlo's own scenarios, measured in this run (target >= 50x): the Monte
   Carlo's kernel (``risk.margin.kernel``) and the generic ``risk.margin.evaluate``, both checked
   against the loop; plus ``evaluate`` called once per scenario for the whole book with options.

Machine load is printed: other processes share the cores, so read medians with the best.

Usage: ``.venv/bin/python benchmarks/risk_engine.py [--repeat N] [--batch N] [--skip 2]``
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from risk.arrays import (
    KIND_COLLATERAL,
    KIND_DEBT,
    MODEL_LENDING,
    MODEL_OPTIONS,
    Book,
    FloatArray,
    compile_book,
)
from risk.engine import assess
from risk.margin import derive_pm_model, evaluate
from risk.margin.kernel import health_kernel
from risk.market import estimate_market
from risk.model import (
    USD,
    AsOf,
    CrossPerpModel,
    FactorId,
    IsolatedPerpModel,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginTier,
    MarketState,
    OptionParams,
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
)
from risk.montecarlo import clear_path_cache, step_factor
from risk.options import black76_price
from risk.params import RiskParams

NOW = datetime(2025, 6, 1, tzinfo=UTC)
ETH, BTC, SOL, ARB = FactorId("ETH"), FactorId("BTC"), FactorId("SOL"), FactorId("ARB")
STETH, USDC = FactorId("stETH/ETH"), FactorId("USDC/USD")
PRICES = {ETH: 3000.0, BTC: 60000.0, SOL: 150.0, ARB: 0.8, STETH: 0.998, USDC: 1.0, USD: 1.0}
PARAMS = RiskParams(
    default_vols={"ETH": 0.7, "BTC": 0.55, "SOL": 0.9, "ARB": 1.0, "stETH/ETH": 0.05, "USDC/USD": 0.02},
    factor_groups={
        "crypto": (ETH, BTC, SOL, ARB),
        "alts": (SOL, ARB),
        "lst": (STETH,),
        "stablecoins": (USDC,),
    },
)
TIERS = (MarginTier(Decimal(0), Decimal("0.0125")), MarginTier(Decimal(500_000), Decimal("0.025")))


def _d(x: float) -> Decimal:
    return Decimal(str(round(x, 8)))


def _lending(i: int, s: float, lev: float = 1.0) -> MarginAccount:
    lp = LendingParams(
        ltv=Decimal("0.75"), liquidation_threshold=Decimal("0.8"), liquidation_bonus=Decimal("0.05")
    )
    lp_btc = LendingParams(
        ltv=Decimal("0.7"), liquidation_threshold=Decimal("0.75"), liquidation_bonus=Decimal("0.06")
    )
    return MarginAccount(
        venue="aave_v3",
        deployment=f"aave_v3:chain{i}",
        account_id=f"l{i}",
        wallet="0x1",
        margin_model=LendingModel(),
        positions=(
            Position(
                "wstETH",
                ETH,
                PositionKind.COLLATERAL,
                _d(10 * s),
                Decimal("3592.8"),
                basis_factor=STETH,
                lending=lp,
            ),
            Position("WBTC", BTC, PositionKind.COLLATERAL, _d(0.5 * s), Decimal(60000), lending=lp_btc),
            Position(
                "USDC",
                USD,
                PositionKind.DEBT,
                _d(-(30000 + 2000 * i) * s * lev),
                Decimal(1),
                basis_factor=USDC,
            ),
        ),
        as_of=AsOf(NOW),
    )


def _perp(i: int, s: float, isolated: bool, lev: float = 1.0) -> MarginAccount:
    factor, price = [(ETH, 3000), (SOL, 150), (ARB, 0.8)][i % 3]
    qty = -(200_000 / price) * s if i % 2 == 0 else (150_000 / price) * s
    cash = -qty * price + 25_000 * s / lev
    model = IsolatedPerpModel() if isolated else CrossPerpModel()
    positions = [
        Position(
            str(factor),
            factor,
            PositionKind.PERP,
            _d(qty),
            _d(price),
            perp=PerpParams(
                entry_price=_d(price), margin_tiers=TIERS, funding_rate_hourly=Decimal("0.00001")
            ),
        ),
        Position("USDC", USD, PositionKind.SPOT, _d(cash), Decimal(1), basis_factor=USDC),
    ]
    if not isolated:
        positions.insert(
            1,
            Position(
                "BTC",
                BTC,
                PositionKind.PERP,
                _d(0.5 * s),
                Decimal(60000),
                perp=PerpParams(entry_price=Decimal(60000), margin_tiers=TIERS),
            ),
        )
        positions[-1] = Position(
            "USDC", USD, PositionKind.SPOT, _d(cash - 30000 * s), Decimal(1), basis_factor=USDC
        )
    return MarginAccount(
        venue="hyperliquid",
        deployment="hyperliquid:mainnet",
        account_id=f"p{i}{'i' if isolated else ''}",
        wallet="0x1",
        margin_model=model,
        positions=tuple(positions),
        as_of=AsOf(NOW),
    )


def _options(s: float) -> MarginAccount:
    expiry = NOW + timedelta(days=21)
    legs = []
    for k, kind, q in ((2600, "put", 20), (3400, "call", -15), (2800, "put", -10)):
        mark = float(black76_price(3000.0, k, 21 / 365, 0.7, kind == "call"))
        legs.append(
            Position(
                f"ETH-{k}-{kind[0].upper()}",
                ETH,
                PositionKind.OPTION,
                _d(q * s),
                _d(mark),
                option=OptionParams(
                    strike=Decimal(k),
                    expiry=expiry,
                    option_type=kind,  # type: ignore[arg-type]
                    mark_iv=Decimal("0.7"),
                    underlying_price=Decimal(3000),
                ),
            )
        )
    legs.append(Position("USDC", USD, PositionKind.SPOT, _d(40_000 * s), Decimal(1), basis_factor=USDC))
    return MarginAccount(
        venue="derive",
        deployment="derive:mainnet",
        account_id="o1",
        wallet="0x1",
        margin_model=derive_pm_model(),
        positions=tuple(legs),
        as_of=AsOf(NOW),
    )


def portfolio(scale: np.ndarray | None = None, lever: np.ndarray | None = None) -> Portfolio:
    """The benchmark book; ``scale`` multiplies each account's positions, ``lever`` its leverage
    (lending debt, perps' margin divided)."""
    s = np.ones(10) if scale is None else scale
    lv = np.ones(10) if lever is None else lever
    accounts = [_lending(i, float(s[i]), float(lv[i])) for i in range(4)]
    accounts += [_perp(i, float(s[4 + i]), False, float(lv[4 + i])) for i in range(3)]
    accounts += [_perp(i, float(s[7 + i]), True, float(lv[7 + i])) for i in range(2)]
    accounts.append(_options(float(s[9])))
    return Portfolio("bench", tuple(accounts))


def market() -> MarketState:
    factors = [ETH, BTC, SOL, ARB, STETH, USDC]
    return estimate_market(factors, PRICES, PARAMS, as_of=NOW).state


def mc_scenarios(book: Book, n_paths: int) -> FloatArray:
    """The Monte Carlo's scenarios (normal draws), as absolute prices [paths * steps, F]."""
    live, chol = step_factor(book, market(), PARAMS.horizon_hours / 8760.0 / PARAMS.mc_steps)
    z = np.random.default_rng(1).standard_normal((n_paths, PARAMS.mc_steps, live.size))
    logp = np.broadcast_to(np.log(book.prices0), (n_paths, PARAMS.mc_steps, book.n_factors)).copy()
    logp[:, :, live] += np.cumsum(z @ chol.T, axis=1)
    out: FloatArray = np.exp(logp).reshape(-1, book.n_factors)
    return out


def python_loop_health(book: Book, prices: np.ndarray) -> list[list[float]]:
    """Per scenario, per account, per position: lending and perp healths with Python floats."""
    p0 = [float(x) for x in book.prices0]
    out: list[list[float]] = []
    n_pos = len(book.kind)
    perp_of = {int(p): j for j, p in enumerate(book.perp_pos)}
    for row in prices.tolist():
        ratio = [row[f] / p0[f] for f in range(len(p0))] + [1.0]
        res = [0.0] * book.n_accounts
        req = [0.0] * book.n_accounts
        for n in range(n_pos):
            a = int(book.pos_account[n])
            value = (
                float(book.quantity[n])
                * float(book.price0_usd[n])
                * ratio[book.factor_idx[n]]
                * ratio[book.basis_idx[n]]
            )
            if book.model[a] == MODEL_LENDING:
                if book.kind[n] == KIND_COLLATERAL:
                    res[a] += value * float(book.lt[n])
                elif book.kind[n] == KIND_DEBT:
                    req[a] -= value
            else:
                res[a] += value
                j = perp_of.get(n)
                if j is not None:
                    notional = abs(value)
                    k = 0
                    while k + 1 < book.tier_bounds.shape[1] and notional >= book.tier_bounds[j, k + 1]:
                        k += 1
                    req[a] += max(
                        notional * book.tier_mmr[j, k] - book.tier_deduction[j, k],
                        float(book.perp_min_req[j]),
                    )
        out.append([r / q if q > 0 else math.inf for r, q in zip(res, req, strict=True)])
    return out


def timed(fn, repeat: int, before=None) -> tuple[list[float], object]:  # type: ignore[no-untyped-def]
    """Wall times of ``repeat`` calls (``before()`` runs untimed before each) and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def stats(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1e3:.1f} ms, best {min(times) * 1e3:.1f} ms (n={len(times)})"


def single(pf: Portfolio, mk, repeat: int) -> None:  # type: ignore[no-untyped-def]
    assess(pf, mk, PARAMS)  # warm-up (imports, caches)
    cold, a = timed(lambda: assess(pf, mk, PARAMS), repeat, before=clear_path_cache)
    warm, _ = timed(lambda: assess(pf, mk, PARAMS), repeat)
    print(
        f"[1] full assessment incl. {PARAMS.mc_paths:,} x {PARAMS.mc_steps} MC (target < 150 ms): "
        f"CHF {a.chf:.3f}, p_liq {a.p_liq:.4f} +- {a.p_liq_stderr:.4f}"  # type: ignore[attr-defined]
    )
    print(
        f"    cold (Monte Carlo paths drawn in the call): {stats(cold)} "
        f"{'OK' if statistics.median(cold) < 0.150 else 'MISSED'}"
    )
    print(
        f"    warm (paths cached from an earlier call with the same market): {stats(warm)} "
        f"{'OK' if statistics.median(warm) < 0.150 else 'MISSED'}"
    )


def _assess_chunk(job: tuple[int, int, int]) -> tuple[int, float, float, float, float]:
    """Build and assess portfolios ``start .. start + size`` of the batch (seeded per chunk, so the
    batch is the same whatever the number of workers); only a summary is kept: (count, worst CHF,
    sum of p_liq, seconds in assess, CPU seconds in assess)."""
    start, size, seed = job
    rng = np.random.default_rng([seed, start])
    mk = market()
    books = [portfolio(rng.uniform(0.5, 1.5, 10), rng.uniform(0.8, 1.25, 10)) for _ in range(size)]
    worst, sum_p = math.inf, 0.0
    t, c = time.perf_counter(), time.process_time()
    for pf in books:
        a = assess(pf, mk, PARAMS)
        worst = min(worst, a.chf)
        sum_p += a.p_liq or 0.0
    return size, worst, sum_p, time.perf_counter() - t, time.process_time() - c


def batch(n: int, chunk: int, workers: int) -> None:
    """``n`` portfolios with varied quantities and leverage, built and assessed ``chunk`` at a time
    (in ``workers`` processes when > 1, each with its own path cache); only a summary of each
    assessment is kept, so memory does not grow with ``n``."""
    jobs = [(start, min(chunk, n - start), 0) for start in range(0, n, chunk)]
    t0 = time.perf_counter()
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_assess_chunk, jobs, chunksize=1)
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        where = f"largest worker's peak RSS {rss_mb:.0f} MB"
    else:
        parts = [_assess_chunk(job) for job in jobs]
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        where = f"peak RSS of the process {rss_mb:.0f} MB"
    t_total = time.perf_counter() - t0
    count = sum(p[0] for p in parts)
    worst = min(p[1] for p in parts)
    mean_p = sum(p[2] for p in parts) / count
    cpu = sum(p[4] for p in parts)
    scaled = t_total * 1000 / n
    print(
        f"[2] batch of {n:,} portfolios in chunks of {chunk}, {workers} process(es): {t_total:.1f} s wall "
        f"({t_total / n * 1e3:.1f} ms each; target < 60 s for 1,000: {'OK' if scaled < 60 else 'MISSED'}); "
        f"CPU in assess {cpu:.1f} s ({cpu / n * 1e3:.1f} ms each); {where} (target < 1024 MB); "
        f"worst CHF {worst:.3f}, mean p_liq {mean_p:.4f}"
    )
    mk = market()
    rng = np.random.default_rng(1)
    tracemalloc.start()
    for _ in range(5):
        assess(portfolio(rng.uniform(0.5, 1.5, 10)), mk, PARAMS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"    tracemalloc peak of one assessment (Python heap incl. numpy arrays): {peak / 2**20:.0f} MB")


def ratios(pf: Portfolio, mk, n_loop_scenarios: int) -> None:  # type: ignore[no-untyped-def]
    book = compile_book(pf, mk)
    scen = mc_scenarios(book, PARAMS.mc_paths)
    no_opt = Portfolio("bench-no-options", tuple(x for x in pf.accounts if x.venue != "derive"))
    book_lp = compile_book(no_opt, mk)
    assert not (book_lp.model == MODEL_OPTIONS).any()
    n_loop = min(n_loop_scenarios, scen.shape[0])
    t_loop, loop_h = timed(lambda: python_loop_health(book_lp, scen[:n_loop]), 3)
    per_loop = statistics.median(t_loop) / n_loop
    print(
        f"[3] per-scenario Python loop over the same math (lending + perps, {n_loop:,} of the MC's "
        f"{scen.shape[0]:,} scenarios): {per_loop * 1e6:.1f} us/scenario (median of {len(t_loop)})"
    )
    live = np.flatnonzero(book_lp.vols > 0)
    x = np.log(scen[:, live] / book_lp.prices0[live])
    kernel = health_kernel(book_lp, lambda f, b: (-1.0, 1.0))  # no options account: no table
    t_ker, flags = timed(lambda: kernel.below(x, live), 7)
    t_vec, ev = timed(lambda: evaluate(book_lp, scen), 5)
    want = np.asarray(loop_h) < 1.0
    agree = np.array_equal(flags[:n_loop], want)  # type: ignore[index]
    diff = np.nanmax(np.abs(np.asarray(loop_h) - ev.health[:n_loop]))  # type: ignore[attr-defined]
    for name, t in (("Monte Carlo kernel (risk.margin.kernel)", t_ker), ("risk.margin.evaluate", t_vec)):
        per = min(t) / scen.shape[0]
        per_med = statistics.median(t) / scen.shape[0]
        print(
            f"    {name}: {per_med * 1e6:.3f} us/scenario median, {per * 1e6:.3f} best; ratio to the loop "
            f"{per_loop / per_med:.0f}x median, {per_loop / per:.0f}x best (target >= 50x)"
        )
    print(f"    check: kernel flags == loop's h < 1: {agree}; max |evaluate health - loop health| {diff:.2e}")
    t_all, _ = timed(lambda: evaluate(book, scen), 3)
    n_one = min(2000, scen.shape[0])
    t_one, _ = timed(lambda: [evaluate(book, scen[s : s + 1]) for s in range(n_one)], 1)
    per_all = statistics.median(t_all) / scen.shape[0]
    per_one = min(t_one) / n_one
    print(
        f"    whole book incl. options: evaluate() once per scenario {per_one * 1e6:.0f} us/scenario; "
        f"vectorized evaluate {per_all * 1e6:.2f} us/scenario ({per_one / per_all:.0f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--batch-chunk", type=int, default=100)
    ap.add_argument("--workers", default="1", help="batch worker processes, comma-separated runs (1,2)")
    ap.add_argument("--loop-scenarios", type=int, default=4800)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: 1,2,3")
    args = ap.parse_args()
    skip = set(args.skip.split(",")) - {""}

    pf, mk = portfolio(), market()
    book = compile_book(pf, mk)
    print(
        f"book: {book.n_accounts} accounts, {book.n_factors} factors {book.factors}, "
        f"{len(book.kind)} positions; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    if "1" not in skip:
        single(pf, mk, args.repeat)
    if "2" not in skip:  # before 3, whose full-size evaluate() calls would set the peak RSS
        for workers in (int(w) for w in args.workers.split(",")):
            batch(args.batch, args.batch_chunk, workers)
    if "3" not in skip:
        ratios(pf, mk, args.loop_scenarios)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
