"""From LP amounts to concrete moves: who sends what to whom, the figures after each, the moved book.

Decomposition (per token): the LP gives how much leaves each source and arrives at each sink
(``risk.rebalance.lp``). At each location, sources are paired with sinks there first (fast moves,
largest first); what is left crosses locations (slow moves with a bridge step), following the LP's
bridge flows, then any remainder. Every unit that leaves a source arrives at exactly one sink.

Figures: the moves are listed fast first, then slow, each group by USD, largest first; a move's
``chf_before`` / ``stressed_chf_before`` are the book after the moves listed before it, ``*_after``
include it; both from the exact linear model (``risk.rebalance.linear``). ``interim`` is the book while
the slow moves are in transit: every withdrawal done, only the fast deposits arrived.

Applying (``apply_moves``): exact ``Decimal`` edits (``risk.rebalance.edit``) of the original
portfolio; amounts are rounded to 12 significant digits and never exceed a source's position or a
debt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import numpy as np

from risk.arrays import KIND_COLLATERAL, KIND_DEBT, KIND_SPOT, KIND_SUPPLY, FloatArray
from risk.assessment import RebalanceMove
from risk.model import MarginAccount, Portfolio, PositionKind
from risk.rebalance.edit import add_quantity, find_account, replace_account
from risk.rebalance.inputs import RebalanceParams
from risk.rebalance.linear import LinearBook
from risk.rebalance.variables import SINKS, SOURCES, Problem, Variable

__all__ = ["Leg", "Plan", "apply_moves", "decompose", "describe_move", "plan_moves"]

_KIND = {
    int(KIND_COLLATERAL): PositionKind.COLLATERAL,
    int(KIND_SUPPLY): PositionKind.SUPPLY,
    int(KIND_DEBT): PositionKind.DEBT,
    int(KIND_SPOT): PositionKind.SPOT,
}


@dataclass(frozen=True, slots=True)
class Leg:
    source: Variable
    sink: Variable
    amount: Decimal  # tokens

    @property
    def slow(self) -> bool:
        return self.source.location != self.sink.location

    @property
    def usd(self) -> float:
        return float(self.amount) * self.source.usd0


@dataclass(frozen=True, slots=True)
class Plan:
    legs: tuple[Leg, ...]
    moves: tuple[RebalanceMove, ...]
    chf: float
    stressed_chf: float
    interim_chf: float
    interim_stressed_chf: float


def _dec(x: float) -> Decimal:
    """``x`` rounded *down* to 12 significant digits (a move never exceeds what the LP allowed)."""
    if not x > 0:
        return Decimal(0)
    d = Decimal(repr(x))
    return d.quantize(Decimal(1).scaleb(d.adjusted() - 11), rounding=ROUND_DOWN)


def decompose(problem: Problem, tokens: FloatArray) -> list[tuple[Variable, Variable, float]]:
    """``(source, sink, tokens)`` triples whose sums per variable equal the LP's amounts."""
    variables = problem.variables
    eps = 1e-9
    supply: dict[tuple[str, str], list[list[float]]] = {}
    demand: dict[tuple[str, str], list[list[float]]] = {}
    bridges: list[tuple[float, Variable]] = []
    for j, v in enumerate(variables):
        amount = float(tokens[j])
        if amount * v.usd0 <= eps:
            continue
        if v.kind in SOURCES:
            supply.setdefault((v.token, v.location), []).append([j, amount])
        elif v.kind in SINKS:
            demand.setdefault((v.token, v.location), []).append([j, amount])
        else:
            bridges.append((amount, v))
    for queue in (*supply.values(), *demand.values()):
        queue.sort(key=lambda item: -item[1] * variables[int(item[0])].usd0)
    out: list[tuple[Variable, Variable, float]] = []

    def pair(src: list[list[float]], dst: list[list[float]], limit: float) -> float:
        moved = 0.0
        for s in src:
            for d in dst:
                if moved >= limit:
                    return moved
                take = min(s[1], d[1], limit - moved)
                if take * variables[int(s[0])].usd0 <= eps:
                    continue
                out.append((variables[int(s[0])], variables[int(d[0])], take))
                s[1] -= take
                d[1] -= take
                moved += take
        return moved

    for node, src in supply.items():
        if node in demand:
            pair(src, demand[node], math.inf)
    for amount, b in sorted(bridges, key=lambda item: -item[0] * item[1].usd0):
        assert b.to_location is not None
        pair(supply.get((b.token, b.location), []), demand.get((b.token, b.to_location), []), amount)
    tokens_left = {t for t, _ in supply}
    for token in sorted(tokens_left):
        src = [s for (t, _), queue in supply.items() if t == token for s in queue]
        dst = [d for (t, _), queue in demand.items() if t == token for d in queue]
        pair(src, dst, math.inf)
    return out


