"""The market state of one scan cycle: factor prices from the accounts, vols and correlations from the
stored price history (EWMA) or the defaults of ``config/risk.toml``.

Factor prices: which price, and why
-----------------------------------
Every venue liquidates on its own price (Aave's oracle, Hyperliquid's mark, a Comet price feed). The
risk engine keeps each position's *own venue price* as its starting point (``Position.price`` ->
``Book.price0``): an account's health at current prices is computed on the venue's price, exactly as
the venue does. The factor price is the one *reference* per factor that every scenario is expressed
against: a move of ``-10 %`` multiplies every venue's price of that factor by 0.9, liquidation prices
and the ladder are quoted in it, non-USD quotes (Compound's ETH markets) are converted with it, and it
is what is stored as the factor's price history.

The reference is the **median of the venues' USD prices** of the factor in this cycle:

* an observation of a primary factor ``F`` is a position with ``factor = F``, no basis factor, in an
  account quoted in ``USD`` that is not UNAVAILABLE, with a positive price (WETH on Aave, the ETH perp
  mark on Hyperliquid, an option's underlying index — never its premium); each account contributes
  at most one observation per factor (its first such position), so a venue with many positions does
  not outvote the others;
* an observation of a basis factor ``B`` (``stETH/ETH``, ``USDC/USD``) is ``price / reference(F)`` of a
  position with ``factor = F`` and ``basis_factor = B`` in a USD-quoted account, once ``F`` is known
  (``USD`` is 1 by definition);
* the median (of an even count: the mean of the two middle ones) is robust to one venue's stale or
  outlying oracle; when the venues' prices of one factor spread by more than ``PRICE_SPREAD_WARNING``
  (relative, max/min - 1) a warning names the venues and their prices;
* a factor with no observation in this cycle (only held in an ETH-quoted account, or only as a basis
  in a non-USD account) takes its latest stored price from the database with a warning; a basis factor
  with neither takes 1.0 (a basis is a ratio near 1 by construction) with a warning; a primary factor
  with neither is a :class:`MarketInputError`.

Vols and correlations
---------------------
``risk.market.estimate_market`` with the stored history of the book's factors: daily closes (the last
stored price of each UTC day, ``aggregator.db.history.factor_price_history(..., every=1 day)``) over the
last ``history_lookback_days(params)`` days (long enough for the EWMA weights to fall below 1e-4, at
least ``min_history_days + 1``, at most 365). ``estimate_market`` uses the EWMA per vol and per pair
with at least ``min_history_days`` daily returns, and the defaults (``[risk] default_vols``,
``default_correlation``, ``vol_floor``) for the rest. Without a database, defaults only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from sqlalchemy.engine import Engine

from aggregator.db.history import factor_price_history
from aggregator.errors import CrossmarginError
from risk.market import MarketEstimate, estimate_market
from risk.model import USD, AccountStatus, FactorId, MarginAccount, Portfolio, Position
from risk.params import RiskParams

__all__ = [
    "PRICE_SPREAD_WARNING",
    "FactorQuote",
    "MarketInputError",
    "MarketInputs",
    "PriceObservation",
    "build_market",
    "history_lookback_days",
    "reference_prices",
]

PRICE_SPREAD_WARNING = 0.01
"""Relative spread (max/min - 1) of the venues' prices of one factor above which a warning is given."""
_EWMA_NEGLIGIBLE = 1e-4
_MAX_LOOKBACK_DAYS = 365

PriceSource = Literal["venues", "stored", "assumed"]


class MarketInputError(CrossmarginError):
    """No price can be found for a factor the book needs."""


@dataclass(frozen=True, slots=True)
class PriceObservation:
    account: str  # account key
    price: float  # USD


@dataclass(frozen=True, slots=True)
class FactorQuote:
    """The reference price of one factor and where it came from."""

    factor: FactorId
    price: float
    source: PriceSource
    observations: tuple[PriceObservation, ...] = ()


