"""Hedge groups and hedge breaks (design section 4.7).

Hedge group (per non-USD factor ``f`` some position moves with): the accounts with a non-zero net
USD delta to ``f`` at current prices (``risk.exposure.usd_delta``; |delta| above 1e-9 of the gross),
when at least one is long and one short and ``|sum delta| <= hedge_net_to_gross * sum |delta|``.

Hedge break: a move of ``f`` alone, within the span the stress test covers for it
(``risk.stress.stress_bounds``: the scan range ``R_f = max(scan_range_floor, scan_sigmas * sigma_f *
sqrt(horizon))`` out to the extreme moves, ``-min(0.99, m R_f) .. +m R_f`` with
``m = max(1, extreme_multiple)``), at which a member (a leg) liquidates while the group's pooled
health ``sum resources / sum requirement`` over its members, evaluated at that price, stays above 1.
(The scan range alone is too narrow: with the defaults it is about +-11% for ETH, and a short perp
leg that liquidates at +15% is exactly the break the stress test's extreme move is there to show.)
Per group and direction only the first leg to liquidate is reported (later legs go after the hedge
is already broken), from ``risk.distance`` (same root finder, 1e-12 relative price accuracy):
the leg, the signed trigger move and price, the unhedged exposure = the net USD delta to ``f`` of the
other members at the trigger price, and the group's pooled health there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk.arrays import Book, FloatArray, IntArray
from risk.assessment import HedgeBreak
from risk.distance import LiquidationMoves
from risk.exposure import usd_delta
from risk.margin import evaluate, health_of
from risk.model import FactorId
from risk.params import RiskParams
from risk.stress import stress_bounds

__all__ = ["HedgeGroup", "hedge_breaks", "hedge_groups"]


@dataclass(frozen=True, eq=False)
class HedgeGroup:
    factor: FactorId
    factor_index: int
    members: IntArray  # account indices
    net_usd: float
    gross_usd: float


def hedge_groups(book: Book, delta0: FloatArray, params: RiskParams) -> list[HedgeGroup]:
    """``delta0[A, F]``: USD deltas at current prices."""
    out = []
    for f in range(book.n_factors):
        if f == book.usd:
            continue
        d = delta0[:, f]
        gross = float(np.abs(d).sum())
        if gross <= 0:
            continue
        members = np.flatnonzero(np.abs(d) > 1e-9 * gross)
        net = float(d[members].sum())
        if (
            (d[members] > 0).any()
            and (d[members] < 0).any()
            and abs(net) <= params.hedge_net_to_gross * gross
        ):
            out.append(HedgeGroup(book.factors[f], f, members, net, gross))
    return out


def hedge_breaks(
    book: Book, groups: list[HedgeGroup], lm: LiquidationMoves, params: RiskParams
) -> tuple[HedgeBreak, ...]:
    path_of = {p.price_index: i for i, p in enumerate(lm.paths) if p.name != "market"}
    candidates: list[tuple[HedgeGroup, int, int, int]] = []  # group, path, direction, leg
    for g in groups:
        p = path_of.get(g.factor_index)
        if p is None:
            continue
        bounds = stress_bounds(float(book.vols[g.factor_index]), params)
        for d in range(2):
            x = np.abs(lm.x[p, d, g.members])
            move = lm.move[p, d, g.members]
            ok = ~np.isnan(x) & (np.abs(move) <= abs(bounds[d])) & (np.abs(move) > 0)
            if ok.any():
                j = int(np.flatnonzero(ok)[np.argmin(x[ok])])
                candidates.append((g, p, d, int(g.members[j])))
    if not candidates:
        return ()
    prices = np.stack([lm.prices_at(book, p, float(lm.x[p, d, leg])) for _, p, d, leg in candidates])
    ev = evaluate(book, prices)
    deltas = usd_delta(book, prices)
    out = []
    for s, (g, p, d, leg) in enumerate(candidates):
        pooled = float(
            health_of(
                np.array([ev.resources[s, g.members].sum()]), np.array([ev.requirement[s, g.members].sum()])
            )[0]
        )
        if pooled <= 1.0:
            continue
        others = g.members[g.members != leg]
        out.append(
            HedgeBreak(
                factor=g.factor,
                leg_account=book.account_keys[leg],
                trigger_move=float(lm.move[p, d, leg]),
                trigger_price=float(lm.price[p, d, leg]),
                unhedged_exposure_usd=float(deltas[s, others, g.factor_index].sum()),
                group_health_at_trigger=pooled,
            )
        )
    return tuple(out)