def _effect(lin: LinearBook, v: Variable, amount: float) -> tuple[FloatArray, FloatArray]:
    d_r = np.zeros_like(lin.resources)
    d_q = np.zeros_like(lin.requirement)
    if v.account >= 0 and v.target != "none":
        (d_r if v.target == "R" else d_q)[:, v.account] += v.coef * amount
    return d_r, d_q


def _amount(x: float) -> str:
    return f"{x:,.2f}" if abs(x) >= 100 else f"{x:.6g}"


def describe_move(move: RebalanceMove) -> str:
    """``move 12,000 USDC from A to B (repay): CHF 1.08 -> 1.41, stressed 0.95 -> 1.22``."""
    verb = "repay debt" if move.action == "repay" else "deposit"
    how = (
        f", bridge {move.source_location} -> {move.destination_location} (~{move.delay_minutes:g} min)"
        if move.slow
        else ""
    )
    return (
        f"move {_amount(move.amount)} {move.token} (${move.usd:,.0f}) "
        f"from {move.source} to {move.destination} "
        f"({verb}{how}): CHF {_ratio(move.chf_before)} -> {_ratio(move.chf_after)}, "
        f"stressed CHF {_ratio(move.stressed_chf_before)} -> {_ratio(move.stressed_chf_after)}"
    )


def _ratio(x: float) -> str:
    """A health figure: 4 significant digits, ``inf`` for no debt at all."""
    return "inf" if math.isinf(x) and x > 0 else f"{x:.4g}"


@dataclass(slots=True)
class _Row:
    source: Variable
    sink: Variable
    amount: Decimal

    def touches(self, v: Variable) -> bool:
        return self.source is v or self.sink is v


def _snap(rows: list[_Row], variables: tuple[Variable, ...]) -> None:
    """Make a variable's total exactly its cap when it is within 1e-6 of it (the LP solver's own
    tolerance): a debt repaid in full, a source emptied, so no rounding dust is left behind (an
    emptied account with 0.0001 of debt left would have health 0). Debts first: the extra comes from
    the source's room, else from another of its legs into a sink that is not full; then sources, into
    a leg whose sink has room. A source never gives more than its cap, a debt is never over-repaid."""

    def total(v: Variable) -> Decimal:
        return sum((row.amount for row in rows if row.touches(v)), Decimal(0))

    def room(v: Variable) -> Decimal | None:
        return None if v.cap_exact is None else v.cap_exact - total(v)

    def is_open(v: Variable) -> bool:
        return v.cap_exact is None or total(v) < v.cap_exact * (1 - Decimal("1e-6"))

    ordered = [v for v in variables if v.kind in SINKS] + [v for v in variables if v.kind in SOURCES]
    for v in ordered:
        mine = sorted((row for row in rows if row.touches(v)), key=lambda row: -row.amount)
        if v.cap_exact is None or v.cap_exact <= 0 or not mine:
            continue
        gap = v.cap_exact - total(v)
        if gap == 0 or abs(gap) > v.cap_exact * Decimal("1e-6"):
            continue
        if gap < 0:
            mine[0].amount += gap
            continue
        for row in mine:
            other = row.source if row.sink is v else row.sink
            free = room(other)
            if free is None or free >= gap:
                row.amount += gap
                break
            if v.kind in SINKS:  # take it from another leg of the same source
                donors = [
                    d
                    for d in rows
                    if d.source is other and d is not row and d.amount > gap and is_open(d.sink)
                ]
                if donors:
                    max(donors, key=lambda d: d.amount).amount -= gap
                    row.amount += gap
                    break


def _order(legs: list[Leg]) -> list[Leg]:
    """Fast before slow, larger first; and money into an account before money out of it, so that no
    intermediate book is worse than it needs to be (a cycle falls back to the plain order)."""
    pending = sorted(legs, key=lambda leg: (leg.slow, -leg.usd))
    out: list[Leg] = []
    while pending:
        incoming = {leg.sink.label for leg in pending}
        ready = next(
            (
                leg
                for leg in pending
                if leg.source.label not in incoming or leg.source.label == leg.sink.label
            ),
            pending[0],
        )
        pending.remove(ready)
        out.append(ready)
    return out


