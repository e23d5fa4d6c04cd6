"""Time to liquidation at constant prices: closed forms for interest and funding, and Black-76 by hand
for accounts holding options (revalued at later dates, not today's theta extrapolated)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from risk.arrays import compile_book
from risk.margin import derive_pm_model, evaluate
from risk.model import MarginAccount, StandardMarginModel
from risk.subbook import repeat_account
from risk.ttl import time_to_liquidation
from tests.unit.risk.builders import (
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

MARKET = market({"ETH": 3000.0})


def lending(owed: float, borrow: str | None, supply: str | None = None) -> MarginAccount:
    return account("a", collateral(10, 3000, lt="0.8", rate=supply), debt(owed, rate=borrow))


def ttl(acct: MarginAccount) -> float | None:
    return time_to_liquidation(compile_book(portfolio(acct), MARKET))[acct.key]


def test_lending_closed_form() -> None:
    # h0 = 24000 / 20000 = 1.2; h(t) = 1.2 e^{(s - b) t}
    assert ttl(lending(20000, "0.05")) == pytest.approx(math.log(1.2) / 0.05 * 365, rel=1e-9)
    assert ttl(lending(20000, "0.08", "0.03")) == pytest.approx(math.log(1.2) / 0.05 * 365, rel=1e-9)


def test_lending_unknown_rate_never_and_already() -> None:
    assert ttl(lending(20000, None)) is None
    assert ttl(lending(20000, "0.02", "0.03")) is None  # collateral outgrows debt
    assert ttl(lending(25000, "0.05")) == 0.0


def short(funding: str, margin: float = 34000) -> MarginAccount:
    return cross("h", perp(-10, 3000, mmr="0.02", funding=funding), cash(margin))


def test_perp_funding() -> None:
    # equity 34000 - 30000 = 4000, maintenance 600: 3400 of room; a short pays negative funding:
    # 30000 * 0.0001 * 24 = 72 USD a day
    assert ttl(short("-0.0001")) == pytest.approx(3400 / 72, rel=1e-9)
    assert ttl(short("0.0001")) is None  # the short receives
    assert ttl(short("-0.0001", margin=30100)) == 0.0


# --- accounts holding options: revalued at later dates, not today's theta extrapolated -------------

_N = NormalDist()


def _atm_call(spot: float, years: float, iv: float) -> float:
    """Black-76 at the money: ``S (2 N(iv sqrt(T) / 2) - 1)``."""
    return spot * (2.0 * _N.cdf(iv * math.sqrt(years) / 2.0) - 1.0)


def long_calls_on_perp(cash_usd: float, funding: str = "0") -> MarginAccount:
    """Standard margin (Aevo): 10 long ATM calls (30 days, IV 0.6; long options need no margin) and
    a long 1 ETH perp at 5% maintenance (150 USD) on ``cash_usd`` of margin (the cash leg is
    ``cash_usd - 3000``: a perp counts at quantity x mark)."""
    mark = _atm_call(3000.0, 30 / 365, 0.6)
    return account(
        "o",
        option(10, mark, 3000, 30, "call", "0.6"),
        perp(1, 3000, mmr="0.05", funding=funding),
        cash(cash_usd - 3000),
        model=StandardMarginModel(),
        venue="aevo",
    )


def test_long_options_lose_at_most_their_value_before_expiry() -> None:
    # g(t) = 100 + 10 C(t) - 150 = 0  <=>  C(t) = 5  <=>  2 N(0.3 sqrt(tau)) - 1 = 5 / 3000
    tau = (2.0 * _N.inv_cdf((1.0 + 5.0 / 3000.0) / 2.0) / 0.6) ** 2
    assert ttl(long_calls_on_perp(100)) == pytest.approx(30.0 - tau * 365.0, rel=1e-6)
    # 500 - 150 of room is more than the calls are worth (10 x 205.9): never at constant prices
    assert ttl(long_calls_on_perp(500)) is None


def test_funding_after_the_options_expire() -> None:
    # the long perp pays 3000 * 0.0001 * 24 = 7.2 USD a day; the ATM calls expire worthless, so
    # the 500 - 150 of room lasts 350 / 7.2 days whatever the calls did on the way
    assert ttl(long_calls_on_perp(500, funding="0.0001")) == pytest.approx(350.0 / 7.2, rel=1e-6)


def test_repeated_account_evaluates_like_the_account() -> None:
    acct = account(
        "d",
        option(10, 80, 2600, 30, "put", "0.72"),
        option(-2, 150, 3200, 60, "call", "0.65"),
        perp(-1, 3000, mmr="0.03"),
        cash(5000),
        model=derive_pm_model(),
        venue="derive",
    )
    book = compile_book(portfolio(acct), MARKET)
    one = evaluate(book, book.prices0[None, :])
    three = evaluate(repeat_account(book, 3), book.prices0[None, :])
    np.testing.assert_allclose(three.resources[0], np.repeat(one.resources[0], 3), rtol=1e-12)
    np.testing.assert_allclose(three.requirement[0], np.repeat(one.requirement[0], 3), rtol=1e-12)


def test_cash_and_long_puts_never_liquidate_at_constant_prices() -> None:
    # config/examples/portfolio.toml's Derive leg: 2,000 USDC and 10 long OTM puts. At constant
    # prices the puts expire worthless and the cash stays: extrapolating today's theta said ~68 days
    acct = account(
        "p",
        option(10, 82.5637, 2600, 29.8333, "put", "0.72"),
        cash(2000),
        model=derive_pm_model(),
        venue="derive",
    )
    assert ttl(acct) is None
