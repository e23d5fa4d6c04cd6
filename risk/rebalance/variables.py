"""The movable amounts: one LP variable per source, sink and bridge, with each venue's rule.

Read from the compiled book (``risk.rebalance.linear.LinearBook``, accounts OK or STALE, augmented with
the caller's ``CollateralSlot`` templates), ``Movable`` (idle balances, frozen accounts) and
``RebalanceParams``.

Sources (tokens leave)
    - lending collateral (cap: the quantity; the account keeps ``health >= source_min_health`` at
      current prices and, when it has debt, the venue's borrow rule ``sum collateral x LTV >= debt``,
      Aave's ``validateHFAndLtv`` / Comet's ``isBorrowCollateralized``; an account that breaks either
      rule already gives nothing);
    - lending supply that is not collateral (cap: the quantity; no health effect);
    - cash (``spot``) of a perp, options or standard-margin account (Aevo / Deribit standard margin:
      its resources are its equity, or equity less the options' value, so cash counts one for one;
      cap: the venue's ``MarginAccount.withdrawable``
      when reported, and health ``>= source_min_health``; without the venue figure, health
      ``>= perp_min_health_without_venue_figure``);
    - idle wallet balances (cap: the amount).
Sinks (tokens arrive)
    - lending collateral with ``LT > 0`` (deposit), lending debt (repay, cap: the debt),
      cash of a perp, options or standard-margin account (deposit).
Bridges
    - per token, one variable per (source location, sink location) pair of different locations.

A token only moves to a sink of the same symbol; between locations it needs a bridge. Tokens with no
source or no sink are left out.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

import numpy as np

from risk.arrays import (
    KIND_COLLATERAL,
    KIND_DEBT,
    KIND_SPOT,
    KIND_SUPPLY,
    MODEL_CROSS_PERP,
    MODEL_DERIVE_STANDARD,
    MODEL_ISOLATED_PERP,
    MODEL_LENDING,
    MODEL_OPTIONS,
    MODEL_STANDARD,
    FloatArray,
)
from risk.rebalance.inputs import Movable, RebalanceParams
from risk.rebalance.linear import LinearBook

__all__ = ["AccountRule", "Problem", "Variable", "collect"]

VarKind = Literal["withdraw", "idle", "deposit", "repay", "bridge"]
SOURCES: tuple[VarKind, ...] = ("withdraw", "idle")
SINKS: tuple[VarKind, ...] = ("deposit", "repay")


@dataclass(frozen=True, slots=True)
class Variable:
    """One LP variable, in tokens. ``coef[S]`` is its effect per token on its account's resources
    (``target == "R"``) or requirement (``"Q"``) in each scenario; ``ltv_coef`` its effect per token on
    the account's borrow rule (collateral x LTV minus debt) at current prices."""

    kind: VarKind
    token: str
    location: str
    label: str  # account key, or the idle wallet's label
    account: int = -1  # book account index
    position: int = -1  # book position index
    idle: int = -1  # index into Movable.idle
    to_location: str | None = None  # bridges
    cap: float = math.inf
    cap_exact: Decimal | None = None  # the same cap, exact (position quantity, debt, withdrawable, idle)
    usd0: float = 0.0  # USD per token now (the venue's price; idle: given or the reference)
    target: Literal["R", "Q", "none"] = "none"
    coef: FloatArray = field(default_factory=lambda: np.zeros(0))
    ltv_coef: float = 0.0


@dataclass(frozen=True, slots=True)
class AccountRule:
    """Withdrawal floor of one source account: ``R_now(x) - min_health * Q_now(x) >= 0`` and, when
    ``borrow_rule``, ``ltv_value + sum ltv_coef x >= 0`` (``ltv_value`` = collateral x LTV - debt now)."""

    account: int
    min_health: float
    borrow_rule: bool
    ltv_value: float


@dataclass(frozen=True, eq=False)
class Problem:
    lin: LinearBook
    variables: tuple[Variable, ...]
    rules: tuple[AccountRule, ...]
    reference_price: dict[str, float]  # token -> USD per token (median of the venues' prices)
    notes: tuple[str, ...]


def _withdraw_rule(
    lin: LinearBook, a: int, params: RebalanceParams, has_venue_figure: bool, notes: list[str]
) -> AccountRule | None:
    """The account's floor, or None when it is already below it (nothing may leave it)."""
    book = lin.book
    lending = book.model[a] == MODEL_LENDING
    floor = (
        params.source_min_health
        if lending or has_venue_figure
        else params.perp_min_health_without_venue_figure
    )
    r, q = float(lin.resources[0, a]), float(lin.requirement[0, a])
    key = book.account_keys[a]
    if q > 0 and r < floor * q:
        notes.append(f"{key}: health {r / q:.4g} is below the withdrawal floor {floor:g}; nothing leaves it")
        return None
    ltv_value = 0.0
    if lending and q > 0:
        mine = np.flatnonzero(book.pos_account == a)
        for n in mine:
            if book.kind[n] == KIND_COLLATERAL:
                ltv_value += book.quantity[n] * lin.usd[0, n] * _ltv(lin, int(n))
        ltv_value -= q
        if ltv_value < 0:
            notes.append(
                f"{key}: collateral x LTV is below the debt (the venue's borrow rule); nothing leaves it"
            )
            return None
    return AccountRule(account=a, min_health=floor, borrow_rule=lending and q > 0, ltv_value=ltv_value)


def _ltv(lin: LinearBook, n: int) -> float:
    account = lin.book.accounts[int(lin.book.pos_account[n])]
    index = int(n - np.flatnonzero(lin.book.pos_account == lin.book.pos_account[n])[0])
    lending = account.positions[index].lending
    return 0.0 if lending is None else float(lending.ltv)


