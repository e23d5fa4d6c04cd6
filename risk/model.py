"""The vocabulary every layer speaks: positions, margin accounts, portfolios, market state.

Exact values and floats
-----------------------
Everything in this module is *exact*: quantities, prices and venue-reported figures are
``decimal.Decimal`` converted without loss from the venue's integers or decimal strings
(a wad health factor ``1234567890123456789`` becomes ``Decimal("1.234567890123456789")``).
The per-venue health at current prices (``risk.exact``) is computed on these exact values, in
the venue's own integer arithmetic where it publishes one, so it can equal the venue's figure
to the last digit.

Floats begin in ``risk.arrays``: a portfolio is compiled once into float64 numpy arrays
(quantities, current prices, exposure matrix) and every scenario, stress and Monte Carlo figure
is computed on those. Nothing in ``risk.model`` is a float except ``MarketState`` (statistical
estimates: volatilities and correlations are floats by nature).

Sign conventions
----------------
``Position.quantity`` is signed exposure in token units: collateral, supply and spot are >= 0,
debt is <= 0, perps and options are > 0 long and < 0 short. ``quantity * price`` is then the
position's signed value in the account's quote currency, and an account's equity is the sum of
its positions' values (perp positions contribute ``quantity * mark``; the cash leg that carries
the entry cost is a separate ``spot`` position in the settlement token, as the venues report it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal, NewType

import numpy as np
import numpy.typing as npt

from risk.errors import RiskInputError

__all__ = [
    "USD",
    "AccountStatus",
    "AsOf",
    "CrossPerpModel",
    "DeriveStandardModel",
    "FactorId",
    "IsolatedPerpModel",
    "LendingModel",
    "LendingParams",
    "MarginAccount",
    "MarginModel",
    "MarginTier",
    "MarketState",
    "OptionParams",
    "OptionsScenarioModel",
    "PerpParams",
    "Portfolio",
    "Position",
    "PositionKind",
    "PriceSource",
    "StandardMarginModel",
]

# A SPOT position may be negative: it is the cash leg of a perp account (Hyperliquid's rawUsd,
# dYdX's USDC balance with side SHORT), which carries the entry cost of the open positions.

FactorId = NewType("FactorId", str)
"""A market variable the engine can shock: ``ETH``, ``BTC``, ``USD``, a basis such as ``stETH/ETH``."""

USD = FactorId("USD")
"""The numeraire. Its price is 1 by definition and it is never shocked."""


class PositionKind(StrEnum):
    COLLATERAL = "collateral"  # counts toward the venue's resources (lending collateral)
    SUPPLY = "supply"  # supplied but not collateral (earns, never liquidated)
    DEBT = "debt"
    PERP = "perp"
    OPTION = "option"
    SPOT = "spot"  # cash or token balance held inside a margin account (perp margin, settlement)


class AccountStatus(StrEnum):
    OK = "ok"
    STALE = "stale"  # read, but older than the freshness limit (stale block, lagging API)
    UNAVAILABLE = "unavailable"  # could not be read; positions are unknown, never "empty"


class PriceSource(StrEnum):
    ORACLE = "oracle"  # on-chain oracle (Aave, Comet, Morpho, dYdX oracle price)
    MARK = "mark"  # venue mark price (Hyperliquid, Derive, Deribit)
    INDEX = "index"  # venue index price
    TICKER = "ticker"  # off-chain price feed (GMX tickers)


@dataclass(frozen=True, slots=True)
class LendingParams:
    """Per-reserve lending parameters, as fractions (``0.825`` for 8250 bps)."""

    ltv: Decimal
    liquidation_threshold: Decimal  # Aave LT (e-mode applied), Comet liquidateCollateralFactor, Morpho LLTV
    liquidation_bonus: Decimal  # extra collateral a liquidator seizes: 0.05 for Aave's 10500 bps

    def __post_init__(self) -> None:
        for name in ("ltv", "liquidation_threshold", "liquidation_bonus"):
            value = getattr(self, name)
            if not Decimal(0) <= value <= Decimal(1):
                raise RiskInputError(f"lending parameter {name}={value} is outside [0, 1]")


@dataclass(frozen=True, slots=True)
class MarginTier:
    """Maintenance fraction that applies to the part of a position's notional above ``lower_bound``.

    The requirement of a notional ``n`` in tier ``k`` is ``n * fraction_k - deduction_k`` with
    ``deduction_k = deduction_{k-1} + lower_bound_k * (fraction_k - fraction_{k-1})`` (Hyperliquid's
    continuous tiers; a single tier is the flat fraction of dYdX and GMX).
    """

    lower_bound: Decimal  # notional in quote currency
    maintenance_fraction: Decimal


@dataclass(frozen=True, slots=True)
class PerpParams:
    entry_price: Decimal
    margin_tiers: tuple[MarginTier, ...]
    accrued_funding: Decimal = Decimal(0)  # quote currency, + = owed to the account
    funding_rate_hourly: Decimal = Decimal(0)  # + = longs pay shorts
    requirement_basis: Literal["mark_notional", "entry_notional"] = "mark_notional"
    min_requirement: Decimal = Decimal(0)  # GMX MIN_COLLATERAL_USD
    oracle_price: Decimal | None = None  # kept apart from the mark: venues liquidate on different prices

    def __post_init__(self) -> None:
        if not self.margin_tiers:
            raise RiskInputError("a perp needs at least one maintenance tier")
        bounds = [t.lower_bound for t in self.margin_tiers]
        if bounds[0] != 0 or bounds != sorted(bounds):
            raise RiskInputError("maintenance tiers must start at 0 and be sorted by lower bound")
        for tier in self.margin_tiers:
            if not Decimal(0) <= tier.maintenance_fraction <= Decimal(1):
                raise RiskInputError(f"maintenance fraction {tier.maintenance_fraction} is outside [0, 1]")


@dataclass(frozen=True, slots=True)
class OptionParams:
    strike: Decimal
    expiry: datetime  # timezone-aware
    option_type: Literal["call", "put"]
    mark_iv: Decimal  # annualized, 0.65 for 65%
    underlying_price: Decimal  # the venue's index/forward for the underlying
    contract_size: Decimal = Decimal(1)  # underlying units per option unit
    # the spot/index the venue's standard-margin formulas use (``StandardMarginModel``: Aevo's
    # "Spot", Deribit's index that converts coin margins to USD); None: ``underlying_price``
    spot_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.strike <= 0 or self.mark_iv < 0 or self.underlying_price <= 0:
            raise RiskInputError("option needs strike > 0, iv >= 0 and an underlying price > 0")
        if self.spot_price is not None and self.spot_price <= 0:
            raise RiskInputError("option spot price must be > 0")
        if self.expiry.tzinfo is None:
            raise RiskInputError("option expiry must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Position:
    """One exposure inside a margin account.

    ``price`` is the price the venue itself uses for this token, in the account's quote currency.
    The position's price moves with ``factor`` and, when set, the multiplicative ``basis_factor``
    (wstETH: factor ``ETH``, basis ``stETH/ETH``; USDC: factor ``USD``, basis ``USDC/USD``).
    """

    token: str
    factor: FactorId
    kind: PositionKind
    quantity: Decimal
    price: Decimal
    price_source: PriceSource = PriceSource.ORACLE
    basis_factor: FactorId | None = None
    lending: LendingParams | None = None
    perp: PerpParams | None = None
    option: OptionParams | None = None
    # annual rate at which the quantity grows, continuously compounded (lending: supply APR on
    # collateral/supply, borrow APR on debt); None when the venue did not report one
    interest_rate: Decimal | None = None

    def __post_init__(self) -> None:
        kind = self.kind
        if self.price < 0:
            raise RiskInputError(f"{self.token}: negative price {self.price}")
        if kind in (PositionKind.COLLATERAL, PositionKind.SUPPLY) and self.quantity < 0:
            raise RiskInputError(f"{self.token}: {kind} quantity must be >= 0, got {self.quantity}")
        if kind is PositionKind.DEBT and self.quantity > 0:
            raise RiskInputError(f"{self.token}: debt quantity must be <= 0, got {self.quantity}")
        if kind is PositionKind.COLLATERAL and self.lending is None:
            raise RiskInputError(f"{self.token}: collateral needs lending parameters")
        if kind is PositionKind.PERP and self.perp is None:
            raise RiskInputError(f"{self.token}: a perp needs perp parameters")
        if kind is PositionKind.OPTION and self.option is None:
            raise RiskInputError(f"{self.token}: an option needs option parameters")

    @property
    def value(self) -> Decimal:
        """Signed value in the account's quote currency."""
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class LendingModel:
    """Threshold lending: ``h = sum(collateral * price * LT) / sum(debt * price)`` (Aave V3 and forks,
    Compound V3 with liquidateCollateralFactor, Morpho Blue with the market's LLTV)."""

    name: Literal["lending"] = "lending"
    liquidation_close_factor: Decimal = Decimal("0.5")  # share of debt one liquidation may repay


