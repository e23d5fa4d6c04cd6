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
* perps accounts without options: requirement constant (prices constant), equity drifts linearly
  by ``- sum q * mark_usd * funding_rate_hourly * 24`` per day (a long pays positive funding);
  ``t = (resources - requirement) / -drift`` when the drift is negative.
* accounts holding options: the account is revalued at later dates with prices and implied vols
  held: every option's time to expiry shortened by ``t`` (down to 0: intrinsic value) and its mark
  moved by ``(B76(U0, tau - t) - B76(U0, tau)) * size`` (``risk.margin.pricing.black76``), the
  requirement recomputed by the account's own margin model at that date (``risk.margin.evaluate``),
  plus the funding drift above; ``g(t) = resources(t) - requirement(t) + drift * t`` is scanned on a
  geometric grid up to the last expiry (and at every expiry) and its first root found by Brent's
  method; after the last expiry only the funding drift moves ``g``. (Extrapolating today's theta
  linearly would let a long option lose more than it is worth, e.g. "liquidates in 68 days" for
  cash plus long puts that expire in 30.)

``0.0`` means already liquidatable (``h < 1``); ``None`` means never at constant prices (within
``HORIZON_DAYS``) or unknown (a missing borrow rate).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy.optimize import brentq

from risk.arrays import (
    KIND_COLLATERAL,
    KIND_DEBT,
    MODEL_LENDING,
    Book,
    FloatArray,
)
from risk.margin import evaluate
from risk.margin.pricing import black76
from risk.model import PositionKind
from risk.subbook import repeat_account, select_accounts

__all__ = ["HORIZON_DAYS", "time_to_liquidation"]

HORIZON_DAYS = 100.0 * 365.0
"""Beyond this, the account is reported as never liquidating at constant prices."""
_DAYS_PER_YEAR = 365.0
_OPTION_GRID_POINTS = 24


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


def _aged(book: Book, days: FloatArray) -> Book:
    """``book`` with every option ``days`` (one entry per option) later at the same prices and IVs:
    time to expiry shortened (down to 0) and the mark moved by the Black-76 change over that time."""
    years = book.opt_expiry
    later = np.maximum(years - days / _DAYS_PER_YEAR, 0.0)
    decay = black76(book.opt_underlying, book.opt_strike, later, book.opt_iv, book.opt_sign) - black76(
        book.opt_underlying, book.opt_strike, years, book.opt_iv, book.opt_sign
    )
    price0 = book.price0.copy()
    price0[book.opt_pos] = price0[book.opt_pos] + decay * book.opt_size
    quote = book.prices0[book.quote_idx[book.pos_account[book.opt_pos]]]
    price0_usd = book.price0_usd.copy()
    price0_usd[book.opt_pos] = price0[book.opt_pos] * quote
    return replace(book, opt_expiry=later, price0=price0, price0_usd=price0_usd)


def _options_days(sub: Book, drift: float) -> float | None:
    """First root of ``g(t) = resources(t) - requirement(t) + drift * t`` (days) for the single
    account of ``sub`` (see the module doc), ``None`` when there is none within ``HORIZON_DAYS``.
    The scan evaluates every grid date at once (``risk.subbook.repeat_account``: one copy of the
    account per date)."""
    n_opt = sub.opt_pos.shape[0]

    def g(days: FloatArray) -> FloatArray:
        book = _aged(repeat_account(sub, days.shape[0]), np.repeat(days, n_opt))
        ev = evaluate(book, sub.prices0[None, :])
        resources = ev.resources[0] + drift * days
        requirement = ev.requirement[0]
        # no requirement: never liquidated (h = +inf), as risk.distance treats it
        out: FloatArray = np.where(
            requirement > 0, resources - requirement, np.maximum(np.abs(resources), 1.0)
        )
        return out

    last = float(sub.opt_expiry.max()) * _DAYS_PER_YEAR
    grid = np.zeros(1)
    if last > 0:
        expiries = sub.opt_expiry[sub.opt_expiry > 0] * _DAYS_PER_YEAR
        start = min(1.0 / 24.0, last)
        grid = np.unique(np.concatenate([grid, np.geomspace(start, last, _OPTION_GRID_POINTS), expiries]))
    values = g(grid)
    below = np.flatnonzero(values < 0)
    if below.size:
        k = int(below[0])
        if k == 0:
            return 0.0
        return float(
            brentq(
                lambda d: float(g(np.array([d]))[0]),
                float(grid[k - 1]),
                float(grid[k]),
                xtol=1e-9,
                rtol=1e-12,
            )
        )
    # after the last expiry options are at intrinsic value: only funding moves g
    if drift >= 0:
        return None
    days = float(grid[-1]) + float(values[-1]) / -drift
    return days if days <= HORIZON_DAYS else None


def time_to_liquidation(book: Book) -> dict[str, float | None]:
    """Days until each compiled account's health reaches 1 at constant prices (see the module doc)."""
    now = evaluate(book, book.prices0[None, :])
    rates, funding = _position_rates(book)
    value = book.quantity * book.price0_usd
    with_options = np.zeros(book.n_accounts, dtype=bool)
    with_options[book.pos_account[book.opt_pos]] = True
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
        drift = -float((value[mine] * funding[mine]).sum()) * 24.0
        if with_options[a]:
            out[key] = _options_days(select_accounts(book, np.array([a], dtype=np.int64)), drift)
            continue
        if requirement <= 0:
            out[key] = None
            continue
        if resources < requirement:
            out[key] = 0.0
            continue
        days = (resources - requirement) / -drift if drift < 0 else math.inf
        out[key] = days if days <= HORIZON_DAYS else None
    return out
