"""The engine's health of one venue account at current prices, for tests that compare it with the
venue's own figure: ``risk.margin.evaluate`` on the account compiled against a market whose factors
all sit at ``factor_price`` (vol 0.6, uncorrelated), its clock at the account's ``as_of``."""

from __future__ import annotations

import numpy as np

from risk.arrays import compile_book
from risk.margin import evaluate
from risk.model import MarginAccount, MarketState, Portfolio

__all__ = ["engine_health"]


def engine_health(account: MarginAccount, *, factor_price: float) -> float:
    """``h`` of ``account`` by the engine at current prices (the positions' own prices)."""
    portfolio = Portfolio("p", (account,))
    factors = tuple(f for f in portfolio.factors if f != "USD")
    market = MarketState(
        factors=factors,
        prices=dict.fromkeys(factors, factor_price),
        vols=dict.fromkeys(factors, 0.6),
        correlation=np.eye(len(factors)),
        betas={},
        as_of=account.as_of.timestamp,
    )
    book = compile_book(portfolio, market)
    return float(evaluate(book, book.prices0[None, :]).health[0, 0])
