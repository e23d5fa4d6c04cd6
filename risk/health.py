"""Account health at current prices, the composite health factor (CHF) and model drift.

Reads the ``risk.margin.evaluate`` figures at ``book.prices0`` (one scenario: now).
CHF = min over the compiled accounts of ``h`` (design section 4.2); the account that sets it is the
first in ``book.account_keys`` order (sorted by key) among those at the minimum, so the answer does
not depend on the order of the portfolio's accounts. No account: CHF ``+inf`` and no account.
Model drift (section 4.1) = ``h - venue_health``; both infinite gives 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from risk.arrays import Book, FloatArray
from risk.margin import Evaluation, evaluate

__all__ = ["CurrentState", "composite", "current_state", "drift_exceeds", "model_drift"]


@dataclass(frozen=True, eq=False)
class CurrentState:
    """The book at current prices: the evaluation (``S = 1``), CHF and the account that sets it."""

    evaluation: Evaluation
    chf: float
    chf_account: str | None

    @property
    def health(self) -> FloatArray:
        out: FloatArray = self.evaluation.health[0]
        return out


def composite(book: Book, health: FloatArray) -> tuple[float, str | None]:
    """``(CHF, account key)`` for one scenario's ``health[A]``."""
    if health.shape[0] == 0:
        return math.inf, None
    i = int(np.argmin(health))
    return float(health[i]), book.account_keys[i]


def current_state(book: Book) -> CurrentState:
    evaluation = evaluate(book, book.prices0[None, :])
    value, key = composite(book, evaluation.health[0])
    return CurrentState(evaluation=evaluation, chf=value, chf_account=key)


def model_drift(health: float, venue_health: Decimal | None) -> float | None:
    """``health - venue_health`` (``None`` when the venue publishes no figure; 0 when both are
    ``+inf``; ``+-inf`` when only one side is infinite)."""
    if venue_health is None:
        return None
    venue = float(venue_health)
    if math.isinf(health) and math.isinf(venue) and (health > 0) == (venue > 0):
        return 0.0
    return health - venue


def drift_exceeds(drift: float | None, venue_health: Decimal | None, tolerance: float) -> bool:
    """True when ``|drift| > tolerance * |venue_health|`` (relative tolerance; any infinite drift)."""
    if drift is None or venue_health is None:
        return False
    if math.isinf(drift):
        return True
    venue = abs(float(venue_health))
    if math.isinf(venue):
        return False
    return abs(drift) > tolerance * venue