@dataclass(frozen=True)
class MarketInputs:
    """The cycle's market state plus how it was built (for the report and warnings)."""

    estimate: MarketEstimate
    quotes: Mapping[FactorId, FactorQuote]
    vol_source: Mapping[FactorId, str]  # "ewma" or "default"
    history_days: Mapping[FactorId, int]
    warnings: tuple[str, ...] = field(default=())

    @property
    def prices(self) -> dict[str, float]:
        """The factor prices to store with the snapshot (USD excluded: it is 1 by definition)."""
        return {str(f): q.price for f, q in self.quotes.items() if f != USD}


def history_lookback_days(params: RiskParams) -> int:
    """Days of stored history read for the EWMA: until the weight ``lambda^age`` is below 1e-4."""
    needed = math.ceil(math.log(_EWMA_NEGLIGIBLE) / math.log(params.ewma_lambda))
    return max(params.min_history_days + 1, min(needed, _MAX_LOOKBACK_DAYS))


def _usable(account: MarginAccount) -> bool:
    return account.status is not AccountStatus.UNAVAILABLE and account.quote == USD


def reference_prices(
    accounts: Sequence[MarginAccount], stored: Mapping[str, float] | None = None
) -> tuple[dict[FactorId, FactorQuote], list[str]]:
    """The reference price of every factor of ``accounts`` (see the module docstring), and warnings.

    ``stored`` maps factor -> latest stored price (the fallback)."""
    warnings: list[str] = []
    quotes: dict[FactorId, FactorQuote] = {USD: FactorQuote(USD, 1.0, "venues")}
    needed: dict[FactorId, bool] = {}  # factor -> is basis
    for account in accounts:
        if account.status is AccountStatus.UNAVAILABLE:
            continue
        if account.quote != USD:
            needed.setdefault(account.quote, False)
        for p in account.positions:
            needed.setdefault(p.factor, False)
            if p.basis_factor is not None:
                needed[p.basis_factor] = True

    primary: dict[FactorId, dict[str, float]] = {}
    for account in accounts:
        if not _usable(account):
            continue
        for p in account.positions:
            price = _underlying_price(p)
            if p.basis_factor is None and price > 0 and p.factor != USD:
                primary.setdefault(p.factor, {}).setdefault(account.key, price)
    for factor, seen in primary.items():
        quotes[factor] = _median_quote(factor, seen, warnings)

    # A factor held only through basis tokens (BTC only as WBTC, factor BTC x basis WBTC/BTC): its
    # reference is derived from those tokens' prices with the basis at its last stored value, else
    # at 1.0 (named in a warning), so the basis of this cycle comes out as that value.
    derived: dict[FactorId, dict[str, float]] = {}
    assumed: dict[FactorId, tuple[FactorId, float]] = {}
    for account in accounts:
        if not _usable(account):
            continue
        for p in account.positions:
            price = _underlying_price(p)
            if p.basis_factor is None or price <= 0 or p.factor in quotes or p.factor == USD:
                continue
            last_basis = (stored or {}).get(str(p.basis_factor))
            usable_last = last_basis is not None and math.isfinite(last_basis) and last_basis > 0
            basis_price = last_basis if usable_last and last_basis is not None else 1.0
            assumed.setdefault(p.factor, (p.basis_factor, basis_price))
            derived.setdefault(p.factor, {}).setdefault(account.key, price / basis_price)
    for factor, seen in derived.items():
        quotes[factor] = _median_quote(factor, seen, warnings)
        basis_factor, basis_price = assumed[factor]
        warnings.append(
            f"factor {factor}: no venue prices it directly; derived from {basis_factor} tokens with the "
            f"basis at {basis_price:.6g} ({'last stored' if basis_price != 1.0 else 'assumed'})"
        )

    basis: dict[FactorId, dict[str, float]] = {}
    for account in accounts:
        if not _usable(account):
            continue
        for p in account.positions:
            price = _underlying_price(p)
            if p.basis_factor is None or price <= 0:
                continue
            ref = quotes.get(p.factor)
            if ref is None:
                continue
            basis.setdefault(p.basis_factor, {}).setdefault(account.key, price / ref.price)
    for factor, seen in basis.items():
        if factor not in quotes:
            quotes[factor] = _median_quote(factor, seen, warnings)

    for factor, is_basis in sorted(needed.items()):
        if factor in quotes:
            continue
        last = (stored or {}).get(str(factor))
        if last is not None and math.isfinite(last) and last > 0:
            quotes[factor] = FactorQuote(factor, float(last), "stored")
            warnings.append(
                f"factor {factor}: no venue price in this cycle; using the last stored price {last:.6g}"
            )
        elif is_basis:
            quotes[factor] = FactorQuote(factor, 1.0, "assumed")
            warnings.append(f"factor {factor}: no price anywhere; assuming the basis is 1.0")
        else:
            raise MarketInputError(
                f"factor {factor}: no USD price from any venue in this cycle and none stored "
                "(it is only held in a non-USD-quoted account); scan a venue that prices it"
            )
    return quotes, warnings


