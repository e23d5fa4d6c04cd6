"""The stress grid (SPAN-like, many factors) and named scenarios (design section 4.4).

Scan range ``R = max(scan_range_floor, scan_sigmas * sigma_driver * sqrt(horizon_hours / 8760))``
with ``sigma_driver`` the driver's annualized vol (``book.vols``); a book without the driver uses
the floor.

Scenarios, every one evaluated in one ``risk.margin.evaluate`` call:

- ``grid`` (21): driver moves ``m`` in ``{0, +-1/3, +-2/3, +-1} * R``, every factor following with
  its beta in log space (``P_f = P0_f (1 + m)^beta_f``, ``Book.market_prices``), each at vol
  ``none``, ``up`` (IV x ``1 + vol_scan_up``) and ``down`` (IV x ``1 - vol_scan_down``);
- ``extreme`` (2): driver moves ``+-extreme_multiple * R`` (the down move capped at -99%), vol
  unchanged; their loss counts at ``extreme_weight`` in the netted requirement (SPAN's 35%);
- ``named``: ``RiskParams.named_scenarios``; each key of ``factor_moves`` is a factor group of
  ``RiskParams.factor_groups`` or a factor; groups are applied in the order listed (a later group
  overrides an earlier one: "crypto -35% / alts -50%" leaves alts at -50%), then single factors;
  factors the book does not hold are ignored; ``vol_move`` is the relative IV shift.

**Stressed CHF** = min over the ``grid`` scenarios of the CHF (the extreme and named scenarios are
reported per scenario and alerted on by name, but do not enter the stressed CHF); ties go to the
first scenario in grid order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from risk.arrays import Book, FloatArray
from risk.assessment import ScenarioResult
from risk.margin import Evaluation, chf, evaluate
from risk.params import RiskParams

__all__ = ["StressGrid", "StressResult", "build_grid", "run_stress", "scan_range", "stress_bounds"]

ScenarioKind = Literal["grid", "extreme", "named"]
_THIRDS = (0.0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1.0, -1.0)


def _range_of(sigma: float, params: RiskParams) -> float:
    return max(params.scan_range_floor, params.scan_sigmas * sigma * math.sqrt(params.horizon_hours / 8760.0))


def scan_range(book: Book, params: RiskParams) -> float:
    sigma = float(book.vols[book.driver]) if book.driver >= 0 else 0.0
    return _range_of(sigma, params)


def stress_bounds(sigma: float, params: RiskParams) -> tuple[float, float]:
    """The span the stress grid covers for a factor of annualized vol ``sigma``: its scan range
    ``R = max(scan_range_floor, scan_sigmas * sigma * sqrt(horizon_hours / 8760))`` out to the
    extreme moves, ``(max(-m R, -0.99), m R)`` with ``m = max(1, extreme_multiple)`` (relative moves;
    the down side capped at -99% as the grid's extreme scenario is)."""
    reach = max(1.0, params.extreme_multiple) * _range_of(sigma, params)
    return max(-reach, -0.99), reach


@dataclass(frozen=True, eq=False)
class StressGrid:
    names: tuple[str, ...]
    kinds: tuple[ScenarioKind, ...]
    prices: FloatArray  # [S, F]
    vol_shift: FloatArray  # [S]
    scan_range: float


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def build_grid(book: Book, params: RiskParams) -> StressGrid:
    r = scan_range(book, params)
    driver = book.factors[book.driver] if book.driver >= 0 else "driver"
    names: list[str] = []
    kinds: list[ScenarioKind] = []
    moves: list[float] = []
    vols: list[float] = []
    for third in _THIRDS:
        for label, v in (("", 0.0), (" vol up", params.vol_scan_up), (" vol down", -params.vol_scan_down)):
            names.append(f"{driver} {_pct(third * r)}{label}")
            kinds.append("grid")
            moves.append(third * r)
            vols.append(v)
    for sign in (1.0, -1.0):
        m = max(sign * params.extreme_multiple * r, -0.99)
        names.append(f"{driver} extreme {_pct(m)}")
        kinds.append("extreme")
        moves.append(m)
        vols.append(0.0)
    prices = (
        book.market_prices(np.array(moves)) if book.driver >= 0 else np.tile(book.prices0, (len(moves), 1))
    )
    rows = [prices]
    for scenario in params.named_scenarios:
        rel = np.zeros(book.n_factors)
        for key, move in scenario.factor_moves.items():
            if key in params.factor_groups:
                for f in params.factor_groups[key]:
                    if f in book.factors:
                        rel[book.factors.index(f)] = move
        for key, move in scenario.factor_moves.items():
            if key not in params.factor_groups and key in book.factors:
                rel[book.factors.index(key)] = move
        rel[book.usd] = 0.0
        rows.append(book.shocked(rel[None, :]))
        names.append(scenario.name)
        kinds.append("named")
        vols.append(scenario.vol_move)
    return StressGrid(
        names=tuple(names),
        kinds=tuple(kinds),
        prices=np.concatenate(rows, axis=0),
        vol_shift=np.asarray(vols, dtype=np.float64),
        scan_range=r,
    )


@dataclass(frozen=True, eq=False)
class StressResult:
    grid: StressGrid
    evaluation: Evaluation
    chf: FloatArray  # [S]
    scenarios: tuple[ScenarioResult, ...]
    stressed_chf: float
    stressed_scenario: str | None


def run_stress(book: Book, grid: StressGrid) -> StressResult:
    evaluation = evaluate(book, grid.prices, grid.vol_shift)
    per = chf(evaluation)
    rel = grid.prices / book.prices0[None, :] - 1.0
    scenarios = tuple(
        ScenarioResult(
            name=grid.names[s],
            shocks={book.factors[f]: float(rel[s, f]) for f in np.flatnonzero(np.abs(rel[s]) > 1e-15)},
            vol_shock=float(grid.vol_shift[s]),
            chf=float(per[s]),
            account_health={k: float(evaluation.health[s, a]) for a, k in enumerate(book.account_keys)},
        )
        for s in range(len(grid.names))
    )
    in_grid = np.array([k == "grid" for k in grid.kinds])
    if book.n_accounts == 0:
        return StressResult(grid, evaluation, per, scenarios, math.inf, None)
    g = np.flatnonzero(in_grid)
    worst = int(g[np.argmin(per[g])])
    return StressResult(grid, evaluation, per, scenarios, float(per[worst]), grid.names[worst])
