"""Exact edits of a portfolio: change one position's quantity, add a position, replace an account.

Used by the advisor to build the moved portfolio and by ``crossmargin whatif`` (``aggregator.whatif``)
for deposits, withdrawals and repayments. Quantities stay ``Decimal`` (``risk.model``'s exact
vocabulary); signs follow ``risk.model`` (debt <= 0, so a repayment *adds* to the debt quantity).

An edited account is no longer what the venue reported: its ``venue_health`` is cleared (there is no
venue figure for a hypothetical book, and keeping it would raise a false model-drift warning) and
its ``withdrawable`` moves with the cash withdrawn or deposited (floored at 0), an approximation of
the venue's own figure. A position whose quantity becomes exactly 0 is removed.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from risk.errors import RiskInputError
from risk.model import MarginAccount, Portfolio, Position, PositionKind

__all__ = ["add_quantity", "find_account", "replace_account"]

_NON_NEGATIVE = (PositionKind.COLLATERAL, PositionKind.SUPPLY)


def find_account(portfolio: Portfolio, key: str) -> MarginAccount:
    for account in portfolio.accounts:
        if account.key == key:
            return account
    known = ", ".join(a.key for a in portfolio.accounts) or "none"
    raise RiskInputError(f"no account {key!r} in portfolio {portfolio.name!r} (known: {known})")


def replace_account(portfolio: Portfolio, account: MarginAccount) -> Portfolio:
    accounts = tuple(account if a.key == account.key else a for a in portfolio.accounts)
    return Portfolio(name=portfolio.name, accounts=accounts)


def add_quantity(
    account: MarginAccount,
    token: str,
    kind: PositionKind,
    delta: Decimal,
    *,
    template: Position | None = None,
) -> MarginAccount:
    """``account`` with ``delta`` added to its ``kind`` position in ``token`` (the first one).

    Without such a position, ``template`` (any quantity) is added with quantity ``delta``; without a
    template that is a ``RiskInputError``. A result outside the kind's sign (collateral or supply
    below 0, debt above 0) is a ``RiskInputError`` naming the account, token and amounts.
    """
    positions = list(account.positions)
    index = next((i for i, p in enumerate(positions) if p.token == token and p.kind is kind), None)
    if index is None:
        if template is None:
            held = ", ".join(f"{p.token} {p.kind}" for p in positions) or "nothing"
            raise RiskInputError(f"{account.key} has no {token} {kind} position (it holds {held})")
        base = replace(template, quantity=Decimal(0))
        positions.append(base)
        index = len(positions) - 1
    current = positions[index]
    quantity = current.quantity + delta
    if kind in _NON_NEGATIVE and quantity < 0:
        raise RiskInputError(
            f"{account.key}: cannot take {-delta} {token} out of {kind} holding {current.quantity}"
        )
    if kind is PositionKind.DEBT and quantity > 0:
        raise RiskInputError(
            f"{account.key}: repaying {delta} {token} exceeds the debt of {-current.quantity}"
        )
    if quantity == 0:
        del positions[index]
    else:
        positions[index] = replace(current, quantity=quantity)
    withdrawable = account.withdrawable
    if withdrawable is not None and kind is PositionKind.SPOT:
        withdrawable = max(Decimal(0), withdrawable + delta)
    return replace(account, positions=tuple(positions), venue_health=None, withdrawable=withdrawable)