@dataclass(frozen=True, slots=True)
class CrossPerpModel:
    """Cross-margined perps: ``h = account value / sum of tiered maintenance margins``
    (Hyperliquid cross account, dYdX subaccount)."""

    name: Literal["cross_perp"] = "cross_perp"
    liquidation_penalty: Decimal = Decimal("0.01")  # share of notional lost when liquidated


@dataclass(frozen=True, slots=True)
class IsolatedPerpModel:
    """One isolated position: its own equity over its own maintenance (Hyperliquid isolated, GMX v2)."""

    name: Literal["isolated_perp"] = "isolated_perp"
    liquidation_penalty: Decimal = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class OptionsScenarioModel:
    """Options account margined on the venue's scenario grid (Derive PM, Deribit-style PM).

    Requirement = ``mm_factor * max(0, -min over grid of the portfolio's PnL) + contingency``;
    ``h = equity / requirement``.
    """

    spot_shocks: tuple[Decimal, ...]  # relative moves, e.g. -0.16 .. +0.16
    vol_shocks: tuple[Decimal, ...]  # relative vol moves, e.g. -0.25, 0, +0.5
    name: Literal["options_scenario"] = "options_scenario"
    mm_factor: Decimal = Decimal(1)
    vega_power_short: Decimal = Decimal("0.30")  # vol shock scaled by (30/DTE)^p, DTE < 30 days
    vega_power_long: Decimal = Decimal("0.13")
    static_contingency: Decimal = Decimal(0)
    liquidation_penalty: Decimal = Decimal("0.02")


