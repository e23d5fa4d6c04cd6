"""Deribit golden tests through the pure parsers, on the documented examples (tests/fixtures/deribit)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.assets import AssetMap
from adapters.deribit import (
    PORTFOLIO,
    STANDARD,
    AccountSummary,
    Instrument,
    RpcPosition,
    Ticker,
    futures_mm_fraction,
    parse_result,
    summary_account,
)
from adapters.errors import VenueDataError, VenueUnavailable
from adapters.http import parse_model
from adapters.http_adapter import attribute, redact
from risk.arrays import Book, FloatArray, compile_book
from risk.health import model_drift
from risk.margin import evaluate
from risk.model import AsOf, MarginAccount, MarketState, Portfolio, PositionKind
from tests.unit.adapters.conftest import load_fixture

WALLET = "0x1111111111111111111111111111111111111111"
AS_OF = AsOf(timestamp=datetime(2023, 6, 21, tzinfo=UTC))


def _doc() -> tuple[AccountSummary, list[RpcPosition], dict[str, Instrument], int | None]:
    result, us_out = parse_result(load_fixture("deribit", "get_account_summary_doc.json"), "summary")
    summary = parse_model(AccountSummary, result, venue="deribit", what="summary")
    raw_positions, _ = parse_result(load_fixture("deribit", "get_positions_doc.json"), "positions")
    assert isinstance(raw_positions, list)
    positions = [parse_model(RpcPosition, p, venue="deribit", what="positions") for p in raw_positions]
    inst_raw, _ = parse_result(load_fixture("deribit", "get_instrument_btc_perpetual.json"), "instrument")
    inst = parse_model(Instrument, inst_raw, venue="deribit", what="instrument")
    return summary, positions, {inst.instrument_name: inst}, us_out


def test_doc_example_health_equity_and_inverse_perp(assets: AssetMap) -> None:
    summary, positions, instruments, _ = _doc()
    index = positions[0].index_price
    account = summary_account(
        summary,
        positions,
        instruments,
        {},
        index_usd=index,
        wallet=WALLET,
        deployment="deribit:main",
        assets=assets,
        as_of=AS_OF,
    )
    assert account is not None and account.account_id == "10/BTC"
    # the venue's own identity on its example: margin_balance = equity - options_value
    assert summary.margin_balance == summary.equity - summary.options_value  # type: ignore[operator]
    # h = margin balance / maintenance margin (liquidation when MM reaches the margin balance)
    assert account.venue_health == Decimal("302.62729214") / Decimal("0.8857841")
    # all positions together are worth the account's equity at the index, exactly
    total = sum((p.value for p in account.positions), Decimal(0))
    assert total == Decimal("302.61869214") * Decimal("7466.79")
    perp = next(p for p in account.positions if p.kind is PositionKind.PERP)
    assert perp.quantity == Decimal(50) / Decimal("7440.18") and perp.price == Decimal("7476.65")
    assert perp.perp is not None and perp.perp.oracle_price == Decimal("7466.79")  # mark and index apart
    usd_leg = next(p for p in account.positions if p.token == "USD")
    assert usd_leg.quantity == -50  # the inverse future's fixed USD leg
    # inverse future PnL in USD = N (S/A - 1): independent of how we split it
    assert perp.value + usd_leg.value == Decimal(50) * (Decimal("7476.65") / Decimal("7440.18") - 1)
    # maintenance fraction by the documented rule (1 % + 0.005 % per BTC of size), at the index, of
    # the inverse future's constant USD notional |N| = 50
    coins = Decimal(50) / Decimal("7476.65")
    assert futures_mm_fraction("BTC", coins) == Decimal("0.01") + Decimal("0.00005") * coins
    assert perp.perp.requirement_basis == "entry_notional"
    assert perp.perp.margin_tiers[0].maintenance_fraction == (
        futures_mm_fraction("BTC", coins) * Decimal("7466.79") / Decimal("7476.65")
    )
    assert account.margin_model == STANDARD  # margin_model "segregated_sm"
    assert account.raw["greeks"]["BTC-PERPETUAL"]["delta"] == "0.006687487"


def test_doc_example_is_an_old_shape_without_gamma_for_futures() -> None:
    _, positions, _, _ = _doc()
    assert positions[0].gamma is None and positions[0].delta is not None


@pytest.mark.parametrize("drop", ["equity", "maintenance_margin", "margin_balance", "currency"])
def test_missing_summary_field_names_it(drop: str) -> None:
    raw = load_fixture("deribit", "get_account_summary_doc.json")["result"]
    del raw[drop]
    with pytest.raises(VenueDataError, match=drop):
        parse_model(AccountSummary, raw, venue="deribit", what="get_account_summary")


def test_a_string_where_a_number_is_documented_is_rejected() -> None:
    raw = load_fixture("deribit", "get_positions_doc.json")["result"][0]
    raw["size"] = "50"
    with pytest.raises(VenueDataError, match="size"):
        parse_model(RpcPosition, raw, venue="deribit", what="get_positions")


def test_size_against_direction_is_a_data_error(assets: AssetMap) -> None:
    summary, positions, instruments, _ = _doc()
    bad = [positions[0].model_copy(update={"direction": "sell"})]
    with pytest.raises(VenueDataError, match="direction"):
        summary_account(
            summary,
            bad,
            instruments,
            {},
            index_usd=Decimal(7466),
            wallet=WALLET,
            deployment="deribit:main",
            assets=assets,
            as_of=AS_OF,
        )


def test_rpc_error_is_unavailable_with_the_message() -> None:
    with pytest.raises(VenueUnavailable, match="13009: unauthorized"):
        parse_result({"jsonrpc": "2.0", "error": {"code": 13009, "message": "unauthorized"}}, "summary")


def test_empty_currency_is_none(assets: AssetMap) -> None:
    raw: dict[str, Any] = copy.deepcopy(load_fixture("deribit", "get_account_summary_doc.json")["result"])
    for key in (
        "equity",
        "balance",
        "margin_balance",
        "maintenance_margin",
        "initial_margin",
        "available_funds",
    ):
        raw[key] = 0
    summary = parse_model(AccountSummary, raw, venue="deribit", what="summary")
    assert (
        summary_account(
            summary,
            [],
            {},
            {},
            index_usd=Decimal(1),
            wallet=WALLET,
            deployment="deribit:main",
            assets=assets,
            as_of=AS_OF,
        )
        is None
    )


def test_attribution() -> None:
    a, b = "0x" + "a" * 40, "0x" + "b" * 40
    assert attribute([a, b], {b: ("user",)}, ["10", "user"]) == (b, None)
    owner, warning = attribute([a, b], {}, ["10", "user"])
    assert owner == a and warning is not None and "attributed" in warning
    assert attribute([a, b], {b: ("x",)}, []) == (b, None)


@given(st.text(min_size=6, max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_redact_removes_every_occurrence(secret: str, before: str, after: str) -> None:
    text = redact(f"{before}{secret}{after}{secret}", [secret])
    assert secret not in text or secret in "***"


def _book(account: MarginAccount, prices: dict[str, float]) -> tuple[Book, FloatArray]:
    portfolio = Portfolio("p", (account,))
    factors = tuple(f for f in portfolio.factors if f != "USD")
    market = MarketState(
        factors=factors,
        prices={f: prices.get(f, 1.0) for f in factors},
        vols={f: 0.6 for f in factors},
        correlation=np.eye(len(factors)),
        betas={},
        as_of=AS_OF.timestamp,
    )
    book = compile_book(portfolio, market)
    return book, book.prices0[None, :].copy()


def test_doc_example_drift_is_reported(assets: AssetMap) -> None:
    """The summary and the positions are two unrelated documentation examples (2023 and 2019): the
    summary's 0.8857841 BTC of maintenance is not what the one 50 USD future requires, and that
    future's own 0.000143783 BTC (2.15 % of its size: a 2019 rule) is not today's 1 % + 0.005 %/BTC.
    The engine follows the documented rule; the difference is reported as model drift."""
    summary, positions, instruments, _ = _doc()
    index = positions[0].index_price
    account = summary_account(
        summary, positions, instruments, {}, index_usd=index, wallet=WALLET, deployment="deribit:main",
        assets=assets, as_of=AS_OF,
    )  # fmt: skip
    assert account is not None and account.venue_health is not None
    book, prices = _book(account, {"BTC": float(index)})
    ev = evaluate(book, prices)
    coins = 50 / 7476.65
    rule_mm_usd = (0.01 + 0.00005 * coins) * coins * 7466.79
    assert ev.requirement[0, 0] == pytest.approx(rule_mm_usd, rel=1e-12)
    # the positions example holds no option, so the engine's margin balance (equity less options'
    # value) is the equity, not the summary's margin_balance (which leaves out -0.0086 BTC of options)
    assert ev.resources[0, 0] == pytest.approx(302.61869214 * 7466.79, rel=1e-12)
    drift = model_drift(float(ev.health[0, 0]), account.venue_health)
    assert drift is not None and drift > 1000 * float(account.venue_health)  # far apart, and reported
    assert pytest.approx(0.0215, rel=1e-3) == 0.000143783 / (50 / 7476.65)  # the 2019 example's rate


def _constructed() -> tuple[AccountSummary, list[RpcPosition], dict[str, Instrument], dict[str, Ticker]]:
    """A BTC account built here by the documented rules (independent Decimal arithmetic): 2 BTC; short
    3 calls at 0.02 BTC, short 2 puts at 0.01, long 1 call at 0.05; an inverse perp of 30,000 USD
    bought at 58,000; index 60,000, perp mark 60,300."""
    index, mark = Decimal(60000), Decimal(60300)
    options = {  # name: (size, mark in BTC, option_type, strike)
        "BTC-27DEC30-70000-C": (Decimal(-3), Decimal("0.02"), "call", 70000),
        "BTC-27DEC30-50000-P": (Decimal(-2), Decimal("0.01"), "put", 50000),
        "BTC-27DEC30-80000-C": (Decimal(1), Decimal("0.05"), "call", 80000),
    }
    n, a = Decimal(30000), Decimal(58000)
    coins = n / mark
    mm = (Decimal("0.075") + Decimal("0.02")) * 3 + (
        max(Decimal("0.075"), Decimal("0.075") * Decimal("0.01")) + Decimal("0.01")
    ) * 2
    mm += (Decimal("0.01") + Decimal("0.00005") * coins) * coins
    options_value = sum((size * m for size, m, _, _ in options.values()), Decimal(0))
    equity = Decimal(2) + n * (1 / a - 1 / mark) + options_value
    summary = AccountSummary.model_validate(
        {
            "currency": "BTC", "equity": float(equity), "balance": 2, "margin_balance": float(equity - options_value),
            "initial_margin": float(mm * Decimal("1.3")), "maintenance_margin": float(mm), "available_funds": 1,
            "options_value": float(options_value), "margin_model": "segregated_sm", "id": 7,
        }
    )  # fmt: skip
    positions = [
        RpcPosition.model_validate(
            {"instrument_name": name, "kind": "option", "direction": "sell" if size < 0 else "buy",
             "size": float(size), "average_price": 0.01, "mark_price": float(m), "index_price": float(index),
             "maintenance_margin": 0, "initial_margin": 0}
        )
        for name, (size, m, _, _) in options.items()
    ]  # fmt: skip
    positions.append(
        RpcPosition.model_validate(
            {"instrument_name": "BTC-PERPETUAL", "kind": "future", "direction": "buy", "size": 30000,
             "average_price": 58000, "mark_price": float(mark), "index_price": float(index),
             "maintenance_margin": 0, "initial_margin": 0}
        )
    )  # fmt: skip
    instruments = {
        name: Instrument.model_validate(
            {"instrument_name": name, "kind": "option", "base_currency": "BTC", "settlement_currency": "BTC",
             "instrument_type": "reversed", "expiration_timestamp": 1924588800000, "contract_size": 1,
             "strike": strike, "option_type": kind}
        )
        for name, (_, _, kind, strike) in options.items()
    }  # fmt: skip
    instruments["BTC-PERPETUAL"] = Instrument.model_validate(
        load_fixture("deribit", "get_instrument_btc_perpetual.json")["result"]
    )
    tickers = {
        name: Ticker.model_validate(
            {"instrument_name": name, "timestamp": 1, "mark_price": float(m), "index_price": float(index),
             "mark_iv": 60, "underlying_price": float(index)}
        )
        for name, (_, m, _, _) in options.items()
    }  # fmt: skip
    return summary, positions, instruments, tickers


def test_engine_health_equals_the_venue_figure_on_a_rule_following_account(assets: AssetMap) -> None:
    summary, positions, instruments, tickers = _constructed()
    account = summary_account(
        summary, positions, instruments, tickers, index_usd=Decimal(60000), wallet=WALLET,
        deployment="deribit:main", assets=assets, as_of=AS_OF,
    )  # fmt: skip
    assert account is not None and account.venue_health is not None and account.margin_model == STANDARD
    book, prices = _book(account, {"BTC": 60000.0})
    ev = evaluate(book, prices)
    assert ev.requirement[0, 0] == pytest.approx(float(summary.maintenance_margin) * 60000, rel=1e-12)
    assert ev.health[0, 0] == pytest.approx(float(account.venue_health), rel=1e-9)
    # a long option is no requirement and no margin: dropping it changes neither figure
    fewer = [p for p in positions if p.instrument_name != "BTC-27DEC30-80000-C"]
    lighter = summary.model_copy(update={"equity": summary.equity - Decimal("0.05")})
    other = summary_account(
        lighter, fewer, instruments, tickers, index_usd=Decimal(60000), wallet=WALLET,
        deployment="deribit:main", assets=assets, as_of=AS_OF,
    )  # fmt: skip
    assert other is not None
    ev2 = evaluate(*_book(other, {"BTC": 60000.0}))
    assert ev2.requirement[0, 0] == pytest.approx(ev.requirement[0, 0], rel=1e-12)
    assert ev2.resources[0, 0] == pytest.approx(ev.resources[0, 0], rel=1e-12)


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        ({"portfolio_margining_enabled": True}, PORTFOLIO),
        ({"margin_model": "cross_pm"}, PORTFOLIO),
        ({"margin_model": "cross_sm"}, STANDARD),
        ({"margin_model": None, "portfolio_margining_enabled": None}, STANDARD),
    ],
)
def test_margin_mode_chooses_the_model(assets: AssetMap, update: dict[str, Any], expected: object) -> None:
    summary, positions, instruments, _ = _doc()
    account = summary_account(
        summary.model_copy(update=update), positions, instruments, {}, index_usd=Decimal(7466),
        wallet=WALLET, deployment="deribit:main", assets=assets, as_of=AS_OF,
    )  # fmt: skip
    assert account is not None and account.margin_model == expected