def collect(lin: LinearBook, movable: Movable, params: RebalanceParams) -> Problem:
    book = lin.book
    notes: list[str] = []
    raw: list[Variable] = []
    rules: dict[int, AccountRule] = {}
    for a, account in enumerate(book.accounts):
        if account.key in movable.frozen_accounts:
            continue
        location = params.location_of(account)
        model = int(book.model[a])
        margin_cash = model in (
            MODEL_CROSS_PERP, MODEL_ISOLATED_PERP, MODEL_OPTIONS, MODEL_STANDARD, MODEL_DERIVE_STANDARD
        )
        venue_cap = None if account.withdrawable is None else max(0.0, float(account.withdrawable))
        rule: AccountRule | bool | None = False  # False: not computed yet
        mine = np.flatnonzero(book.pos_account == a)
        cash_positions = [int(n) for n in mine if book.kind[n] == KIND_SPOT and margin_cash]
        largest_cash = max(cash_positions, key=lambda n: book.quantity[n] * lin.usd[0, n], default=-1)
        for n in (int(i) for i in mine):
            usd0 = float(lin.usd[0, n])
            if not usd0 > 0:
                continue
            position = account.positions[n - int(mine[0])]
            token = position.token
            kind = int(book.kind[n])
            qty = float(book.quantity[n])
            base = Variable(
                kind="deposit",
                token=token,
                location=location,
                label=account.key,
                account=a,
                position=n,
                usd0=usd0,
                coef=np.zeros(lin.n_scenarios),
            )
            if model == MODEL_LENDING and kind == KIND_COLLATERAL:
                coef = lin.usd[:, n] * book.lt[n]
                ltv = usd0 * _ltv(lin, n)
                if book.lt[n] > 0:
                    raw.append(replace(base, target="R", coef=coef, ltv_coef=ltv))
                if qty > 0:
                    if rule is False:
                        rule = _withdraw_rule(lin, a, params, False, notes)
                    if isinstance(rule, AccountRule):
                        rules[a] = rule
                        raw.append(
                            replace(
                                base,
                                kind="withdraw",
                                target="R",
                                coef=-coef,
                                ltv_coef=-ltv,
                                cap=qty,
                                cap_exact=position.quantity,
                            )
                        )
            elif model == MODEL_LENDING and kind == KIND_SUPPLY and qty > 0:
                raw.append(replace(base, kind="withdraw", cap=qty, cap_exact=position.quantity))
            elif model == MODEL_LENDING and kind == KIND_DEBT and qty < 0:
                raw.append(
                    replace(
                        base,
                        kind="repay",
                        target="Q",
                        coef=-lin.usd[:, n],
                        ltv_coef=usd0,
                        cap=-qty,
                        cap_exact=-position.quantity,
                    )
                )
            elif margin_cash and kind == KIND_SPOT:
                coef = lin.usd[:, n].copy()
                raw.append(replace(base, target="R", coef=coef))
                if venue_cap is not None and n != largest_cash:
                    continue  # the venue's figure is for its settlement cash
                cap = math.inf if venue_cap is None else venue_cap
                if cap > 0:
                    if rule is False:
                        rule = _withdraw_rule(lin, a, params, venue_cap is not None, notes)
                    if isinstance(rule, AccountRule):
                        rules[a] = rule
                        exact = (
                            None if account.withdrawable is None else max(Decimal(0), account.withdrawable)
                        )
                        raw.append(
                            replace(base, kind="withdraw", target="R", coef=-coef, cap=cap, cap_exact=exact)
                        )

    prices: dict[str, list[float]] = {}
    for v in raw:
        prices.setdefault(v.token, []).append(v.usd0)
    for b in movable.idle:
        if b.price_usd is not None:
            prices.setdefault(b.token, []).append(b.price_usd)
    reference = {token: float(statistics.median(ps)) for token, ps in prices.items()}
    pooled: dict[tuple[str, str, str], list[int]] = {}  # one variable per (wallet, location, token)
    for i, b in enumerate(movable.idle):
        pooled.setdefault((b.wallet, b.location, b.token), []).append(i)
    for indices in pooled.values():
        first = movable.idle[indices[0]]
        exact_amount = sum((movable.idle[i].amount for i in indices), Decimal(0))
        amount = float(exact_amount)
        price = first.price_usd if first.price_usd is not None else reference.get(first.token)
        if price is None or not amount > 0:
            continue  # no account uses this token, or nothing there
        raw.append(
            Variable(
                kind="idle",
                token=first.token,
                location=first.location,
                label=first.label,
                idle=indices[0],
                cap=amount,
                cap_exact=exact_amount,
                usd0=price,
                coef=np.zeros(lin.n_scenarios),
            )
        )

    has_source = {v.token for v in raw if v.kind in SOURCES}
    has_sink = {v.token for v in raw if v.kind in SINKS}
    usable = has_source & has_sink
    variables = [v for v in raw if v.token in usable]
    for token in sorted(usable):
        src_locs = sorted({v.location for v in variables if v.token == token and v.kind in SOURCES})
        dst_locs = sorted({v.location for v in variables if v.token == token and v.kind in SINKS})
        for s in src_locs:
            for d in dst_locs:
                if s != d:
                    variables.append(
                        Variable(
                            kind="bridge",
                            token=token,
                            location=s,
                            to_location=d,
                            label=f"{s} -> {d}",
                            usd0=reference[token],
                            coef=np.zeros(lin.n_scenarios),
                        )
                    )
    used_rules = {v.account for v in variables if v.kind == "withdraw" and v.target != "none"}
    return Problem(
        lin=lin,
        variables=tuple(variables),
        rules=tuple(rules[a] for a in sorted(used_rules) if a in rules),
        reference_price=reference,
        notes=tuple(notes),
    )