@dataclass(frozen=True, slots=True)
class StandardMarginModel:
    """A venue's standard (per-position) margin: Deribit standard margin, Aevo standard margin.

    Every position carries its own maintenance margin, summed over the account (no offsets):

    - perps and futures: their tiers (``PerpParams.margin_tiers``, as for ``CrossPerpModel``);
    - a short option of ``|q|`` units (quote currency, ``S`` the option's ``spot_price``, ``mark``
      its mark per unit): call ``|q| (call_spot S + mark)``, put
      ``|q| (max(put_spot S, put_mark mark) + mark)``; long options none;
    - resources: the account's equity (``option_value_counts``: Aevo), or its equity less the
      options' value (Deribit's ``margin_balance = equity - options_value``).

    ``h = resources / requirement`` (``risk.margin.venue_standard``).
    """

    name: Literal["standard_margin"] = "standard_margin"
    call_spot: Decimal = Decimal("0.1")
    put_spot: Decimal = Decimal("0.1")
    put_mark: Decimal = Decimal("0.1")
    option_value_counts: bool = True
    liquidation_penalty: Decimal = Decimal("0.02")

    def __post_init__(self) -> None:
        for name in ("call_spot", "put_spot", "put_mark", "liquidation_penalty"):
            value = getattr(self, name)
            if not Decimal(0) <= value <= Decimal(1):
                raise RiskInputError(f"standard margin parameter {name}={value} is outside [0, 1]")


