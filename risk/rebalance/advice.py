"""``advise(portfolio, market, params, movable) -> Advice``: the transfers that make the book safest.

Steps:

1. ``risk.rebalance.linear``: the book (with ``movable.new_collateral`` templates) over "now" and the
   stress grid, as resources and requirements that are exactly linear in the moved amounts.
2. ``risk.rebalance.variables``: what may move under each venue's rule; bridges between locations.
3. ``risk.rebalance.lp``: with no ``target_chf``, the max-min program (Dinkelbach-type iteration
   over HiGHS LPs) for the ``objective`` figure, then the least-moved plan reaching that optimum; with
   ``target_chf``, the least-moved plan reaching the target (if no plan does, the best reachable one,
   status ``target_unreachable``). The other figure never gets worse (``risk.rebalance.lp``).
4. ``risk.rebalance.moves``: concrete moves with cumulative figures, the moved portfolio.
5. With ``reassess`` (default), ``risk.engine.assess`` on the portfolio before (unless ``before`` is
   given) and after, with the same seed, for p_liq and every other figure; without it, CHF and stressed
   CHF come from the linear model (exact at the grid's prices) and p_liq is None.

``objective``: ``"max_stressed_chf"`` (the stressed CHF, min over the grid) or ``"max_chf"`` (CHF at
current prices); ``target_chf`` applies to the same figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from risk.assessment import Assessment, RebalanceMove
from risk.engine import assess
from risk.errors import RiskInputError
from risk.model import MarketState, Portfolio
from risk.params import RiskParams
from risk.rebalance.inputs import Movable, RebalanceParams
from risk.rebalance.linear import augment, linear_book
from risk.rebalance.lp import Objective, Solution, build_program
from risk.rebalance.moves import apply_moves, decompose, plan_moves
from risk.rebalance.variables import Problem, collect

__all__ = ["Advice", "AdviceStatus", "advise"]

AdviceStatus = Literal[
    "improved", "already_optimal", "nothing_movable", "target_met", "target_reached", "target_unreachable"
]


@dataclass(frozen=True, eq=False)
class Advice:
    """The plan and the book before and after it.

    ``value_before`` / ``value_after``: the objective figure (stressed CHF or CHF) before and after.
    ``interim_*``: the book while slow (bridged) moves are in transit. ``p_liq_*`` are None without
    ``reassess``. ``notes``: why an account gave nothing, why a target was not reached.
    """

    objective: Objective
    target_chf: float | None
    status: AdviceStatus
    moves: tuple[RebalanceMove, ...]
    chf_before: float
    chf_after: float
    stressed_chf_before: float
    stressed_chf_after: float
    p_liq_before: float | None
    p_liq_after: float | None
    interim_chf: float
    interim_stressed_chf: float
    moved_usd: float
    slow_moves: int
    portfolio_after: Portfolio
    before: Assessment | None
    after: Assessment | None
    lp_solves: int
    notes: tuple[str, ...]

    @property
    def value_before(self) -> float:
        return self.stressed_chf_before if self.objective == "max_stressed_chf" else self.chf_before

    @property
    def value_after(self) -> float:
        return self.stressed_chf_after if self.objective == "max_stressed_chf" else self.chf_after


def advise(
    portfolio: Portfolio,
    market: MarketState,
    params: RiskParams,
    movable: Movable | None = None,
    *,
    target_chf: float | None = None,
    objective: Objective = "max_stressed_chf",
    rebalance: RebalanceParams | None = None,
    before: Assessment | None = None,
    reassess: bool = True,
    rng_seed: int | None = None,
) -> Advice:
    """See the module docstring. Raises ``RiskInputError`` for a bad objective or target."""
    if objective not in ("max_stressed_chf", "max_chf"):
        raise RiskInputError(f"unknown objective {objective!r} (max_stressed_chf or max_chf)")
    if target_chf is not None and not (math.isfinite(target_chf) and target_chf > 0):
        raise RiskInputError(f"target CHF must be a positive number, got {target_chf}")
    movable = movable or Movable()
    rp = rebalance or RebalanceParams()
    lin = linear_book(augment(portfolio, movable.new_collateral), market, params)
    chf0, stressed0 = lin.figures(lin.resources, lin.requirement)
    current = stressed0 if objective == "max_stressed_chf" else chf0
    floor = chf0 if objective == "max_stressed_chf" else stressed0
    problem = collect(lin, movable, rp)
    notes = list(problem.notes)

    solves = 0
    lifted = floor
    for attempt in range(2):
        solution, status, used, found = _solve(
            problem, rp, objective, floor=lifted, current=current, target_chf=target_chf
        )
        solves += used
        if solution is None:
            break
        plan = plan_moves(problem, decompose(problem, solution.tokens), rp)
        floor_after = plan.chf if objective == "max_stressed_chf" else plan.stressed_chf
        shortfall = floor - floor_after
        if shortfall <= 1e-12 * max(1.0, abs(floor)):
            break
        # the solver met the floor only within its feasibility tolerance: lift the floor by twice the
        # shortfall and solve once more; if that still lowers it, propose nothing
        lifted = floor + 2 * shortfall
        solution = None
        if attempt == 1:
            status = "already_optimal"
            found.append("no plan improves the objective without lowering the other figure")
    notes.extend(found)

    if solution is not None:
        moved = apply_moves(portfolio, lin, plan.legs)
        moves = plan.moves
        chf1, stressed1, interim = plan.chf, plan.stressed_chf, (plan.interim_chf, plan.interim_stressed_chf)
    else:
        moved, moves, chf1, stressed1, interim = portfolio, (), chf0, stressed0, (chf0, stressed0)

    after_assessment: Assessment | None = None
    if reassess:
        before = before or assess(portfolio, market, params, rng_seed=rng_seed)
        after_assessment = before if not moves else assess(moved, market, params, rng_seed=rng_seed)
        chf0, stressed0 = before.chf, before.stressed_chf
        chf1, stressed1 = after_assessment.chf, after_assessment.stressed_chf
    return Advice(
        objective=objective,
        target_chf=target_chf,
        status=status,
        moves=moves,
        chf_before=chf0,
        chf_after=chf1,
        stressed_chf_before=stressed0,
        stressed_chf_after=stressed1,
        p_liq_before=None if before is None or not reassess else before.p_liq,
        p_liq_after=None if after_assessment is None else after_assessment.p_liq,
        interim_chf=interim[0],
        interim_stressed_chf=interim[1],
        moved_usd=sum(m.usd for m in moves),
        slow_moves=sum(1 for m in moves if m.slow),
        portfolio_after=moved,
        before=before if reassess else None,
        after=after_assessment,
        lp_solves=solves,
        notes=tuple(notes),
    )


def _solve(
    problem: Problem,
    rp: RebalanceParams,
    objective: Objective,
    *,
    floor: float,
    current: float,
    target_chf: float | None,
) -> tuple[Solution | None, AdviceStatus, int, list[str]]:
    """One round of LPs: least moved to reach ``target_chf`` when given, else (or when out of reach)
    the max-min value then the least moved to reach (a hair under) it; the other figure kept at
    ``floor``. Returns the solution, the status, the LP solves used and notes."""
    notes: list[str] = []
    if not problem.variables:
        return None, "nothing_movable", 0, ["nothing can move: no source and sink of the same token"]
    if target_chf is not None and current >= target_chf:
        return None, "target_met", 0, notes
    program = build_program(problem, rp, objective, floor)
    solves = 0
    solution: Solution | None = None
    status: AdviceStatus = "improved"
    if target_chf is not None:
        goal = min(target_chf, rp.max_chf)
        # aim a hair above the target: amounts are rounded down to 12 digits afterwards
        solution = program.least_moved(goal * (1 + 1e-9)) or program.least_moved(goal)
        solves += 1
        status = "target_reached"
    if solution is None:
        best = program.max_min()
        solves += best.iterations
        status = "target_unreachable" if target_chf is not None else "improved"
        if not best.value > current + rp.tolerance * abs(current):
            solution = None
            status = status if target_chf is not None else "already_optimal"
        else:
            relaxed = current + (best.value - current) * (1 - 1e-9)
            solution = program.least_moved(relaxed) or best
            solves += 1
        if target_chf is not None:
            notes.append(f"target {target_chf:g} is out of reach; the best reachable is {best.value:.6g}")
    return solution, status, solves, notes
