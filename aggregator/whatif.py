"""Pre-trade what-if: parse hypothetical changes and apply them to a portfolio (exact ``Decimal`` edits).

Changes (``crossmargin whatif``, ``docs/whatif.md``); ``TARGET`` selects one account: its key
(``deployment/account_id``), else its deployment (``aave_v3:arbitrum``), else its venue
(``hyperliquid``); for perps and options a venue with several accounts picks its one cross / options
account; anything still ambiguous or unmatched is a ``WhatIfError`` naming the candidates.

- ``deposit AMOUNT TOKEN TARGET``: lending: more collateral (the account's own position, or a new one
  with the liquidation threshold of the same token elsewhere in the book at that deployment or venue,
  or ``--lt TOKEN=VALUE``); perps/options: more cash in that token.
- ``withdraw AMOUNT|all TOKEN TARGET``: less collateral, supply or cash.
- ``repay AMOUNT|all TOKEN TARGET`` / ``borrow AMOUNT TOKEN TARGET``: less / more debt.
- ``perp TARGET MARKET SIZE``: add SIZE (signed: -2 sells 2) to the perp at the current mark
  (the position's own mark, else the factor price); the cash leg pays ``SIZE x mark`` (equity is
  unchanged at entry, fees ignored); the entry price is the size-weighted average when adding, kept
  when reducing, the mark when flipping. A new market takes the maintenance tiers of the same market
  elsewhere in the book, else ``--mmr``.
- ``close-perp TARGET MARKET``: the perp's value and accrued funding go to the cash leg.
- ``option TARGET INSTRUMENT QTY`` (``ETH-20261225-3000-P``, expiry at 08:00 UTC): QTY more contracts at
  the Black-76 mark (IV: the position's own, else ``--iv``, else the nearest strike on the same
  underlying in the book); the premium is paid from cash. ``close-option TARGET INSTRUMENT``.
  The account is an options account (``OptionsScenarioModel``) or a venue's standard-margin account
  (``StandardMarginModel``, Aevo / Deribit); a new option on a standard-margin account carries the
  ``spot_price`` its margin formula uses: the spot of an option on the same factor already in that
  account (the venue's index), else the factor price in the account's quote.

Every edited account loses its ``venue_health`` (``risk.rebalance.edit``): a hypothetical book has no
venue figure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from aggregator.config import AssetSpec, Settings
from aggregator.errors import InputError
from risk.errors import RiskInputError
from risk.model import (
    USD,
    CrossPerpModel,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarketState,
    OptionParams,
    OptionsScenarioModel,
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
    PriceSource,
    StandardMarginModel,
)
from risk.options import black76_price
from risk.params import RiskParams
from risk.rebalance import (
    Advice,
    IdleBalance,
    Movable,
    RebalanceParams,
    add_quantity,
    advise,
    replace_account,
)

__all__ = [
    "Action",
    "Change",
    "WhatIfError",
    "account_locations",
    "advise_book",
    "apply_changes",
    "parse_change",
    "parse_idle",
    "resolve_account",
]

Action = Literal["deposit", "withdraw", "repay", "borrow", "perp", "close_perp", "option", "close_option"]
_INSTRUMENT = re.compile(r"^(?P<under>[A-Za-z0-9]+)-(?P<date>\d{8})-(?P<strike>\d+(?:\.\d+)?)-(?P<cp>[CP])$")


class WhatIfError(InputError):
    """A change that cannot be applied; the message names the change and why (exit 2)."""


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    target: str
    token: str
    amount: Decimal | None  # None: "all" (withdraw, repay) or a close

    def describe(self) -> str:
        amount = "all" if self.amount is None else f"{self.amount:,}"
        if self.action in ("perp", "option"):
            return f"{self.action} {self.token} {amount} on {self.target}"
        if self.action in ("close_perp", "close_option"):
            return f"{self.action.replace('_', ' ')} {self.token} on {self.target}"
        where = "into" if self.action == "deposit" else "at"
        return f"{self.action} {amount} {self.token} {where} {self.target}"


def _decimal(text: str, what: str, *, allow_all: bool = False, signed: bool = False) -> Decimal | None:
    if allow_all and text.lower() in ("all", "max"):
        return None
    try:
        value = Decimal(text.replace("_", "").replace(",", ""))
    except InvalidOperation:
        raise WhatIfError(f"{what}: {text!r} is not a number{' or all' if allow_all else ''}") from None
    if not value.is_finite() or (not signed and value <= 0) or (signed and value == 0):
        raise WhatIfError(f"{what}: {text!r} must be {'non-zero' if signed else 'positive'}")
    return value


def parse_change(action: Action, values: Sequence[str]) -> Change:
    """One CLI change; ``values`` as typed (``--deposit 5000 USDC aave_v3:arbitrum``)."""
    flag = f"--{action.replace('_', '-')}"
    if action in ("deposit", "withdraw", "repay", "borrow"):
        amount_text, token, target = values
        amount = _decimal(amount_text, f"{flag} amount", allow_all=action in ("withdraw", "repay"))
        return Change(action, target, token, amount)
    if action in ("perp", "option"):
        target, token, size = values
        if action == "option" and not _INSTRUMENT.match(token):
            raise WhatIfError(f"{flag}: instrument {token!r} is not UNDERLYING-YYYYMMDD-STRIKE-C|P")
        return Change(action, target, token, _decimal(size, f"{flag} size", signed=True))
    target, token = values
    return Change(action, target, token, None)


def resolve_account(
    portfolio: Portfolio, selector: str, *, prefer: type | tuple[type, ...] | None = None
) -> MarginAccount:
    accounts = portfolio.accounts
    for candidates in (
        [a for a in accounts if a.key == selector],
        [a for a in accounts if a.deployment == selector],
        [a for a in accounts if a.venue == selector],
    ):
        match = candidates
        if len(match) > 1 and prefer is not None:
            match = [a for a in match if isinstance(a.margin_model, prefer)] or match
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            keys = ", ".join(a.key for a in match)
            raise WhatIfError(f"{selector!r} matches several accounts ({keys}): give the account key")
    known = ", ".join(a.key for a in accounts) or "none"
    raise WhatIfError(f"no account matches {selector!r} (accounts: {known})")


def _factor(
    token: str, assets: Mapping[str, AssetSpec], market: MarketState
) -> tuple[FactorId, FactorId | None]:
    spec = assets.get(token)
    if spec is not None:
        return FactorId(spec.factor), None if spec.basis is None else FactorId(spec.basis)
    if FactorId(token) in market.prices:
        return FactorId(token), None
    raise WhatIfError(f"unknown token {token!r}: add it to the assets configuration")


def _price(market: MarketState, factor: FactorId, basis: FactorId | None, quote: FactorId) -> Decimal:
    def usd(f: FactorId) -> float:
        if f == USD:
            return 1.0
        if f not in market.prices:
            raise WhatIfError(f"no price for factor {f}: the portfolio's market does not price it")
        return market.prices[f]

    value = usd(factor) * (usd(basis) if basis else 1.0) / usd(quote)
    return Decimal(repr(value))


def _find(account: MarginAccount, token: str, *kinds: PositionKind) -> Position | None:
    return next((p for p in account.positions if p.token == token and p.kind in kinds), None)


def _cash(account: MarginAccount) -> Position:
    spots = [p for p in account.positions if p.kind is PositionKind.SPOT]
    if not spots:
        raise WhatIfError(f"{account.key} has no cash (spot) position to pay from")
    return max(spots, key=lambda p: p.quantity * p.price)


_OPTION_MODELS = (OptionsScenarioModel, StandardMarginModel)
"""Margin models whose accounts hold options (what ``option`` / ``close-option`` accept)."""


class _Applier:
    def __init__(
        self,
        portfolio: Portfolio,
        market: MarketState,
        *,
        assets: Mapping[str, AssetSpec],
        lt: Mapping[str, Decimal],
        mmr: Decimal | None,
        iv: Decimal | None,
    ) -> None:
        self.portfolio = portfolio
        self.market = market
        self.assets = assets
        self.lt = lt
        self.mmr = mmr
        self.iv = iv

    def put(self, account: MarginAccount) -> None:
        self.portfolio = replace_account(self.portfolio, account)

    def add(
        self,
        account: MarginAccount,
        token: str,
        kind: PositionKind,
        delta: Decimal,
        template: Position | None = None,
    ) -> MarginAccount:
        try:
            return add_quantity(account, token, kind, delta, template=template)
        except RiskInputError as exc:
            raise WhatIfError(str(exc)) from None

    def collateral_template(self, account: MarginAccount, token: str) -> Position:
        same = [a for a in self.portfolio.accounts if a.deployment == account.deployment] + [
            a for a in self.portfolio.accounts if a.venue == account.venue
        ]
        for other in same:
            found = _find(other, token, PositionKind.COLLATERAL)
            if found is not None:
                return found
        if token not in self.lt:
            raise WhatIfError(
                f"{account.key}: no liquidation threshold known for {token} (no {token} collateral at "
                f"{account.deployment}): pass --lt {token}=0.78"
            )
        factor, basis = _factor(token, self.assets, self.market)
        lt = self.lt[token]
        return Position(
            token=token,
            factor=factor,
            basis_factor=basis,
            kind=PositionKind.COLLATERAL,
            quantity=Decimal(0),
            price=_price(self.market, factor, basis, account.quote),
            lending=LendingParams(ltv=lt, liquidation_threshold=lt, liquidation_bonus=Decimal(0)),
        )

    def plain_template(self, account: MarginAccount, token: str, kind: PositionKind) -> Position:
        for other in self.portfolio.accounts:
            found = _find(other, token, kind, PositionKind.SPOT, PositionKind.DEBT, PositionKind.COLLATERAL)
            if found is not None and other.quote == account.quote:
                return replace(found, kind=kind, lending=None, perp=None, option=None)
        factor, basis = _factor(token, self.assets, self.market)
        return Position(
            token=token,
            factor=factor,
            basis_factor=basis,
            kind=kind,
            quantity=Decimal(0),
            price=_price(self.market, factor, basis, account.quote),
        )

    def balance(self, change: Change) -> None:
        prefer = LendingModel if change.action in ("repay", "borrow") else None
        account = resolve_account(self.portfolio, change.target, prefer=prefer)
        lending = isinstance(account.margin_model, LendingModel)
        token = change.token
        if change.action == "deposit":
            assert change.amount is not None
            if lending:
                held = _find(account, token, PositionKind.COLLATERAL)
                template = held or self.collateral_template(account, token)
                self.put(self.add(account, token, PositionKind.COLLATERAL, change.amount, template))
            else:
                template = _find(account, token, PositionKind.SPOT) or self.plain_template(
                    account, token, PositionKind.SPOT
                )
                self.put(self.add(account, token, PositionKind.SPOT, change.amount, template))
        elif change.action == "withdraw":
            kinds = (PositionKind.COLLATERAL, PositionKind.SUPPLY) if lending else (PositionKind.SPOT,)
            held = _find(account, token, *kinds)
            if held is None:
                raise WhatIfError(f"{account.key} holds no {token} to withdraw")
            amount = held.quantity if change.amount is None else change.amount
            self.put(self.add(account, token, held.kind, -amount))
        elif change.action == "repay":
            held = _find(account, token, PositionKind.DEBT)
            if held is None:
                raise WhatIfError(f"{account.key} owes no {token}")
            amount = -held.quantity if change.amount is None else change.amount
            self.put(self.add(account, token, PositionKind.DEBT, amount))
        else:  # borrow
            assert change.amount is not None
            if not lending:
                raise WhatIfError(f"{account.key} is not a lending account")
            template = _find(account, token, PositionKind.DEBT) or self.plain_template(
                account, token, PositionKind.DEBT
            )
            self.put(self.add(account, token, PositionKind.DEBT, -change.amount, template))

    def pay(self, account: MarginAccount, quote_amount: Decimal) -> MarginAccount:
        """Move ``quote_amount`` (quote currency, + = into the account) through its cash leg."""
        cash = _cash(account)
        if cash.price <= 0:
            raise WhatIfError(f"{account.key}: its cash {cash.token} has no price")
        return self.add(account, cash.token, PositionKind.SPOT, quote_amount / cash.price)

    def perp(self, change: Change) -> None:
        account = resolve_account(self.portfolio, change.target, prefer=CrossPerpModel)
        if isinstance(account.margin_model, LendingModel):
            raise WhatIfError(f"{account.key} is a lending account")
        held = _find(account, change.token, PositionKind.PERP)
        if change.action == "close_perp":
            if held is None or held.perp is None:
                raise WhatIfError(f"{account.key} has no {change.token} perp")
            account = self.pay(account, held.quantity * held.price + held.perp.accrued_funding)
            self.put(replace(account, positions=tuple(p for p in account.positions if p is not held)))
            return
        size = change.amount
        assert size is not None
        if held is not None and held.perp is not None:
            mark, old = held.price, held.quantity
            new = old + size
            entry = held.perp.entry_price
            if old * size > 0:
                entry = (old * entry + size * mark) / new
            elif new * old < 0:
                entry = mark
            position = replace(held, quantity=new, perp=replace(held.perp, entry_price=entry))
            positions = tuple(
                position if p is held else p for p in account.positions if not (p is held and new == 0)
            )
        else:
            position = self.new_perp(account, change.token, size)
            mark = position.price
            positions = (*account.positions, position)
        account = replace(account, positions=positions, venue_health=None)
        self.put(self.pay(account, -size * mark))

    def new_perp(self, account: MarginAccount, market: str, size: Decimal) -> Position:
        tiers = None
        for other in sorted(self.portfolio.accounts, key=lambda a: a.venue != account.venue):
            found = _find(other, market, PositionKind.PERP)
            if found is not None and found.perp is not None:
                tiers = found.perp.margin_tiers
                break
        if tiers is None:
            if self.mmr is None:
                raise WhatIfError(f"no maintenance margin known for a new {market} perp: pass --mmr 0.02")
            from risk.model import MarginTier

            tiers = (MarginTier(lower_bound=Decimal(0), maintenance_fraction=self.mmr),)
        factor, basis = _factor(market, self.assets, self.market)
        mark = _price(self.market, factor, basis, account.quote)
        return Position(
            token=market,
            factor=factor,
            basis_factor=basis,
            kind=PositionKind.PERP,
            quantity=size,
            price=mark,
            price_source=PriceSource.MARK,
            perp=PerpParams(entry_price=mark, margin_tiers=tiers),
        )

    def option(self, change: Change) -> None:
        account = resolve_account(self.portfolio, change.target, prefer=_OPTION_MODELS)
        if not isinstance(account.margin_model, _OPTION_MODELS):
            raise WhatIfError(f"{account.key} is not an options or standard-margin account")
        held = _find(account, change.token, PositionKind.OPTION)
        if change.action == "close_option":
            if held is None:
                raise WhatIfError(f"{account.key} holds no {change.token}")
            account = self.pay(account, held.quantity * held.price)
            self.put(replace(account, positions=tuple(p for p in account.positions if p is not held)))
            return
        qty = change.amount
        assert qty is not None
        if held is not None:
            new = held.quantity + qty
            positions = tuple(
                replace(p, quantity=new) if p is held else p
                for p in account.positions
                if not (p is held and new == 0)
            )
            price = held.price
        else:
            position = self.new_option(account, change.token, qty)
            positions, price = (*account.positions, position), position.price
        account = replace(account, positions=positions, venue_health=None)
        self.put(self.pay(account, -qty * price))

    def new_option(self, account: MarginAccount, instrument: str, qty: Decimal) -> Position:
        m = _INSTRUMENT.match(instrument)
        assert m is not None
        try:
            expiry = datetime.strptime(m["date"], "%Y%m%d").replace(hour=8, tzinfo=UTC)
        except ValueError:
            raise WhatIfError(f"option {instrument}: {m['date']} is not a date") from None
        factor, basis = _factor(m["under"], self.assets, self.market)
        strike = Decimal(m["strike"])
        iv = self.iv
        if iv is None:
            same = [
                p
                for a in self.portfolio.accounts
                for p in a.positions
                if p.option is not None and p.factor == factor
            ]
            if not same:
                raise WhatIfError(f"no implied vol known for {instrument}: pass --iv 0.6")
            iv = min(
                same, key=lambda p: abs(p.option.strike - strike) if p.option else Decimal(0)
            ).option.mark_iv  # type: ignore[union-attr]
        under = _price(self.market, factor, basis, account.quote)
        spot = None
        if isinstance(account.margin_model, StandardMarginModel):
            spot = next(
                (
                    p.option.spot_price
                    for p in account.positions
                    if p.option is not None and p.option.spot_price is not None and p.factor == factor
                ),
                under,
            )
        years = max((expiry - self.market.as_of).total_seconds(), 0.0) / (365.0 * 86400.0)
        if years <= 0:
            raise WhatIfError(f"option {instrument} has expired at {self.market.as_of.isoformat()}")
        mark = float(black76_price(float(under), float(strike), years, float(iv), m["cp"] == "C"))
        return Position(
            token=instrument,
            factor=factor,
            basis_factor=basis,
            kind=PositionKind.OPTION,
            quantity=qty,
            price=Decimal(repr(mark)),
            price_source=PriceSource.MARK,
            option=OptionParams(
                strike=strike,
                expiry=expiry,
                option_type="call" if m["cp"] == "C" else "put",
                mark_iv=iv,
                underlying_price=under,
                spot_price=spot,
            ),
        )


def apply_changes(
    portfolio: Portfolio,
    market: MarketState,
    changes: Sequence[Change],
    *,
    assets: Mapping[str, AssetSpec],
    lt: Mapping[str, Decimal] | None = None,
    mmr: Decimal | None = None,
    iv: Decimal | None = None,
) -> Portfolio:
    """``portfolio`` after every change, in order. A change that cannot apply is a ``WhatIfError``."""
    applier = _Applier(portfolio, market, assets=assets, lt=lt or {}, mmr=mmr, iv=iv)
    for change in changes:
        try:
            if change.action in ("perp", "close_perp"):
                applier.perp(change)
            elif change.action in ("option", "close_option"):
                applier.option(change)
            else:
                applier.balance(change)
        except WhatIfError as exc:
            raise WhatIfError(f"{change.describe()}: {exc}") from None
    return applier.portfolio


def account_locations(portfolio: Portfolio, settings: Settings) -> dict[str, str]:
    """deployment -> chain for the advisor (``risk.rebalance.RebalanceParams.locations``): a configured
    EVM deployment's chain (``aave_v3:arbitrum`` -> its ``chain``), else the account's own block chain;
    HTTP venues stay their own location."""
    out: dict[str, str] = {}
    families = settings.deployments.model_dump(exclude_none=True)
    for account in portfolio.accounts:
        family, _, instance = account.deployment.partition(":")
        spec = getattr(settings.deployments, family, {}).get(instance) if family in families else None
        chain = getattr(spec, "chain", None) or account.as_of.chain
        if chain:
            out[account.deployment] = str(chain)
    return out


def parse_idle(text: str) -> IdleBalance:
    """``AMOUNT:TOKEN:LOCATION[:WALLET]`` (``5000:USDC:arbitrum``) as an idle wallet balance."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise WhatIfError(
            f"--idle {text!r}: expected AMOUNT:TOKEN:LOCATION[:WALLET], e.g. 5000:USDC:arbitrum"
        )
    amount = _decimal(parts[0], f"--idle {text!r} amount")
    assert amount is not None
    return IdleBalance(
        wallet=parts[3] if len(parts) == 4 else "wallet", location=parts[2], token=parts[1], amount=amount
    )


def advise_book(
    portfolio: Portfolio,
    market: MarketState,
    params: RiskParams,
    settings: Settings,
    *,
    idle: Sequence[IdleBalance] = (),
    target_chf: float | None = None,
    reassess: bool = False,
) -> Advice:
    """``risk.rebalance.advise`` with the locations of the configured deployments (``account_locations``)."""
    rebalance = RebalanceParams(locations=account_locations(portfolio, settings))
    try:
        return advise(
            portfolio,
            market,
            params,
            Movable(idle=tuple(idle)),
            target_chf=target_chf,
            rebalance=rebalance,
            reassess=reassess,
        )
    except RiskInputError as exc:
        raise WhatIfError(f"rebalancing advice: {exc}") from None
