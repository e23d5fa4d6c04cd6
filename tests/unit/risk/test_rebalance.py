"""The rebalancing advisor (risk.rebalance): hand-solved optima and hypothesis properties.

Hand-solved books use the water-filling closed form: with one pool of P dollars shared by accounts whose
healths are (a_i + c x_i) / (d_i - e x_i), the max-min equalizes every funded account at the level t with
sum x_i = P. Every expected figure below is computed from that formula and the scan range of
risk.stress (R = max(floor, k sigma sqrt(h / 8760))), never read back from the advisor.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk.arrays import compile_book
from risk.errors import RiskInputError
from risk.health import current_state
from risk.model import (
    AsOf,
    DeriveStandardModel,
    FactorId,
    LendingParams,
    MarginAccount,
    Position,
    PositionKind,
    StandardMarginModel,
)
from risk.options import black76_price
from risk.params import RiskParams
from risk.rebalance import (
    CollateralSlot,
    IdleBalance,
    Movable,
    RebalanceParams,
    add_quantity,
    advise,
    describe_move,
)
from risk.stress import build_grid, run_stress
from tests.unit.risk.builders import (
    NOW,
    account,
    cash,
    collateral,
    cross,
    debt,
    market,
    option,
    perp,
    portfolio,
)

PARAMS = RiskParams(mc_paths=500, mc_steps=6)
POOL_ONLY = RebalanceParams(source_min_health=50.0)  # every account is below the floor: only pools move
MARKET = market({"ETH": 3000.0})
R = max(PARAMS.scan_range_floor, PARAMS.scan_sigmas * 0.7 * math.sqrt(PARAMS.horizon_hours / 8760))
LT = 0.825


def usdc_collateral(qty: float, lt: str = "0.78", ltv: str = "0.75") -> Position:
    return Position(
        token="USDC",
        factor=FactorId("USD"),
        kind=PositionKind.COLLATERAL,
        quantity=Decimal(str(qty)),
        price=Decimal(1),
        lending=LendingParams(
            ltv=Decimal(ltv), liquidation_threshold=Decimal(lt), liquidation_bonus=Decimal("0.04")
        ),
    )


def eth_collateral(qty: float) -> Position:
    return Position(
        token="ETH",
        factor=FactorId("ETH"),
        kind=PositionKind.COLLATERAL,
        quantity=Decimal(str(qty)),
        price=Decimal(3000),
        lending=LendingParams(
            ltv=Decimal("0.8"), liquidation_threshold=Decimal(str(LT)), liquidation_bonus=Decimal("0.05")
        ),
    )


def on_chain(acct: MarginAccount, chain: str) -> MarginAccount:
    return replace(acct, as_of=AsOf(timestamp=NOW, chain=chain))


def idle(amount: float, chain: str = "ethereum", token: str = "USDC") -> IdleBalance:
    return IdleBalance(
        wallet="0xfeed", location=chain, token=token, amount=Decimal(str(amount)), price_usd=1.0
    )


def engine_figures(pf: object) -> tuple[float, float]:
    book = compile_book(pf, MARKET)  # type: ignore[arg-type]
    return current_state(book).chf, run_stress(book, build_grid(book, PARAMS)).stressed_chf


# --- hand-solved books ---------------------------------------------------------------------------


def test_repaying_two_accounts_from_one_pool_equalizes_their_stressed_health() -> None:
    # A: 10 ETH, 20,000 debt (stressed h 1.10); B: 5 ETH, 8,000 debt (stressed h 1.38); pool 5,000 USDC.
    a = account("A", collateral(10, 3000), debt(20_000))
    b = account("B", collateral(5, 3000), debt(8_000))
    advice = advise(
        portfolio(a, b), MARKET, PARAMS, Movable(idle=(idle(5_000),)), rebalance=POOL_ONLY, reassess=False
    )
    # equal level t: LT (1-R) 3000 (10 + 5) / (20,000 + 8,000 - 5,000)
    t = LT * (1 - R) * 3000 * 15 / (28_000 - 5_000)
    assert advice.status == "improved"
    assert advice.stressed_chf_after == pytest.approx(t, rel=1e-6)
    repaid = {m.destination.split("/")[-1]: m.amount for m in advice.moves}
    assert repaid["A"] == pytest.approx(20_000 - LT * (1 - R) * 30_000 / t, rel=1e-5)
    assert repaid["B"] == pytest.approx(8_000 - LT * (1 - R) * 15_000 / t, rel=1e-5)
    assert sum(repaid.values()) == pytest.approx(5_000, rel=1e-6)
    assert all(m.action == "repay" and not m.slow and m.delay_minutes == 0 for m in advice.moves)
    # the plan's figures are the engine's own on the moved book
    chf, stressed = engine_figures(advice.portfolio_after)
    assert stressed == pytest.approx(advice.stressed_chf_after, rel=1e-12)
    assert chf == pytest.approx(advice.chf_after, rel=1e-12)
    assert advice.moves[-1].stressed_chf_after == pytest.approx(stressed, rel=1e-12)


def test_a_small_pool_goes_to_the_weakest_account_only() -> None:
    a = account("A", collateral(10, 3000), debt(22_000))
    b = account("B", collateral(5, 3000), debt(5_000))
    advice = advise(
        portfolio(a, b), MARKET, PARAMS, Movable(idle=(idle(1_000),)), rebalance=POOL_ONLY, reassess=False
    )
    assert [m.destination.split("/")[-1] for m in advice.moves] == ["A"]
    assert advice.moves[0].amount == pytest.approx(1_000)
    assert advice.stressed_chf_after == pytest.approx(LT * (1 - R) * 30_000 / 21_000, rel=1e-9)


def test_new_usdc_collateral_fills_both_accounts_to_one_level() -> None:
    # Deposits as USDC collateral (LT 0.78, not moved by the ETH grid):
    # t = (LT (1-R) 3000 (10 + 5) + 0.78 P) / (20,000 + 10,000)
    a = account("A", collateral(10, 3000), debt(20_000))
    b = account("B", collateral(5, 3000), debt(10_000))
    slots = tuple(
        CollateralSlot(
            account_key=k,
            token="USDC",
            factor=FactorId("USD"),
            liquidation_threshold=Decimal("0.78"),
            ltv=Decimal("0.75"),
            price=Decimal(1),
        )
        for k in (a.key, b.key)
    )
    # the pool is a wallet balance with no debt to repay in its token elsewhere: only the slots take it
    pf = portfolio(
        replace(a, positions=(a.positions[0], replace(a.positions[1], token="DAI"))),
        replace(b, positions=(b.positions[0], replace(b.positions[1], token="DAI"))),
    )
    advice = advise(pf, MARKET, PARAMS, Movable(idle=(idle(6_000),), new_collateral=slots), reassess=False)
    t = (LT * (1 - R) * 3000 * 15 + 0.78 * 6_000) / 30_000
    assert advice.stressed_chf_after == pytest.approx(t, rel=1e-6)
    assert {m.action for m in advice.moves} == {"deposit"}
    held = {
        a.account_id: [p for p in a.positions if p.token == "USDC"] for a in advice.portfolio_after.accounts
    }
    assert all(len(v) == 1 and v[0].kind is PositionKind.COLLATERAL for v in held.values())
    assert engine_figures(advice.portfolio_after)[1] == pytest.approx(advice.stressed_chf_after, rel=1e-12)


def dai_debt(qty: float) -> Position:
    return replace(debt(qty), token="DAI")


def test_collateral_moves_from_a_healthy_account_until_the_healths_meet() -> None:
    # A: 10 ETH + 20,000 USDC collateral; B: 10 ETH; both owe 20,000 DAI (so USDC repays nothing). B
    # accepts USDC collateral (LT 0.78). Moving x: stressed h_A = (c + 0.78 (20,000 - x)) / 20,000 and
    # h_B = (c + 0.78 x) / 20,000 with c = LT (1-R) 30,000: equal at x = 10,000.
    a = account("A", eth_collateral(10), usdc_collateral(20_000), dai_debt(20_000))
    b = account("B", eth_collateral(10), dai_debt(20_000))
    slot = CollateralSlot(
        account_key=b.key,
        token="USDC",
        factor=FactorId("USD"),
        liquidation_threshold=Decimal("0.78"),
        ltv=Decimal("0.75"),
        price=Decimal(1),
    )
    advice = advise(
        portfolio(a, b),
        MARKET,
        PARAMS,
        Movable(new_collateral=(slot,)),
        rebalance=RebalanceParams(source_min_health=1.0),
        reassess=False,
    )
    assert len(advice.moves) == 1
    move = advice.moves[0]
    assert (move.source, move.destination, move.action, move.token) == (a.key, b.key, "deposit", "USDC")
    assert move.amount == pytest.approx(10_000, rel=1e-5)
    c = LT * (1 - R) * 30_000
    assert advice.stressed_chf_after == pytest.approx((c + 0.78 * 10_000) / 20_000, rel=1e-6)
    assert engine_figures(advice.portfolio_after)[1] == pytest.approx(advice.stressed_chf_after, rel=1e-12)


def test_withdrawal_floor_and_borrow_rule_hold() -> None:
    # A (owes DAI) can send USDC collateral to repay B's USDC debt; A must keep h >= 1.8 now:
    # (24,750 + 0.78 (20,000 - w)) / 20,000 >= 1.8  ->  w <= 4,350 / 0.78. B stays the weakest, so the
    # floor is what stops the transfer.
    a = account("A", eth_collateral(10), usdc_collateral(20_000), dai_debt(20_000))
    b = account("B", collateral(10, 3000), debt(24_000))
    floor = 1.8
    advice = advise(
        portfolio(a, b), MARKET, PARAMS, rebalance=RebalanceParams(source_min_health=floor), reassess=False
    )
    moved = sum(m.amount for m in advice.moves if m.source == a.key)
    assert moved == pytest.approx(4_350 / 0.78, rel=1e-6)
    assert {m.action for m in advice.moves} == {"repay"}
    after = {x.key: x for x in advice.portfolio_after.accounts}[a.key]
    assert current_state(compile_book(portfolio(after), MARKET)).chf >= floor * (1 - 1e-9)
    ltv = sum(float(p.quantity * p.price * p.lending.ltv) for p in after.positions if p.lending is not None)
    assert ltv >= 20_000


def test_the_borrow_rule_blocks_withdrawals() -> None:
    # A: LTV 0.5 on 30,000 of ETH and 0 on 9,000 USDC: 15,000 < 16,000 owed, so the venue forbids any
    # withdrawal although A's health (24,750 + 7,020) / 16,000 = 1.99 is above the floor
    a = account("A", collateral(10, 3000), usdc_collateral(9_000, ltv="0"), dai_debt(16_000))
    b = account("B", collateral(10, 3000), debt(24_000))
    advice = advise(
        portfolio(a, b), MARKET, PARAMS, rebalance=RebalanceParams(source_min_health=1.0), reassess=False
    )
    assert not [m for m in advice.moves if m.source == a.key]
    assert any(a.key in n and "borrow rule" in n for n in advice.notes)


def test_target_is_reached_with_the_least_moved() -> None:
    a = account("A", collateral(10, 3000), debt(20_000))
    b = account("B", collateral(10, 3000), debt(10_000))
    target = 1.2
    advice = advise(
        portfolio(a, b),
        MARKET,
        PARAMS,
        Movable(idle=(idle(50_000),)),
        target_chf=target,
        rebalance=POOL_ONLY,
        reassess=False,
    )
    assert advice.status == "target_reached"
    # only A is below 1.2 when stressed; it needs 20,000 - LT (1-R) 30,000 / 1.2
    need = 20_000 - LT * (1 - R) * 30_000 / target
    assert advice.moved_usd == pytest.approx(need, rel=1e-6)
    assert advice.stressed_chf_after == pytest.approx(target, rel=1e-8)
    assert advice.stressed_chf_after >= target * (1 - 1e-12)


def test_an_unreachable_target_gives_the_best_plan_and_says_so() -> None:
    a = account("A", collateral(10, 3000), debt(20_000))
    advice = advise(
        portfolio(a),
        MARKET,
        PARAMS,
        Movable(idle=(idle(1_000),)),
        target_chf=5.0,
        rebalance=POOL_ONLY,
        reassess=False,
    )
    assert advice.status == "target_unreachable"
    assert advice.stressed_chf_after == pytest.approx(LT * (1 - R) * 30_000 / 19_000, rel=1e-6)
    assert any("out of reach" in n for n in advice.notes)


def test_a_met_target_moves_nothing() -> None:
    a = account("A", collateral(10, 3000), debt(10_000))
    advice = advise(
        portfolio(a), MARKET, PARAMS, Movable(idle=(idle(1_000),)), target_chf=1.1, reassess=False
    )
    assert advice.status == "target_met" and advice.moves == ()


# --- usability, bridges, venue figures -----------------------------------------------------------


def test_a_token_only_goes_where_it_is_used() -> None:
    a = account("A", collateral(10, 3000), debt(20_000))
    advice = advise(portfolio(a), MARKET, PARAMS, Movable(idle=(idle(5_000, token="USDT"),)), reassess=False)
    assert advice.status == "nothing_movable" and advice.moves == ()


def test_cross_chain_moves_are_slow_and_same_chain_funds_come_first() -> None:
    a = on_chain(account("A", collateral(10, 3000), debt(20_000)), "arbitrum")
    pools = (idle(3_000, chain="ethereum"), idle(2_000, chain="arbitrum"))
    rp = RebalanceParams(bridge_delays={("ethereum", "arbitrum"): 12.0})
    advice = advise(
        portfolio(a), MARKET, PARAMS, Movable(idle=pools), target_chf=1.3, rebalance=rp, reassess=False
    )
    need = 20_000 - LT * (1 - R) * 30_000 / 1.3  # about 3,050: the 2,000 on arbitrum first
    fast = [m for m in advice.moves if not m.slow]
    slow = [m for m in advice.moves if m.slow]
    assert sum(m.amount for m in fast) == pytest.approx(2_000)
    assert sum(m.amount for m in slow) == pytest.approx(need - 2_000, rel=1e-6)
    assert all(m.source_location == "ethereum" and m.destination_location == "arbitrum" for m in slow)
    assert all(m.delay_minutes == 12.0 for m in slow)
    assert advice.moves.index(fast[0]) < advice.moves.index(slow[0])
    # while the bridged part is in transit only the fast part has arrived
    assert advice.interim_stressed_chf == pytest.approx(LT * (1 - R) * 30_000 / 18_000, rel=1e-9)
    assert "bridge ethereum -> arbitrum" in describe_move(slow[0])


def test_perp_cash_never_exceeds_the_venues_withdrawable() -> None:
    lender = account("A", collateral(10, 3000), debt(22_000))
    hl = replace(cross("hl", perp(-5, 3000, mmr="0.02"), cash(40_000)), withdrawable=Decimal(1_234))
    advice = advise(portfolio(lender, hl), MARKET, PARAMS, reassess=False)
    out = sum(m.amount for m in advice.moves if m.source == hl.key)
    assert 0 < out <= 1_234
    assert all(m.slow is False for m in advice.moves)  # both on the builders' chain


DERIBIT_STANDARD = StandardMarginModel(
    call_spot=Decimal("0.075"),
    put_spot=Decimal("0.075"),
    put_mark=Decimal("0.075"),
    option_value_counts=False,
)
AEVO_STANDARD = StandardMarginModel()  # 0.1 x spot, option value counts


@pytest.mark.parametrize("model", [DERIBIT_STANDARD, AEVO_STANDARD], ids=["deribit", "aevo"])
def test_standard_margin_cash_leaves_down_to_the_floor_of_the_venues_rule(model: StandardMarginModel) -> None:
    # short 10 ETH 4200 calls (30 days, iv 0.6) at their Black-76 mark, index 2,990, 20,000 USDC cash;
    # the lender (h 0.95) needs more than the standard account can give, so its floor binds: no venue
    # figure, so health now >= 2 (perp_min_health_without_venue_figure), i.e. x = R - 2 Q with
    # Q = 10 (call_spot x 2,990 + mark) and R = cash (Deribit: equity less the options' value) or
    # cash - 10 mark (Aevo: equity).
    mark = round(float(black76_price(3000.0, 4200.0, 30 / 365, 0.6, True)), 6)
    short_call = option(-10, mark, 4200, 30, kind="call")
    assert short_call.option is not None
    short_call = replace(short_call, option=replace(short_call.option, spot_price=Decimal(2990)))
    std = account("D", short_call, cash(20_000), model=model, venue="deribit")
    lender = account("A", collateral(20, 3000), debt(52_000))
    advice = advise(portfolio(lender, std), MARKET, PARAMS, reassess=False)
    q = 10 * (float(model.call_spot) * 2990 + mark)
    r = 20_000.0 - (0.0 if not model.option_value_counts else 10 * mark)
    out = [m for m in advice.moves if m.source == std.key]
    assert [m.destination for m in out] == [lender.key]
    assert sum(m.amount for m in out) == pytest.approx(r - 2 * q, rel=1e-7)
    # with the venue's withdrawable figure, that caps the cash leaving it
    capped = replace(std, withdrawable=Decimal(1_234))
    advice = advise(portfolio(lender, capped), MARKET, PARAMS, reassess=False)
    assert sum(m.amount for m in advice.moves if m.source == std.key) == pytest.approx(1_234, rel=1e-9)


def test_derive_standard_margin_cash_leaves_down_to_the_floor_of_its_rule() -> None:
    # Derive SM account (short calls, USDC cash): no venue figure, so cash may leave while its health
    # stays >= 2 (perp_min_health_without_venue_figure): x = R - 2 Q with R and Q taken from the
    # engine's own evaluation of the account at current prices
    from risk.arrays import compile_book
    from risk.margin import evaluate

    mark = round(float(black76_price(3000.0, 4200.0, 30 / 365, 0.6, True)), 6)
    short_call = option(-10, mark, 4200, 30, kind="call")
    std = account("S", short_call, cash(20_000), model=DeriveStandardModel(), venue="derive")
    lender = account("A", collateral(20, 3000), debt(52_000))
    book = compile_book(portfolio(std), MARKET)
    figures = evaluate(book, book.prices0[None, :])
    r, q = float(figures.resources[0, 0]), float(figures.requirement[0, 0])
    assert q > 0
    advice = advise(portfolio(lender, std), MARKET, PARAMS, reassess=False)
    out = [m for m in advice.moves if m.source == std.key]
    assert [m.destination for m in out] == [lender.key]
    assert sum(m.amount for m in out) == pytest.approx(r - 2 * q, rel=1e-7)


def test_frozen_accounts_are_left_alone() -> None:
    lender = account("A", collateral(10, 3000), debt(22_000))
    hl = cross("hl", perp(-5, 3000, mmr="0.02"), cash(40_000))
    advice = advise(
        portfolio(lender, hl), MARKET, PARAMS, Movable(frozen_accounts=frozenset({hl.key})), reassess=False
    )
    assert advice.moves == ()


def test_reassess_reports_p_liq_with_the_same_seed() -> None:
    a = account("A", collateral(10, 3000), debt(23_000))
    advice = advise(portfolio(a), MARKET, PARAMS, Movable(idle=(idle(8_000),)), rng_seed=3)
    assert advice.before is not None and advice.after is not None
    assert advice.p_liq_before is not None and advice.p_liq_after is not None
    assert advice.p_liq_after <= advice.p_liq_before
    assert advice.chf_after == advice.after.chf > advice.chf_before == advice.before.chf


def test_bad_arguments_are_errors() -> None:
    a = account("A", collateral(10, 3000), debt(20_000))
    with pytest.raises(RiskInputError, match="objective"):
        advise(portfolio(a), MARKET, PARAMS, objective="max_pnl", reassess=False)  # type: ignore[arg-type]
    with pytest.raises(RiskInputError, match="target"):
        advise(portfolio(a), MARKET, PARAMS, target_chf=-1, reassess=False)
    with pytest.raises(RiskInputError, match="exceeds the debt"):
        add_quantity(a, "USDC", PositionKind.DEBT, Decimal(30_000))
    with pytest.raises(RiskInputError, match="cannot take"):
        add_quantity(a, "ETH", PositionKind.COLLATERAL, Decimal(-11))


# --- properties ----------------------------------------------------------------------------------

CHAINS = ("ethereum", "arbitrum")
money = st.floats(min_value=100, max_value=50_000)


@st.composite
def books(draw: st.DrawFn) -> tuple[list[MarginAccount], list[IdleBalance]]:
    accounts: list[MarginAccount] = []
    for i in range(draw(st.integers(1, 4))):
        eth = draw(st.floats(min_value=1, max_value=20))
        usdc = draw(st.floats(min_value=0, max_value=20_000))
        health = draw(st.floats(min_value=1.05, max_value=3))
        owed = (eth * 3000 * LT + usdc * 0.78) / health
        positions = [eth_collateral(round(eth, 4)), debt(round(owed, 2))]
        if usdc > 1:
            positions.append(usdc_collateral(round(usdc, 2)))
        accounts.append(on_chain(account(f"L{i}", *positions), draw(st.sampled_from(CHAINS))))
    for i in range(draw(st.integers(0, 2))):
        short = draw(st.floats(min_value=0.5, max_value=20))
        margin = draw(st.floats(min_value=0.03, max_value=0.5)) * short * 3000
        hl = cross(f"P{i}", perp(-round(short, 3), 3000, mmr="0.02"), cash(round(short * 3000 + margin, 2)))
        if draw(st.booleans()):
            hl = replace(
                hl, withdrawable=Decimal(str(round(draw(st.floats(min_value=0, max_value=margin)), 2)))
            )
        accounts.append(on_chain(hl, draw(st.sampled_from(CHAINS))))
    pools = [idle(draw(money), chain=c) for c in draw(st.lists(st.sampled_from(CHAINS), max_size=2))]
    return accounts, pools


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books(), st.sampled_from(["max_stressed_chf", "max_chf"]))
def test_advice_respects_caps_never_lowers_a_figure_and_moves_usable_tokens(
    book: tuple[list[MarginAccount], list[IdleBalance]], objective: str
) -> None:
    accounts, pools = book
    pf = portfolio(*accounts)
    advice = advise(
        pf,
        MARKET,
        PARAMS,
        Movable(idle=tuple(pools)),
        objective=objective,  # type: ignore[arg-type]
        reassess=False,
    )
    chf0, stressed0 = engine_figures(pf)
    chf1, stressed1 = engine_figures(advice.portfolio_after)
    assert chf1 >= chf0 - 1e-9 * abs(chf0)
    assert stressed1 >= stressed0 - 1e-9 * abs(stressed0)
    assert chf1 == pytest.approx(advice.chf_after, rel=1e-9)
    assert stressed1 == pytest.approx(advice.stressed_chf_after, rel=1e-9)

    by_key = {a.key: a for a in accounts}
    after = {a.key: a for a in advice.portfolio_after.accounts}
    out: dict[str, float] = {}
    for m in advice.moves:
        if m.token == "USDC":
            out[m.source] = out.get(m.source, 0.0) + m.amount
        assert m.amount > 0 and m.token in ("USDC", "ETH")
        assert m.slow == (m.source_location != m.destination_location)
        assert (m.delay_minutes > 0) == m.slow
        dest = after[m.destination]
        kinds = {p.kind for p in dest.positions if p.token == m.token}
        assert kinds & {PositionKind.COLLATERAL, PositionKind.DEBT, PositionKind.SPOT} or m.action == "repay"
    for label in {pool.label for pool in pools}:
        available = sum(float(pool.amount) for pool in pools if pool.label == label)
        assert out.get(label, 0.0) <= available * (1 + 1e-12)
    for key, amount in out.items():
        if key not in by_key:
            continue
        source = by_key[key]
        if source.withdrawable is not None:
            assert amount <= float(source.withdrawable) * (1 + 1e-12)
        if source.margin_model.name == "lending":
            for token in ("USDC", "ETH"):
                sent = sum(m.amount for m in advice.moves if m.source == key and m.token == token)
                held = sum(
                    float(p.quantity)
                    for p in source.positions
                    if p.token == token and p.kind is PositionKind.COLLATERAL
                )
                assert sent <= held * (1 + 1e-12)
        h = current_state(compile_book(portfolio(after[key]), MARKET)).chf
        floor = 1.5 if source.margin_model.name == "lending" or source.withdrawable is not None else 2.0
        assert h >= floor * (1 - 1e-7)  # the LP solver's feasibility tolerance