def _underlying_price(p: Position) -> float:
    """The price of the factor a position observes: its own price, except for an option, whose price
    is the premium: there the venue's spot/index (``spot_price``), else its ``underlying_price``."""
    if p.option is not None:
        return float(p.option.spot_price if p.option.spot_price is not None else p.option.underlying_price)
    return float(p.price)


def _median_quote(factor: FactorId, seen: Mapping[str, float], warnings: list[str]) -> FactorQuote:
    values = list(seen.values())
    price = float(statistics.median(values))
    low, high = min(values), max(values)
    if low > 0 and high / low - 1.0 > PRICE_SPREAD_WARNING:
        listed = ", ".join(f"{k} {v:.6g}" for k, v in sorted(seen.items()))
        warnings.append(
            f"factor {factor}: venue prices spread by {high / low - 1.0:.2%} ({listed}); "
            f"the reference is their median {price:.6g}"
        )
    observations = tuple(PriceObservation(k, v) for k, v in sorted(seen.items()))
    return FactorQuote(factor, price, "venues", observations)


def _latest_stored(engine: Engine, factors: Sequence[str], as_of: datetime) -> dict[str, float]:
    history = factor_price_history(engine, list(factors), since=as_of - timedelta(days=30), until=as_of)
    out: dict[str, float] = {}
    for j, name in enumerate(history.factors):
        column = history.prices[:, j]
        finite = column[np.isfinite(column)]
        if finite.size:
            out[name] = float(finite[-1])
    return out


def build_market(
    portfolio: Portfolio,
    params: RiskParams,
    *,
    as_of: datetime,
    engine: Engine | None = None,
) -> MarketInputs:
    """Factor prices from ``portfolio``'s accounts, vols/correlations by EWMA over the history stored
    in ``engine`` (defaults without one); see the module docstring."""
    factors: list[FactorId] = list(portfolio.factors)
    for account in portfolio.accounts:
        if account.status is not AccountStatus.UNAVAILABLE and account.quote not in factors:
            factors.append(account.quote)
    names = [str(f) for f in factors if f != USD]
    stored = _latest_stored(engine, names, as_of) if engine is not None and names else {}
    quotes, warnings = reference_prices(portfolio.accounts, stored)
    if params.driver not in quotes and params.driver in (stored or {}):
        quotes[params.driver] = FactorQuote(params.driver, stored[str(params.driver)], "stored")

    history = None
    history_factors: list[FactorId] = []
    if engine is not None and names:
        lookback = history_lookback_days(params)
        read = factor_price_history(
            engine, names, since=as_of - timedelta(days=lookback), until=as_of, every=timedelta(days=1)
        )
        if read.prices.shape[0] >= 2:
            history = read.prices
            history_factors = [FactorId(f) for f in read.factors]
    prices = {f: q.price for f, q in quotes.items()}
    all_factors = [*factors, USD] if USD not in factors else factors
    estimate = estimate_market(
        all_factors,
        prices,
        params,
        as_of=as_of,
        history=history,
        history_factors=history_factors if history is not None else None,
    )
    vol_source = {
        f: ("ewma" if estimate.history_days.get(f, 0) >= params.min_history_days else "default")
        for f in estimate.state.factors
        if f != USD
    }
    return MarketInputs(
        estimate=estimate,
        quotes=quotes,
        vol_source=vol_source,
        history_days=dict(estimate.history_days),
        warnings=(*warnings, *estimate.warnings),
    )
