"""The book as a linear function of the moved amounts, per account and scenario.

Read: the portfolio (with a zero-quantity template position for every ``CollateralSlot``, so a new
collateral token has a price path), the market and ``RiskParams``. The scenarios are the stress grid of
``risk.stress.build_grid`` (its ``grid`` kind only: the scenarios the stressed CHF is the minimum over),
preceded by "now" (row 0: current prices, no vol shift). ``risk.margin.evaluate`` gives every account's
``resources[S, A]`` and ``requirement[S, A]`` in USD; ``risk.margin.valuation.scenario_prices`` gives
every position's USD price per unit in each scenario, ``usd[S, N]``.

Why the model is linear, and exact: at fixed scenario prices, moving ``q`` tokens of position ``n``
changes only its own account ``a``:

- lending collateral: ``resources[s, a] += q * usd[s, n] * LT_n`` (withdrawal: ``q < 0``);
- lending debt repaid: ``requirement[s, a] -= q * usd[s, n]``;
- cash (``spot``) of a perp or options account: ``resources[s, a] (= equity) += q * usd[s, n]``; the
  maintenance requirement depends on the perp and option positions only, so it does not move;
- supply that is not collateral: neither.

So the healths after a plan ``x`` are ``(R + G x) / (Q + H x)`` exactly, not a first-order guess.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np

from risk.arrays import Book, FloatArray, compile_book
from risk.margin import evaluate, health_of
from risk.margin.valuation import scenario_prices
from risk.model import LendingParams, MarketState, Portfolio, Position, PositionKind
from risk.params import RiskParams
from risk.rebalance.inputs import CollateralSlot
from risk.stress import build_grid

__all__ = ["LinearBook", "augment", "linear_book"]


@dataclass(frozen=True, eq=False)
class LinearBook:
    """``resources[S, A]``, ``requirement[S, A]`` and ``usd[S, N]`` over now + the stress grid."""

    book: Book
    names: tuple[str, ...]  # scenario names; row 0 is "now"
    resources: FloatArray
    requirement: FloatArray
    usd: FloatArray

    @property
    def n_scenarios(self) -> int:
        return int(self.resources.shape[0])

    def health(self, resources: FloatArray, requirement: FloatArray) -> FloatArray:
        return health_of(resources, requirement)

    def figures(self, resources: FloatArray, requirement: FloatArray) -> tuple[float, float]:
        """``(CHF now, stressed CHF)`` of a book with these resources and requirements.

        A figure within ``1e-9`` of the account's own scale (its largest resources or requirement
        before any move) is 0: an account emptied by the moves has no requirement left, not a
        ratio of two rounding residues."""
        if self.book.n_accounts == 0:
            return float("inf"), float("inf")
        scale = 1e-9 * np.maximum(np.abs(self.resources).max(axis=0), self.requirement.max(axis=0))
        q = np.where(requirement <= scale[None, :], 0.0, requirement)
        r = np.where(np.abs(resources) <= scale[None, :], 0.0, resources)
        h = health_of(r, q)
        per = h.min(axis=1)
        return float(per[0]), float(per.min())


def augment(portfolio: Portfolio, slots: tuple[CollateralSlot, ...]) -> Portfolio:
    """``portfolio`` with a zero-quantity collateral position per slot the account does not hold."""
    by_key: dict[str, list[CollateralSlot]] = {}
    for slot in slots:
        by_key.setdefault(slot.account_key, []).append(slot)
    accounts = []
    for account in portfolio.accounts:
        extra: list[Position] = []
        held = {p.token for p in account.positions if p.kind is PositionKind.COLLATERAL}
        for slot in by_key.get(account.key, []):
            if slot.token in held:
                continue
            held.add(slot.token)
            extra.append(
                Position(
                    token=slot.token,
                    factor=slot.factor,
                    basis_factor=slot.basis_factor,
                    kind=PositionKind.COLLATERAL,
                    quantity=Decimal(0),
                    price=slot.price,
                    lending=LendingParams(
                        ltv=slot.ltv,
                        liquidation_threshold=slot.liquidation_threshold,
                        liquidation_bonus=slot.liquidation_bonus,
                    ),
                )
            )
        accounts.append(replace(account, positions=(*account.positions, *extra)) if extra else account)
    return Portfolio(name=portfolio.name, accounts=tuple(accounts))


def linear_book(portfolio: Portfolio, market: MarketState, params: RiskParams) -> LinearBook:
    book = compile_book(portfolio, market)
    grid = build_grid(book, params)
    keep = np.array([k == "grid" for k in grid.kinds], dtype=bool)
    prices = np.concatenate([book.prices0[None, :], grid.prices[keep]], axis=0)
    vols = np.concatenate([[0.0], grid.vol_shift[keep]])
    ev = evaluate(book, prices, vols)
    sp = scenario_prices(book, prices, vols)
    names = ("now", *(n for n, k in zip(grid.names, keep, strict=True) if k))
    return LinearBook(
        book=book, names=names, resources=ev.resources, requirement=ev.requirement, usd=sp.usd_price
    )