def plan_moves(
    problem: Problem,
    triples: list[tuple[Variable, Variable, float]],
    params: RebalanceParams,
) -> Plan:
    """Round, snap, order and drop dust (unless dropping it lowers a figure); then the figures."""
    lin = problem.lin
    merged: dict[tuple[int, int], _Row] = {}
    for src, dst, amount in triples:
        key = (id(src), id(dst))
        if key in merged:
            merged[key].amount += _dec(amount)
        else:
            merged[key] = _Row(src, dst, _dec(min(amount, src.cap, dst.cap)))
    rows = list(merged.values())
    _snap(rows, problem.variables)
    legs = [Leg(source=r.source, sink=r.sink, amount=r.amount) for r in rows if r.amount > 0]
    legs = _order(legs)

    def figures(chosen: list[Leg], arrived: set[int] | None = None) -> tuple[float, float]:
        r, q = lin.resources.copy(), lin.requirement.copy()
        for i, leg in enumerate(chosen):
            for v in (leg.source, leg.sink):
                if v is leg.sink and arrived is not None and i not in arrived:
                    continue
                d_r, d_q = _effect(lin, v, float(leg.amount))
                r += d_r
                q += d_q
        return lin.figures(r, q)

    kept = [leg for leg in legs if leg.usd >= params.min_move_usd]
    if len(kept) < len(legs):
        full, trimmed = figures(legs), figures(kept)
        if any(t < f - 1e-12 * abs(f) for t, f in zip(trimmed, full, strict=True)):
            kept = legs
    moves: list[RebalanceMove] = []
    r, q = lin.resources.copy(), lin.requirement.copy()
    chf, stressed = lin.figures(r, q)
    for leg in kept:
        for v in (leg.source, leg.sink):
            d_r, d_q = _effect(lin, v, float(leg.amount))
            r += d_r
            q += d_q
        after = lin.figures(r, q)
        moves.append(
            RebalanceMove(
                source=leg.source.label,
                destination=leg.sink.label,
                token=leg.source.token,
                amount=float(leg.amount),
                slow=leg.slow,
                chf_before=chf,
                chf_after=after[0],
                stressed_chf_before=stressed,
                stressed_chf_after=after[1],
                usd=leg.usd,
                action="repay" if leg.sink.kind == "repay" else "deposit",
                source_location=leg.source.location,
                destination_location=leg.sink.location,
                delay_minutes=params.bridge_delay(leg.source.location, leg.sink.location),
            )
        )
        chf, stressed = after
    interim = figures(kept, arrived={i for i, leg in enumerate(kept) if not leg.slow})
    return Plan(
        legs=tuple(kept),
        moves=tuple(moves),
        chf=chf,
        stressed_chf=stressed,
        interim_chf=interim[0],
        interim_stressed_chf=interim[1],
    )


def _edit(portfolio: Portfolio, template_book: LinearBook, v: Variable, delta: Decimal) -> Portfolio:
    book = template_book.book
    account_key = book.account_keys[v.account]
    first = int(np.flatnonzero(book.pos_account == v.account)[0])
    template = book.accounts[v.account].positions[v.position - first]
    kind = _KIND[int(book.kind[v.position])]
    account: MarginAccount = find_account(portfolio, account_key)
    if delta < 0 and kind in (PositionKind.COLLATERAL, PositionKind.SUPPLY):
        held = next(
            (p.quantity for p in account.positions if p.token == v.token and p.kind is kind), Decimal(0)
        )
        delta = max(delta, -held)
    if kind is PositionKind.DEBT:
        owed = -next(
            (p.quantity for p in account.positions if p.token == v.token and p.kind is kind), Decimal(0)
        )
        delta = min(delta, owed)
    return replace_account(portfolio, add_quantity(account, v.token, kind, delta, template=template))


def apply_moves(portfolio: Portfolio, lin: LinearBook, legs: tuple[Leg, ...]) -> Portfolio:
    """The portfolio after every leg (idle balances are outside the portfolio: nothing to edit)."""
    out = portfolio
    for leg in legs:
        if leg.source.kind == "withdraw":
            out = _edit(out, lin, leg.source, -leg.amount)
        out = _edit(out, lin, leg.sink, leg.amount)
    return out
