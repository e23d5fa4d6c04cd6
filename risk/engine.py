"""``assess(portfolio, market, params) -> Assessment``: every figure of design section 4 for one book.

Steps (each module's docstring says what it reads and which formula it uses):

1. ``risk.arrays.compile_book``: the portfolio as arrays (OK and STALE accounts; UNAVAILABLE ones
   are left out of every figure and named in ``warnings``; STALE ones are named too).
2. ``risk.health``: health per account at current prices, CHF and its account, model drift against
   ``MarginAccount.venue_health`` (a warning when ``|drift| > drift_tolerance * |venue_health|``).
3. ``risk.distance``: distance to liquidation per factor and along the market direction, the
   liquidation ladder, each account's liquidation price per factor.
4. ``risk.stress``: stress grid, extreme and named scenarios, stressed CHF.
5. ``risk.crossview``: pooled HF, netted HF, fragmentation cost.
6. ``risk.exposure`` + ``risk.hedge``: hedge groups and hedge breaks.
7. ``risk.montecarlo.p_liq`` (seed ``rng_seed``, else ``params.mc_seed``), ``risk.greeks.book_greeks``,
   ``risk.ttl.time_to_liquidation``: p_liq with its standard error and expected penalty, greeks per
   account and for the book, time to liquidation at constant prices.

Healths are floats with ``+inf`` for "no requirement"; nothing here does I/O.
"""

from __future__ import annotations

from risk.arrays import compile_book
from risk.assessment import AccountAssessment, Assessment
from risk.crossview import cross_view
from risk.distance import account_liquidation_prices, distances, ladder, liquidation_moves, paths
from risk.exposure import usd_delta
from risk.greeks import book_greeks
from risk.health import current_state, drift_exceeds, model_drift
from risk.hedge import hedge_breaks, hedge_groups
from risk.model import AccountStatus, MarketState, Portfolio
from risk.montecarlo import p_liq
from risk.params import RiskParams
from risk.stress import build_grid, run_stress
from risk.ttl import time_to_liquidation

__all__ = ["assess"]


def assess(
    portfolio: Portfolio, market: MarketState, params: RiskParams, *, rng_seed: int | None = None
) -> Assessment:
    book = compile_book(portfolio, market)
    warnings: list[str] = [
        f"{key} is unavailable and left out of every figure: {why}" for key, why in book.skipped
    ]
    warnings += [
        f"{a.key} is stale: {a.status_reason}" for a in book.accounts if a.status is AccountStatus.STALE
    ]

    now = current_state(book)
    ev = now.evaluation
    lm = liquidation_moves(book, paths(book))
    liq_prices = account_liquidation_prices(book, lm)
    stress = run_stress(book, build_grid(book, params))
    view = cross_view(ev, stress, params)
    delta0 = usd_delta(book, book.prices0[None, :])[0]
    breaks = hedge_breaks(book, hedge_groups(book, delta0, params), lm, params)

    mc = p_liq(book, market, params, seed=rng_seed) if book.n_accounts else None
    greeks = book_greeks(book)
    ttl = time_to_liquidation(book)

    accounts = []
    for a, account in enumerate(book.accounts):
        health = float(ev.health[0, a])
        drift = model_drift(health, account.venue_health)
        if drift_exceeds(drift, account.venue_health, params.drift_tolerance):
            warnings.append(
                f"{account.key}: model health {health:.6g} drifts from the venue's "
                f"{float(account.venue_health or 0):.6g} beyond {params.drift_tolerance:g}"
            )
        accounts.append(
            AccountAssessment(
                account_key=account.key,
                health=health,
                resources_usd=float(ev.resources[0, a]),
                requirement_usd=float(ev.requirement[0, a]),
                venue_health=None if account.venue_health is None else float(account.venue_health),
                model_drift=drift,
                liquidation_price=liq_prices[a],
                time_to_liquidation_days=ttl.get(account.key),
                p_liq=None if mc is None else mc.account_p_liq.get(account.key),
                greeks=greeks.accounts.get(account.key),
            )
        )

    return Assessment(
        portfolio=portfolio.name,
        as_of=market.as_of,
        accounts=tuple(accounts),
        chf=now.chf,
        chf_account=now.chf_account,
        stressed_chf=stress.stressed_chf,
        stressed_scenario=stress.stressed_scenario,
        p_liq=0.0 if mc is None else mc.p_liq,
        p_liq_stderr=0.0 if mc is None else mc.stderr,
        expected_liquidation_penalty_usd=0.0 if mc is None else mc.expected_penalty_usd,
        pooled_hf=view.pooled_hf,
        netted_hf=view.netted_hf,
        fragmentation_cost_usd=view.fragmentation_cost_usd,
        scenarios=stress.scenarios,
        distance_to_liquidation=distances(book, lm),
        liquidation_ladder=ladder(book, lm),
        hedge_breaks=breaks,
        greeks=greeks.book,
        warnings=tuple(warnings),
    )
