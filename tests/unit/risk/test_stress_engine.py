"""Stress grid, named scenarios, hedge breaks and the assembled assessment."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from risk.arrays import compile_book
from risk.engine import assess
from risk.model import AccountStatus, FactorId, LendingModel, MarginAccount
from risk.params import NamedScenario, RiskParams
from risk.stress import build_grid, run_stress, scan_range
from tests.unit.risk.builders import AS_OF, account, cash, collateral, cross, debt, market, perp, portfolio


def test_scan_range_and_grid_moves() -> None:
    book = compile_book(portfolio(account("a", collateral(2, 3000), debt(4000))), market({"ETH": 3000.0}))
    params = RiskParams(scan_sigmas=3.0, scan_range_floor=0.05, horizon_hours=24.0)
    r = scan_range(book, params)
    assert r == pytest.approx(3 * 0.7 * math.sqrt(24 / 8760))
    grid = build_grid(book, params)
    assert grid.kinds.count("grid") == 21 and grid.kinds.count("extreme") == 2
    result = run_stress(book, grid)
    # lending health is linear in the price: the worst grid point is the full down move
    assert result.stressed_chf == pytest.approx(2 * 3000 * (1 - r) * 0.825 / 4000, rel=1e-12)
    assert result.stressed_chf == min(s.chf for s in result.scenarios if "extreme" not in s.name)


def test_named_scenarios_groups_then_factors() -> None:
    pf = portfolio(
        account("a", collateral(2, 3000), collateral(10, 150, factor="SOL"), debt(4000)),
    )
    book = compile_book(pf, market({"ETH": 3000.0, "SOL": 150.0}))
    params = RiskParams(
        factor_groups={"crypto": (FactorId("ETH"), FactorId("SOL")), "alts": (FactorId("SOL"),)},
        named_scenarios=(NamedScenario("crash", {"crypto": -0.35, "alts": -0.5}, vol_move=0.5),),
    )
    result = run_stress(book, build_grid(book, params))
    crash = next(s for s in result.scenarios if s.name == "crash")
    assert crash.shocks == {"ETH": pytest.approx(-0.35), "SOL": pytest.approx(-0.5)}
    assert crash.vol_shock == 0.5
    assert crash.chf == pytest.approx((2 * 3000 * 0.65 + 10 * 75) * 0.825 / 4000, rel=1e-12)


def hedged_portfolio() -> tuple[MarginAccount, ...]:
    return (
        account("aave", collateral(10, 3000), debt(20000)),  # long 10 ETH, liquidates at 2424.24 (-19.2%)
        cross("hl", perp(-10, 3000, mmr="0.02"), cash(32000)),  # short 10 ETH, up at 3137.25 (+4.6%)
    )


def test_hedge_break_reports_leg_trigger_and_unhedged_exposure() -> None:
    a = assess(portfolio(*hedged_portfolio()), market({"ETH": 3000.0}), RiskParams(), rng_seed=1)
    # both legs break within the stress span (+-2 x 11.1%): the short at +4.6%, Aave at -19.2%
    up, down = sorted(a.hedge_breaks, key=lambda b: -b.trigger_move)
    assert up.leg_account.endswith("/hl")
    assert up.trigger_price == pytest.approx(32000 / (10 * 1.02), rel=1e-9)
    assert up.unhedged_exposure_usd == pytest.approx(10 * up.trigger_price, rel=1e-6)
    assert up.group_health_at_trigger > 1
    assert down.leg_account.endswith("/aave")
    assert down.trigger_price == pytest.approx(20000 / (10 * 0.825), rel=1e-9)
    assert down.unhedged_exposure_usd == pytest.approx(-10 * down.trigger_price, rel=1e-6)
    assert down.group_health_at_trigger > 1


def test_assessment_end_to_end() -> None:
    unavailable = MarginAccount.unavailable(
        venue="morpho_blue",
        deployment="morpho_blue:test",
        account_id="m",
        wallet="0xabc",
        margin_model=LendingModel(),
        as_of=AS_OF,
        reason="RPC timeout",
    )
    drifting = account("drift", collateral(1, 3000), debt(1000), venue="compound_v3", venue_health=Decimal("2.6"))
    pf = portfolio(*hedged_portfolio(), unavailable, drifting)
    a = assess(pf, market({"ETH": 3000.0}), RiskParams(), rng_seed=3)
    keys = [x.account_key for x in a.accounts]
    assert keys == sorted(keys) and "morpho_blue:test/m" not in keys
    assert any("morpho_blue:test/m" in w and "RPC timeout" in w for w in a.warnings)
    assert any("compound_v3:test/drift" in w and "drifts" in w for w in a.warnings)
    by = {x.account_key: x for x in a.accounts}
    assert by["compound_v3:test/drift"].model_drift == pytest.approx(2.475 - 2.6)
    assert a.chf == min(x.health for x in a.accounts)
    assert a.chf_account == min(a.accounts, key=lambda x: x.health).account_key
    assert a.stressed_chf <= a.chf
    assert a.pooled_hf == pytest.approx(
        sum(x.resources_usd for x in a.accounts) / sum(x.requirement_usd for x in a.accounts)
    )
    assert a.fragmentation_cost_usd > 0
    assert {d.factor for d in a.distance_to_liquidation} == {"ETH", "market"}
    assert a.p_liq is not None and 0 <= a.p_liq <= 1
    assert by["aave_v3:test/aave"].liquidation_price["ETH"] == pytest.approx(20000 / (10 * 0.825), rel=1e-9)
    # same seed, same answer; order of accounts does not matter
    b = assess(portfolio(*reversed(pf.accounts)), market({"ETH": 3000.0}), RiskParams(), rng_seed=3)
    assert (b.chf, b.stressed_chf, b.p_liq, b.netted_hf) == (a.chf, a.stressed_chf, a.p_liq, a.netted_hf)


def test_stale_account_is_assessed_with_a_warning() -> None:
    stale = MarginAccount(
        venue="aave_v3",
        deployment="aave_v3:test",
        account_id="s",
        wallet="0xabc",
        margin_model=LendingModel(),
        positions=(collateral(1, 3000), debt(1000)),
        as_of=AS_OF,
        status=AccountStatus.STALE,
        status_reason="block 20 s old",
    )
    a = assess(portfolio(stale), market({"ETH": 3000.0}), RiskParams(mc_paths=200))
    assert len(a.accounts) == 1 and any("stale" in w for w in a.warnings)


def test_empty_book() -> None:
    a = assess(portfolio(), market({"ETH": 3000.0}), RiskParams())
    assert math.isinf(a.chf) and a.chf_account is None and a.liquidation_ladder == ()
