"""Time to liquidation at constant prices: closed forms for interest and funding."""

from __future__ import annotations

import math

import pytest

from risk.arrays import compile_book
from risk.model import MarginAccount
from risk.ttl import time_to_liquidation
from tests.unit.risk.builders import account, cash, collateral, cross, debt, market, perp, portfolio

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
