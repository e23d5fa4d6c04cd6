"""Time to liquidation at constant prices (design section 4.10), in days per account.

What is read from where: positions and their ``interest_rate`` (``risk.model.Position``: annual,
continuously compounded), perps' ``funding_rate_hourly`` (``PerpParams``, + = longs pay shorts), and
current resources/requirements from ``risk.margin.evaluate`` at ``book.prices0``.

Formulas
--------
* lending: ``h(t) = sum_c v_c LT_c e^{s_c t} / sum_d |v_d| e^{b_d t}`` (collateral grows at its
  supply rate, debt at its borrow rate); the first ``t`` with ``h(t) = 1`` is found by bracketing on
  a geometric grid and Brent's method. A debt without a rate makes the figure unknown (``None``); a
  collateral without a rate is taken as earning nothing (conservative).
* perps and options accounts: requirement constant (prices constant), equity drifts linearly by
  ``- sum q * mark_usd * funding_rate_hourly * 24`` per day (a long pays positive funding) plus the
  options' theta per day (``risk.options``, Black-76 at the marks); ``t = (resources - requirement)
  / -drift`` when the drift is negative. Theta is taken at today's value (a linear approximation
  that ignores its growth toward expiry and the time decay of the scenario requirement).

``0.0`` means already liquidatable (``h < 1``); ``None`` means never at constant prices (within
``HORIZON_DAYS``) or unknown (a missing borrow rate).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from risk.arrays import KIND_COLLATERAL, KIND_DEBT, MODEL_LENDING, Book, FloatArray
from risk.greeks import book_greeks
from risk.margin import evaluate
from risk.model import PositionKind

__all__ = ["HORIZON_DAYS", "time_to_liquidation"]

HORIZON_DAYS = 100.0 * 365.0
"""Beyond this, the account is reported as never liquidating at constant prices."""
_DAYS_PER_YEAR = 365.0


def _position_rates(book: Book) -> tuple[FloatArray, FloatArray]:
    """(annual interest rate per position, NaN when absent; hourly funding rate per position)."""
    rates: list[float] = []
    funding: list[float] = []
    for account in book.accounts:
        for p in account.positions:
            rates.append(math.nan if p.interest_rate is None else float(p.interest_rate))
            is_perp = p.kind is PositionKind.PERP and p.perp is not None
            funding.append(float(p.perp.funding_rate_hourly) if is_perp and p.perp else 0.0)
    return np.asarray(rates, dtype=np.float64), np.asarray(funding, dtype=np.float64)


def _lending_days(
    coll: FloatArray, coll_rate: FloatArray, debt: FloatArray, debt_rate: FloatArray
) -> float | None:
    if debt.size == 0 or not debt.any():
        return None
    if np.isnan(debt_rate).any():
        return None
    s = np.nan_to_num(coll_rate, nan=0.0)

    def excess(days: float) -> float:
        t = days / _DAYS_PER_YEAR
        return float(np.log((coll * np.exp(s * t)).sum()) - np.log((debt * np.exp(debt_rate * t)).sum()))

    if excess(0.0) < 0:
        return 0.0
    grid = np.concatenate([[0.0], np.geomspace(1.0 / 24.0, HORIZON_DAYS, 64)])
    previous = grid[0]
    for days in grid[1:]:
        if excess(float(days)) < 0:
            return float(brentq(excess, previous, float(days), xtol=1e-9, rtol=1e-12))
        previous = float(days)
    return None


def time_to_liquidation(book: Book) -> dict[str, float | None]:
    """Days until each compiled account's health reaches 1 at constant prices (see the module doc)."""
    now = evaluate(book, book.prices0[None, :])
    rates, funding = _position_rates(book)
    value = book.quantity * book.price0_usd
    greeks = book_greeks(book).accounts
    out: dict[str, float | None] = {}
    for a, key in enumerate(book.account_keys):
        mine = book.pos_account == a
        if book.model[a] == MODEL_LENDING:
            coll = mine & (book.kind == KIND_COLLATERAL) & (book.lt > 0)
            debt = mine & (book.kind == KIND_DEBT)
            out[key] = _lending_days(
                value[coll] * book.lt[coll], rates[coll], np.abs(value[debt]), rates[debt]
            )
            continue
        resources = float(now.resources[0, a])
        requirement = float(now.requirement[0, a])
        if requirement <= 0:
            out[key] = None
            continue
        if resources < requirement:
            out[key] = 0.0
            continue
        drift = -float((value[mine] * funding[mine]).sum()) * 24.0 + greeks[key].theta
        days = (resources - requirement) / -drift if drift < 0 else math.inf
        out[key] = days if days <= HORIZON_DAYS else None
    return out
