"""Cross-margin views: what the book would need if it were one account (design section 4.6).

All in USD, at current prices unless said otherwise:

- **pooled HF** = ``sum_a resources_a / sum_a requirement_a`` (collateral free to move between
  venues; each venue's own resources and requirement, ``risk.margin``); ``+inf`` when the sum of
  requirements is 0.
- **portfolio equity** ``E0 = sum_a equity_a`` (every position's signed value, options at mark).
- **netted requirement** = the worst loss of the whole book over the stress grid, the way a
  portfolio-margin clearing house margins it (SPAN scan risk):
  ``max(0, max over "grid" scenarios of (E0 - E_s), extreme_weight * max over "extreme" scenarios
  of (E0 - E_s))`` with ``E_s`` the book's equity in scenario ``s`` (``risk.stress``; named
  scenarios do not count).
- **netted HF** = ``E0 / netted requirement`` (``+inf`` when the netted requirement is 0).
- **fragmentation cost** = ``sum_a requirement_a - netted requirement``: the capital the venues
  lock up beyond what the netted book would need (negative when the silos ask for less than the
  netted scan risk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from risk.margin import Evaluation
from risk.params import RiskParams
from risk.stress import StressResult

__all__ = ["CrossView", "cross_view"]


@dataclass(frozen=True, slots=True)
class CrossView:
    pooled_hf: float
    portfolio_equity_usd: float
    netted_requirement_usd: float
    netted_hf: float
    venue_requirement_usd: float
    fragmentation_cost_usd: float


def cross_view(current: Evaluation, stress: StressResult, params: RiskParams) -> CrossView:
    resources = float(current.resources[0].sum())
    requirement = float(current.requirement[0].sum())
    pooled = resources / requirement if requirement > 0 else math.inf
    e0 = float(current.equity[0].sum())
    loss = e0 - stress.evaluation.equity.sum(axis=1)  # [S]
    kinds = np.array(stress.grid.kinds)
    grid_loss = float(loss[kinds == "grid"].max(initial=0.0))
    extreme_loss = params.extreme_weight * float(loss[kinds == "extreme"].max(initial=0.0))
    netted = max(0.0, grid_loss, extreme_loss)
    return CrossView(
        pooled_hf=pooled,
        portfolio_equity_usd=e0,
        netted_requirement_usd=netted,
        netted_hf=e0 / netted if netted > 0 else math.inf,
        venue_requirement_usd=requirement,
        fragmentation_cost_usd=requirement - netted,
    )