@dataclass(frozen=True, slots=True)
class DeriveStandardModel:
    """Derive's Standard Manager (``margin_type`` "SM"; derivexyz/v2-core ``StandardManager.sol``,
    docs.derive.xyz "Standard Margin" and "Standard Margin Parameters"), maintenance margin.

    The venue's net figure is ``MM = cash + sum over markets of (perp margin + unrealized perp PnL +
    base margin + sum over expiries of the option margin)``; its ``subaccount_value`` counts every
    position at its mark, so the requirement is ``subaccount_value - MM`` (quote currency):

    - perps: their tiers on mark notional (``PerpParams.margin_tiers``: ``mmPerpReq * |q| * perpPrice``);
    - base collateral (a SPOT position other than ``cash_token``): ``(1 - marginFactor) * value``,
      ``marginFactor`` from ``base_margin_factors`` (token -> factor; unlisted: ``0``, no credit);
    - options, per (underlying, expiry): ``min(isolated, mtm - max_loss)`` where ``isolated`` sums the
      short options' ``call_spot * S * |q|`` (call) and ``max(put_spot * S * |q|, put_mtm * |mtm|)``
      (put), ``mtm`` is the expiry's mark value, and ``max_loss = min(0, min over settlement prices
      {0, every strike} of the expiry's payoff) + unpaired_scale * F * net_calls`` (the last term
      only when the net call amount is short; ``F`` the forward). Long options alone carry none.

    ``h = equity / requirement`` (``risk.margin.derive_standard``).
    """

    name: Literal["derive_standard"] = "derive_standard"
    call_spot: Decimal = Decimal("0.10")  # mmCallSpotReq
    put_spot: Decimal = Decimal("0.10")  # mmPutSpotReq
    put_mtm: Decimal = Decimal("0.10")  # MMPutMtMReq
    unpaired_scale: Decimal = Decimal("1.1")  # unpairedMMScale
    base_margin_factors: tuple[tuple[str, Decimal], ...] = ()  # (token, marginFactor)
    cash_token: str = "USDC"
    liquidation_penalty: Decimal = Decimal("0.05")  # Srm.liquidation_penalty_bps 500

    def __post_init__(self) -> None:
        for name in ("call_spot", "put_spot", "put_mtm", "liquidation_penalty"):
            value = getattr(self, name)
            if not Decimal(0) <= value <= Decimal(1):
                raise RiskInputError(f"Derive standard margin parameter {name}={value} is outside [0, 1]")
        if not Decimal(1) <= self.unpaired_scale <= Decimal(3):
            raise RiskInputError(f"Derive unpaired_scale={self.unpaired_scale} is outside [1, 3]")
        for token, factor in self.base_margin_factors:
            if not Decimal(0) <= factor <= Decimal(1):
                raise RiskInputError(f"Derive base margin factor of {token}={factor} is outside [0, 1]")

    def base_margin_factor(self, token: str) -> Decimal:
        return dict(self.base_margin_factors).get(token, Decimal(0))


MarginModel = (
    LendingModel
    | CrossPerpModel
    | IsolatedPerpModel
    | OptionsScenarioModel
    | StandardMarginModel
    | DeriveStandardModel
)


@dataclass(frozen=True, slots=True)
class AsOf:
    """When the account was read: the pinned block on a chain, or the API's own server time."""

    timestamp: datetime  # block timestamp or API server time, timezone-aware
    chain: str | None = None
    block_number: int | None = None
    block_hash: str | None = None


