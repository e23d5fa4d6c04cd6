"""Risk-engine benchmark (issue 6, Performance). Prints figures and ratios; it is not a test.

1. One portfolio of 10 accounts across 6 factors (ETH, BTC, SOL, ARB, stETH/ETH, USDC/USD): the full
   ``risk.engine.assess`` including a 10,000-path x 24-step Monte Carlo (target < 150 ms on 2 cores).
2. A batch of such portfolios (default 1,000, quantities varied), assessed one after the other
   (target < 60 s, peak memory < 1 GB: tracemalloc peak of the Python heap incl. numpy, and the
   process's max RSS from ``resource``).
3. Vectorized ``risk.margin.evaluate`` against straightforward per-scenario Python loops over the
   same math, on the Monte Carlo's own scenarios, measured in this run (target >= 50x):
   (a) a pure-Python loop (floats, ``for`` over scenarios, accounts, positions and tiers) for the
   lending and perp accounts, whose healths are checked equal to the vectorized ones;
   (b) ``evaluate`` called once per scenario (S = 1) for the whole book, options included.

Usage: ``.venv/bin/python benchmarks/risk_engine.py [--batch N] [--loop-scenarios N]``
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from risk.arrays import KIND_COLLATERAL, KIND_DEBT, MODEL_LENDING, MODEL_OPTIONS, Book, compile_book
from risk.engine import assess
from risk.margin import derive_pm_model, evaluate
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
    OptionParams,
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
)
from risk.montecarlo import step_factor
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


def _lending(i: int, s: float) -> MarginAccount:
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
                "USDC", USD, PositionKind.DEBT, _d(-(30000 + 2000 * i) * s), Decimal(1), basis_factor=USDC
            ),
        ),
        as_of=AsOf(NOW),
    )


def _perp(i: int, s: float, isolated: bool) -> MarginAccount:
    factor, price = [(ETH, 3000), (SOL, 150), (ARB, 0.8)][i % 3]
    qty = -(200_000 / price) * s if i % 2 == 0 else (150_000 / price) * s
    cash = -qty * price + 25_000 * s
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


def portfolio(scale: np.ndarray | None = None) -> Portfolio:
    s = np.ones(10) if scale is None else scale
    accounts = [_lending(i, float(s[i])) for i in range(4)]
    accounts += [_perp(i, float(s[4 + i]), isolated=False) for i in range(3)]
    accounts += [_perp(i, float(s[7 + i]), isolated=True) for i in range(2)]
    accounts.append(_options(float(s[9])))
    return Portfolio("bench", tuple(accounts))


def market():  # type: ignore[no-untyped-def]
    factors = [ETH, BTC, SOL, ARB, STETH, USDC]
    return estimate_market(factors, PRICES, PARAMS, as_of=NOW).state


def mc_scenarios(book: Book, n_paths: int) -> np.ndarray:
    """The Monte Carlo's scenarios (normal draws), as absolute prices [paths * steps, F]."""
    live, chol = step_factor(book, market(), PARAMS.horizon_hours / 8760.0 / PARAMS.mc_steps)
    z = np.random.default_rng(1).standard_normal((n_paths, PARAMS.mc_steps, live.size))
    logp = np.broadcast_to(np.log(book.prices0), (n_paths, PARAMS.mc_steps, book.n_factors)).copy()
    logp[:, :, live] += np.cumsum(z @ chol.T, axis=1)
    return np.exp(logp).reshape(-1, book.n_factors)


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


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--loop-scenarios", type=int, default=4800)
    args = ap.parse_args()

    pf, mk = portfolio(), market()
    book = compile_book(pf, mk)
    print(
        f"book: {book.n_accounts} accounts, {book.n_factors} factors {book.factors}, "
        f"{len(book.kind)} positions"
    )
    assess(pf, mk, PARAMS)  # warm-up
    t_one, a = timed(lambda: assess(pf, mk, PARAMS), 5)
    print(
        f"[1] full assessment incl. {PARAMS.mc_paths:,} x {PARAMS.mc_steps} MC: {t_one * 1e3:.1f} ms "
        f"(target < 150 ms: {'OK' if t_one < 0.150 else 'MISSED'}); CHF {a.chf:.3f}, p_liq {a.p_liq:.4f}"
    )  # type: ignore[attr-defined]

    rng = np.random.default_rng(0)
    tracemalloc.start()
    t0 = time.perf_counter()
    for _ in range(args.batch):
        assess(portfolio(rng.uniform(0.5, 1.5, 10)), mk, PARAMS)
    t_batch = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"[2] batch of {args.batch:,} portfolios: {t_batch:.1f} s ({t_batch / args.batch * 1e3:.1f} ms each; "
        f"target < 60 s for 1,000: {'OK' if t_batch * 1000 / args.batch < 60 else 'MISSED'}); "
        f"tracemalloc peak {peak / 2**20:.0f} MB, max RSS {rss_mb:.0f} MB (target < 1024 MB)"
    )

    scen = mc_scenarios(book, PARAMS.mc_paths)
    no_opt = Portfolio("bench-no-options", tuple(x for x in pf.accounts if x.venue != "derive"))
    book_lp = compile_book(no_opt, mk)
    assert not (book_lp.model == MODEL_OPTIONS).any()
    t_vec, ev = timed(lambda: evaluate(book_lp, scen), 3)
    n_loop = min(args.loop_scenarios, scen.shape[0])
    t_loop, loop_h = timed(lambda: python_loop_health(book_lp, scen[:n_loop]), 1)
    diff = np.nanmax(np.abs(np.asarray(loop_h) - ev.health[:n_loop]))  # type: ignore[attr-defined]
    per_vec = t_vec / scen.shape[0]
    per_loop = t_loop / n_loop
    print(
        f"[3a] lending+perps, {scen.shape[0]:,} MC scenarios: vectorized {t_vec * 1e3:.1f} ms "
        f"({per_vec * 1e6:.2f} us/scenario); pure-Python loop {per_loop * 1e6:.1f} us/scenario "
        f"(on {n_loop:,}); ratio {per_loop / per_vec:.0f}x (target >= 50x); max |health diff| {diff:.2e}"
    )
    t_vec_all, _ = timed(lambda: evaluate(book, scen), 3)
    n_one = min(2000, scen.shape[0])
    t_one_loop, _ = timed(lambda: [evaluate(book, scen[s : s + 1]) for s in range(n_one)], 1)
    per_vec_all = t_vec_all / scen.shape[0]
    per_one = t_one_loop / n_one
    print(
        f"[3b] whole book incl. options: vectorized {per_vec_all * 1e6:.2f} us/scenario; "
        f"evaluate() per scenario {per_one * 1e6:.0f} us/scenario; ratio {per_one / per_vec_all:.0f}x"
    )


if __name__ == "__main__":
    main()
