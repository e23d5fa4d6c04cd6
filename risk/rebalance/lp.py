"""The rebalancing linear programs (``scipy.optimize.linprog``, method ``"highs"``).

Notation (``risk.rebalance.linear``, ``risk.rebalance.variables``): ``x >= 0`` the variables (tokens,
scaled to ``usd0 / K`` with ``K`` the largest requirement now, so every column is O(1)); for each
account ``a`` and scenario ``s`` with a requirement ``Q[s, a] > 0`` a *row* ``i`` with
``N_i(x) = (R[s, a] + g_i x) / Q[s, a]`` and ``D_i(x) = 1 + h_i x / Q[s, a]`` (normalized so
``N_i / D_i`` is the health). Rows with ``Q = 0`` have infinite health whatever is moved (moves never
add a requirement) and are dropped.

Every program has the same side constraints:
    - caps ``x <= cap``; conservation per (token, location): sinks + bridges out = sources + bridges in;
    - each source account's withdrawal floor (``AccountRule``) at current prices;
    - **no figure gets worse**: with objective ``max_stressed_chf``, every account's health *now*
      stays ``>= CHF before``; with ``max_chf``, every account's health in every grid scenario stays
      ``>= stressed CHF before``. (``x = 0`` satisfies all of them, so every program is feasible.)

**Max-min** (``maximize t = min over objective rows of N_i / D_i``): a generalized fractional program,
solved by the Dinkelbach-type method of Crouzeix, Ferland and Schaible (1985), not by bisection: from
``x_k`` with value ``t_k``, solve the LP ``max z s.t. N_i(x) - t_k D_i(x) >= z D_i(x_k)`` (plus the
side constraints), set ``t_{k+1} = min_i N_i(x_{k+1}) / D_i(x_{k+1})``. ``t_k`` increases and converges
to the optimum (superlinearly near it); it stops when ``z <= tolerance * max(1, t_k)``. Without
repayments the denominators are constants and the first LP is already exact.

**Least moved** (``min cost x s.t. N_i(x) - T D_i(x) >= 0``): linear for a fixed target ``T``;
cost = USD leaving a source (+ ``bridge_cost`` per bridged USD). Run at the user's target, or at the
max-min optimum (slightly relaxed) so that the plan is the smallest one reaching it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linprog

from risk.arrays import FloatArray
from risk.errors import RiskInputError
from risk.rebalance.inputs import RebalanceParams
from risk.rebalance.variables import SINKS, SOURCES, Problem

__all__ = ["Objective", "Program", "Solution", "build_program"]

Objective = Literal["max_stressed_chf", "max_chf"]


@dataclass(frozen=True, slots=True)
class Solution:
    tokens: FloatArray  # per variable
    value: float  # the objective figure the plan reaches (linear model)
    iterations: int  # LPs solved


@dataclass(frozen=True, eq=False)
class Program:
    problem: Problem
    params: RebalanceParams
    scale: FloatArray  # tokens per unit of x
    n_: FloatArray  # [rows] R / Q
    g: FloatArray  # [rows, V]
    h: FloatArray  # [rows, V]
    objective_rows: FloatArray  # bool mask over rows, as float for speed
    floor_rows: FloatArray
    floor: float
    side_a: FloatArray  # extra A_ub rows (withdrawal floors, borrow rules)
    side_b: FloatArray
    a_eq: FloatArray
    bounds: list[tuple[float, float | None]]
    cost: FloatArray

    def ratios(self, x: FloatArray) -> FloatArray:
        num = self.n_ + self.g @ x
        den = 1.0 + self.h @ x
        with np.errstate(divide="ignore", invalid="ignore"):
            out: FloatArray = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), math.inf)
        return out

    def value(self, x: FloatArray) -> float:
        mask = self.objective_rows > 0
        if not mask.any():
            return math.inf
        return float(self.ratios(x)[mask].min())

    def _side(self) -> tuple[FloatArray, FloatArray]:
        rows = [self.side_a]
        rhs = [self.side_b]
        fl = self.floor_rows > 0
        if fl.any() and math.isfinite(self.floor):
            c = self.floor - 1e-12 * abs(self.floor)
            rows.append(-(self.g[fl] - c * self.h[fl]))
            rhs.append(self.n_[fl] - c)
        return np.concatenate(rows, axis=0), np.concatenate(rhs)

    def _solve(
        self, c: FloatArray, a_ub: FloatArray, b_ub: FloatArray, bounds: list[tuple[float, float | None]]
    ) -> FloatArray | None:
        n = c.shape[0]
        a_eq = self.a_eq
        if a_eq.shape[1] < n:
            a_eq = np.concatenate([a_eq, np.zeros((a_eq.shape[0], n - a_eq.shape[1]))], axis=1)
        result = linprog(
            c,
            A_ub=a_ub if a_ub.shape[0] else None,
            b_ub=b_ub if a_ub.shape[0] else None,
            A_eq=a_eq if a_eq.shape[0] else None,
            b_eq=np.zeros(a_eq.shape[0]) if a_eq.shape[0] else None,
            bounds=bounds,
            method="highs",
            options={"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9},
        )
        if result.status == 2:
            return None  # infeasible
        if result.status != 0 or result.x is None:
            raise RiskInputError(f"rebalancing LP failed: {result.message}")
        out: FloatArray = np.asarray(result.x, dtype=np.float64)
        return out

    def max_min(self) -> Solution:
        """The Dinkelbach-type iteration (module docstring)."""
        n_v = len(self.bounds)
        x = np.zeros(n_v)
        t = min(self.value(x), self.params.max_chf)
        obj = self.objective_rows > 0
        side_a, side_b = self._side()
        iterations = 0
        for _ in range(self.params.max_iterations):
            if t >= self.params.max_chf:
                break
            weights = np.maximum(1.0 + self.h[obj] @ x, 1e-12)
            a_obj = np.concatenate([-(self.g[obj] - t * self.h[obj]), weights[:, None]], axis=1)
            b_obj = self.n_[obj] - t
            a_side = np.concatenate([side_a, np.zeros((side_a.shape[0], 1))], axis=1)
            c = np.zeros(n_v + 1)
            c[-1] = -1.0
            bounds = [*self.bounds, (-self.params.max_chf, self.params.max_chf)]
            sol = self._solve(
                c, np.concatenate([a_obj, a_side], axis=0), np.concatenate([b_obj, side_b]), bounds
            )
            iterations += 1
            if sol is None:
                break
            z = float(sol[-1])
            candidate = np.clip(sol[:-1], 0.0, None)
            value = min(self.value(candidate), self.params.max_chf)
            improved = value > t
            if improved:
                x, t = candidate, value
            if not improved or z <= self.params.tolerance * max(1.0, t):
                break
        return Solution(tokens=x * self.scale, value=t, iterations=iterations)

    def least_moved(self, target: float) -> Solution | None:
        """The cheapest plan whose objective rows all reach ``target``; None when none does."""
        obj = self.objective_rows > 0
        side_a, side_b = self._side()
        a_ub = np.concatenate([-(self.g[obj] - target * self.h[obj]), side_a], axis=0)
        b_ub = np.concatenate([self.n_[obj] - target, side_b])
        sol = self._solve(self.cost, a_ub, b_ub, self.bounds)
        if sol is None:
            return None
        x = np.clip(sol, 0.0, None)
        return Solution(tokens=x * self.scale, value=min(self.value(x), self.params.max_chf), iterations=1)


def build_program(problem: Problem, params: RebalanceParams, objective: Objective, floor: float) -> Program:
    """The matrices of every LP over ``problem`` (``floor``: the figure that must not get worse)."""
    lin = problem.lin
    variables = problem.variables
    n_s, n_a = lin.resources.shape
    k_scale = max(
        1.0, float(lin.requirement[0].max(initial=0.0)), float(np.abs(lin.resources[0]).max(initial=0.0))
    )
    usd0 = np.array([v.usd0 for v in variables], dtype=np.float64).reshape(len(variables))
    scale = k_scale / usd0 if len(variables) else np.zeros(0)  # tokens per unit of x

    q = lin.requirement.reshape(-1)  # row s * n_a + a
    r = lin.resources.reshape(-1)
    keep = np.flatnonzero(q > 0)
    row_of = np.full(n_s * n_a, -1)
    row_of[keep] = np.arange(keep.shape[0])
    n_rows = keep.shape[0]
    g = np.zeros((n_rows, len(variables)))
    h = np.zeros((n_rows, len(variables)))
    for j, v in enumerate(variables):
        if v.account < 0 or v.target == "none":
            continue
        flat = np.arange(n_s) * n_a + v.account
        rows = row_of[flat]
        ok = rows >= 0
        target = g if v.target == "R" else h
        target[rows[ok], j] = v.coef[ok] * scale[j] / q[flat[ok]]
    n_ = r[keep] / q[keep]
    scenario = keep // n_a
    if objective == "max_stressed_chf":
        objective_rows = np.ones(n_rows)
        floor_rows = (scenario == 0).astype(np.float64)
    else:
        objective_rows = (scenario == 0).astype(np.float64)
        floor_rows = np.ones(n_rows)

    side_rows: list[FloatArray] = []
    side_rhs: list[float] = []
    for rule in problem.rules:
        a = rule.account
        q0, r0 = float(lin.requirement[0, a]), float(lin.resources[0, a])
        norm = q0 if q0 > 0 else max(abs(r0), 1.0)
        row = np.zeros(len(variables))
        ltv_row = np.zeros(len(variables))
        for j, v in enumerate(variables):
            if v.account != a:
                continue
            if v.target == "R":
                row[j] = v.coef[0] * scale[j]
            elif v.target == "Q":
                row[j] = -rule.min_health * v.coef[0] * scale[j]
            ltv_row[j] = v.ltv_coef * scale[j]
        side_rows.append(-row / norm)
        side_rhs.append((r0 - rule.min_health * q0) / norm)
        if rule.borrow_rule:
            side_rows.append(-ltv_row / norm)
            side_rhs.append(rule.ltv_value / norm)
    side_a = np.array(side_rows, dtype=np.float64).reshape(len(side_rows), len(variables))
    side_b = np.array(side_rhs, dtype=np.float64).reshape(len(side_rhs))

    nodes: dict[tuple[str, str], int] = {}
    entries: list[tuple[int, int, float]] = []
    for j, v in enumerate(variables):
        if v.kind == "bridge":
            assert v.to_location is not None
            out = nodes.setdefault((v.token, v.location), len(nodes))
            into = nodes.setdefault((v.token, v.to_location), len(nodes))
            entries += [(out, j, scale[j]), (into, j, -scale[j])]  # tokens leave `out`, arrive at `into`
        else:
            node = nodes.setdefault((v.token, v.location), len(nodes))
            sign = 1.0 if v.kind in SINKS else -1.0
            entries.append((node, j, sign * scale[j]))
    a_eq = np.zeros((len(nodes), len(variables)))
    for node, j, value in entries:
        a_eq[node, j] += value
    a_eq /= np.maximum(np.abs(a_eq).max(axis=1, keepdims=True), 1e-300)  # one token unit per node row

    bounds: list[tuple[float, float | None]] = [
        (0.0, None if math.isinf(v.cap) else v.cap / scale[j]) for j, v in enumerate(variables)
    ]
    cost = np.array(
        [
            1.0 if v.kind in SOURCES else (params.bridge_cost if v.kind == "bridge" else 0.0)
            for v in variables
        ],
        dtype=np.float64,
    ).reshape(len(variables))
    return Program(
        problem=problem,
        params=params,
        scale=scale,
        n_=n_,
        g=g,
        h=h,
        objective_rows=objective_rows,
        floor_rows=floor_rows,
        floor=floor,
        side_a=side_a,
        side_b=side_b,
        a_eq=a_eq,
        bounds=bounds,
        cost=cost,
    )