@dataclass(frozen=True, slots=True)
class MarginAccount:
    """The unit a venue liquidates as a whole.

    ``venue_health`` is the venue's own figure normalized to ``resources / requirement`` (``None``
    when the venue publishes none; ``Decimal('Infinity')`` for no requirement). ``quote`` is the
    numeraire of ``Position.price`` (``USD``, or ``ETH`` for Compound's WETH markets).
    """

    venue: str
    deployment: str
    account_id: str
    wallet: str
    margin_model: MarginModel
    positions: tuple[Position, ...]
    as_of: AsOf
    status: AccountStatus = AccountStatus.OK
    status_reason: str | None = None
    venue_health: Decimal | None = None
    quote: FactorId = USD
    raw: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)
    # What the venue lets the owner withdraw now, in units of the account's cash token (the SPOT
    # position: USDC on Hyperliquid ``withdrawable``, dYdX ``freeCollateral``); None when the venue
    # reports no such figure (lending venues: the rebalancing advisor applies the venue's own rule).
    # A negative figure (below initial margin) means nothing can be withdrawn.
    withdrawable: Decimal | None = None

    def __post_init__(self) -> None:
        if self.status is not AccountStatus.OK and not self.status_reason:
            raise RiskInputError(f"{self.key}: status {self.status} needs a reason")
        if self.status is AccountStatus.UNAVAILABLE and self.positions:
            raise RiskInputError(f"{self.key}: an unavailable account has no known positions")

    @property
    def key(self) -> str:
        return f"{self.deployment}/{self.account_id}"

    @property
    def chain(self) -> str | None:
        return self.as_of.chain

    @classmethod
    def unavailable(
        cls,
        *,
        venue: str,
        deployment: str,
        account_id: str,
        wallet: str,
        margin_model: MarginModel,
        as_of: AsOf,
        reason: str,
    ) -> MarginAccount:
        return cls(
            venue=venue,
            deployment=deployment,
            account_id=account_id,
            wallet=wallet,
            margin_model=margin_model,
            positions=(),
            as_of=as_of,
            status=AccountStatus.UNAVAILABLE,
            status_reason=reason,
        )


@dataclass(frozen=True, slots=True)
class Portfolio:
    """The margin accounts of one owner across wallets and venues."""

    name: str
    accounts: tuple[MarginAccount, ...]

    def __post_init__(self) -> None:
        keys = [a.key for a in self.accounts]
        duplicates = {k for k in keys if keys.count(k) > 1}
        if duplicates:
            raise RiskInputError(f"portfolio {self.name!r} lists accounts twice: {sorted(duplicates)}")

    @property
    def factors(self) -> tuple[FactorId, ...]:
        seen: dict[FactorId, None] = {}
        for account in self.accounts:
            for p in account.positions:
                seen[p.factor] = None
                if p.basis_factor is not None:
                    seen[p.basis_factor] = None
        return tuple(seen)


@dataclass(frozen=True)
class MarketState:
    """Current factor prices (USD) and their joint distribution.

    ``vols`` are annualized; ``correlation`` is indexed like ``factors``. ``betas`` give each
    factor's sensitivity to the market driver (``ETH`` by default) for market-direction moves.
    """

    factors: tuple[FactorId, ...]
    prices: Mapping[FactorId, float]
    vols: Mapping[FactorId, float]
    correlation: npt.NDArray[np.float64]
    betas: Mapping[FactorId, float]
    as_of: datetime
    driver: FactorId = FactorId("ETH")

    def __post_init__(self) -> None:
        n = len(self.factors)
        if self.correlation.shape != (n, n):
            raise RiskInputError(f"correlation is {self.correlation.shape}, expected {(n, n)}")
        for f in self.factors:
            if f not in self.prices or not math.isfinite(self.prices[f]) or self.prices[f] <= 0:
                raise RiskInputError(f"factor {f}: missing or non-positive price")
            if f not in self.vols or not math.isfinite(self.vols[f]) or self.vols[f] < 0:
                raise RiskInputError(f"factor {f}: missing or negative volatility")

    @property
    def covariance(self) -> npt.NDArray[np.float64]:
        sigma = np.array([self.vols[f] for f in self.factors], dtype=np.float64)
        cov: npt.NDArray[np.float64] = self.correlation * np.outer(sigma, sigma)
        return cov
