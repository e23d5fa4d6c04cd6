"""Compile a portfolio once into float64 arrays: the input of every vectorized figure.

``compile_book(portfolio, market) -> Book`` reads the exact ``risk.model`` objects (Decimals) and the
``MarketState`` (floats) and lays them out as numpy arrays, so that scenario work never touches a
Python object again. Conventions (the contract other risk modules build on):

Factors (``F``)
    ``Book.factors`` holds every factor of every position (primary and basis), every account's
    quote factor, the market driver when the market knows it, and ``USD``; sorted by name, so the
    layout never depends on the order of accounts. ``Book.prices0[F]`` are the current USD prices
    from ``market.prices`` (``USD`` is 1 by definition); ``vols[F]`` the annualized vols
    (``USD`` 0); ``betas[F]`` each factor's beta to the driver (driver 1, ``USD`` 0, a factor the
    market gives no beta: 0). A scenario is a matrix ``factor_prices[S, F]`` of absolute USD prices.

Accounts (``A``)
    Only ``OK`` and ``STALE`` accounts are compiled, sorted by ``MarginAccount.key`` (so every
    figure is invariant to the order of the portfolio's accounts); ``UNAVAILABLE`` ones are listed
    in ``Book.skipped`` as ``(key, reason)``. ``model[A]`` is a ``MODEL_*`` code;
    ``quote_idx[A]`` the factor index of the account's quote currency; ``penalty_rate[A]`` the
    model's liquidation penalty (perps, options); ``close_factor[A]`` the lending close factor.
    The options-scenario parameters are padded to the largest grid: ``grid_spot[A, G]``,
    ``grid_vol[A, G]`` (relative shocks; padding is the (0, 0) point, which cannot change
    ``max(0, -min PnL)``), ``mm_factor[A]``, ``contingency[A]`` (quote currency),
    ``vega_power_short[A]``, ``vega_power_long[A]``.

Positions (``N``)
    ``pos_account[N]`` (account index), ``kind[N]`` (``KIND_*`` code), ``quantity[N]`` (signed, see
    ``risk.model``), ``price0[N]`` (the venue's price, in the account's quote currency),
    ``price0_usd[N]`` (``price0 * prices0[quote]``), ``factor_idx[N]``, ``basis_idx[N]`` (``F`` when
    the position has no basis factor: index ``F`` of an extended ratio matrix whose last column is 1),
    ``lt[N]`` (lending liquidation threshold, 0 when not collateral), ``bonus[N]`` (liquidation
    bonus), ``membership[N, A]`` (one-hot float matrix: ``values[S, N] @ membership`` sums per account).

Perps (``Np``, a subset of positions)
    ``perp_pos[Np]`` (position index), ``perp_entry[Np]`` (entry price, quote), ``perp_funding[Np]``
    (accrued funding owed to the account, quote; it is added to equity, so adapters must not also
    fold it into the cash leg), ``perp_entry_basis[Np]`` (True: requirement on entry notional, GMX),
    ``perp_min_req[Np]`` (quote), tiers padded to ``T``: ``tier_bounds[Np, T]`` (notional lower
    bounds in quote; padding ``+inf``), ``tier_mmr[Np, T]``, ``tier_deduction[Np, T]`` (Hyperliquid's
    continuity: ``d_k = d_{k-1} + bound_k * (mmr_k - mmr_{k-1})``).

Options (``No``, a subset of positions)
    ``opt_pos[No]``, ``opt_strike[No]``, ``opt_expiry[No]`` (years from ``market.as_of``, 365-day
    years, floored at 0), ``opt_sign[No]`` (+1 call, -1 put), ``opt_iv[No]``, ``opt_underlying[No]``
    (the venue's underlying/forward, quote), ``opt_size[No]`` (contract size). The option's
    underlying moves with the position's ``factor`` (and ``basis_factor``). ``opt_spot[No]``: the spot
    of the venue's standard-margin formulas (``OptionParams.spot_price``, else the underlying).

Standard margin (``MODEL_STANDARD``, ``risk.model.StandardMarginModel``)
    ``sm_call_spot[A]``, ``sm_put_spot[A]``, ``sm_put_mark[A]``, ``sm_option_value[A]`` (1.0 when the
    options' value counts as resources); zeros for accounts of other models.

Derive standard margin (``MODEL_DERIVE_STANDARD``, ``risk.model.DeriveStandardModel``)
    no arrays of its own: ``risk.margin.derive_standard`` reads the parameters from the account's model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from risk.errors import RiskInputError
from risk.model import (
    USD,
    AccountStatus,
    CrossPerpModel,
    DeriveStandardModel,
    FactorId,
    IsolatedPerpModel,
    LendingModel,
    MarginAccount,
    MarketState,
    OptionsScenarioModel,
    Portfolio,
    PositionKind,
    StandardMarginModel,
)

__all__ = [
    "KIND_COLLATERAL",
    "KIND_DEBT",
    "KIND_OPTION",
    "KIND_PERP",
    "KIND_SPOT",
    "KIND_SUPPLY",
    "MODEL_CROSS_PERP",
    "MODEL_DERIVE_STANDARD",
    "MODEL_ISOLATED_PERP",
    "MODEL_LENDING",
    "MODEL_OPTIONS",
    "MODEL_STANDARD",
    "Book",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "compile_book",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

KIND_COLLATERAL, KIND_SUPPLY, KIND_DEBT, KIND_PERP, KIND_OPTION, KIND_SPOT = range(6)
_KIND_CODE = {
    PositionKind.COLLATERAL: KIND_COLLATERAL,
    PositionKind.SUPPLY: KIND_SUPPLY,
    PositionKind.DEBT: KIND_DEBT,
    PositionKind.PERP: KIND_PERP,
    PositionKind.OPTION: KIND_OPTION,
    PositionKind.SPOT: KIND_SPOT,
}
MODEL_LENDING, MODEL_CROSS_PERP, MODEL_ISOLATED_PERP, MODEL_OPTIONS = range(4)
MODEL_STANDARD = 4  # a venue's standard (per-position) margin, risk.margin.venue_standard
MODEL_DERIVE_STANDARD = 5  # Derive's Standard Manager, risk.margin.derive_standard

_YEAR_SECONDS = 365.0 * 86400.0


@dataclass(frozen=True, eq=False)
class Book:
    """A portfolio as arrays (see the module docstring for every field's meaning and unit)."""

    factors: tuple[FactorId, ...]
    prices0: FloatArray
    vols: FloatArray
    betas: FloatArray
    driver: int  # factor index of the market driver, -1 when the book has none
    usd: int  # factor index of USD
    accounts: tuple[MarginAccount, ...]
    account_keys: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    model: IntArray
    quote_idx: IntArray
    penalty_rate: FloatArray
    close_factor: FloatArray
    grid_spot: FloatArray
    grid_vol: FloatArray
    mm_factor: FloatArray
    contingency: FloatArray
    vega_power_short: FloatArray
    vega_power_long: FloatArray
    pos_account: IntArray
    kind: IntArray
    quantity: FloatArray
    price0: FloatArray
    price0_usd: FloatArray
    factor_idx: IntArray
    basis_idx: IntArray
    lt: FloatArray
    bonus: FloatArray
    membership: FloatArray
    perp_pos: IntArray
    perp_entry: FloatArray
    perp_funding: FloatArray
    perp_entry_basis: BoolArray
    perp_min_req: FloatArray
    tier_bounds: FloatArray
    tier_mmr: FloatArray
    tier_deduction: FloatArray
    opt_pos: IntArray
    opt_strike: FloatArray
    opt_expiry: FloatArray
    opt_sign: FloatArray
    opt_iv: FloatArray
    opt_underlying: FloatArray
    opt_size: FloatArray
    # standard margin (``StandardMarginModel``; zeros for other accounts): per account the short
    # call / put spot fractions, the put's mark fraction, 1.0 when option values count as resources
    sm_call_spot: FloatArray
    sm_put_spot: FloatArray
    sm_put_mark: FloatArray
    sm_option_value: FloatArray
    opt_spot: FloatArray  # [No] the option's spot for those formulas (quote; ``spot_price``)

    @property
    def n_accounts(self) -> int:
        return len(self.account_keys)

    @property
    def n_factors(self) -> int:
        return len(self.factors)

    def factor_index(self, factor: FactorId | str) -> int:
        try:
            return self.factors.index(FactorId(factor))
        except ValueError:
            raise RiskInputError(f"factor {factor!r} is not in this book") from None

    def shocked(self, moves: FloatArray) -> FloatArray:
        """Absolute factor prices ``[S, F]`` from relative moves ``[S, F]`` (``-0.1`` = -10%)."""
        prices: FloatArray = self.prices0[None, :] * (1.0 + np.asarray(moves, dtype=np.float64))
        return prices

    def market_prices(self, driver_moves: FloatArray) -> FloatArray:
        """Prices ``[S, F]`` when the driver moves by ``driver_moves[S]`` (relative) and every factor
        follows with its beta in log space: ``P_f = P0_f * (1 + m) ** beta_f`` (stays positive for
        any move > -1; ``USD`` and zero-beta factors stay put)."""
        growth = 1.0 + np.asarray(driver_moves, dtype=np.float64)
        prices: FloatArray = self.prices0[None, :] * growth[:, None] ** self.betas[None, :]
        return prices


def _f(value: Decimal) -> float:
    return float(value)


def _tiers(bounds: list[float], fractions: list[float]) -> tuple[list[float], list[float], list[float]]:
    deductions = [0.0]
    for k in range(1, len(bounds)):
        deductions.append(deductions[-1] + bounds[k] * (fractions[k] - fractions[k - 1]))
    return bounds, fractions, deductions


def _compiled_accounts(
    portfolio: Portfolio,
) -> tuple[list[MarginAccount], list[tuple[str, str]]]:
    kept: list[MarginAccount] = []
    skipped: list[tuple[str, str]] = []
    for account in sorted(portfolio.accounts, key=lambda a: a.key):
        if account.status is AccountStatus.UNAVAILABLE:
            skipped.append((account.key, account.status_reason or "unavailable"))
        else:
            kept.append(account)
    return kept, skipped


def compile_book(portfolio: Portfolio, market: MarketState) -> Book:
    """Lay ``portfolio`` out as arrays against ``market`` (prices, vols, betas, ``as_of``).

    Raises ``RiskInputError`` naming the factor when the market has no price for one the book
    needs, and naming the position when an option has no time or an unknown margin model is met.
    """
    accounts, skipped = _compiled_accounts(portfolio)

    names: set[FactorId] = {USD}
    for account in accounts:
        names.add(account.quote)
        for p in account.positions:
            names.add(p.factor)
            if p.basis_factor is not None:
                names.add(p.basis_factor)
    if market.driver in market.prices:
        names.add(market.driver)
    factors = tuple(sorted(names))
    index = {f: i for i, f in enumerate(factors)}
    n_f = len(factors)

    prices0 = np.empty(n_f)
    vols = np.zeros(n_f)
    betas = np.zeros(n_f)
    for i, f in enumerate(factors):
        if f == USD:
            prices0[i] = 1.0
            continue
        price = market.prices.get(f)
        if price is None or not math.isfinite(price) or price <= 0:
            raise RiskInputError(f"factor {f}: the market state has no positive price for it")
        prices0[i] = price
        vols[i] = float(market.vols.get(f, 0.0))
        betas[i] = 1.0 if f == market.driver else float(market.betas.get(f, 0.0))
    driver = index.get(market.driver, -1)

    n_a = len(accounts)
    model = np.zeros(n_a, dtype=np.int64)
    quote_idx = np.zeros(n_a, dtype=np.int64)
    penalty_rate = np.zeros(n_a)
    close_factor = np.zeros(n_a)
    mm_factor = np.ones(n_a)
    contingency = np.zeros(n_a)
    vps = np.zeros(n_a)
    vpl = np.zeros(n_a)
    sm_call_spot = np.zeros(n_a)
    sm_put_spot = np.zeros(n_a)
    sm_put_mark = np.zeros(n_a)
    sm_option_value = np.zeros(n_a)
    grids: list[tuple[list[float], list[float]]] = []

    pos_account: list[int] = []
    kind: list[int] = []
    quantity: list[float] = []
    price0: list[float] = []
    factor_idx: list[int] = []
    basis_idx: list[int] = []
    lt: list[float] = []
    bonus: list[float] = []
    perp_pos: list[int] = []
    perp_entry: list[float] = []
    perp_funding: list[float] = []
    perp_entry_basis: list[bool] = []
    perp_min_req: list[float] = []
    tiers: list[tuple[list[float], list[float], list[float]]] = []
    opt_pos: list[int] = []
    opt_strike: list[float] = []
    opt_expiry: list[float] = []
    opt_sign: list[float] = []
    opt_iv: list[float] = []
    opt_underlying: list[float] = []
    opt_size: list[float] = []
    opt_spot: list[float] = []

    for a, account in enumerate(accounts):
        m = account.margin_model
        quote_idx[a] = index[account.quote]
        spot_grid: list[float] = [0.0]
        vol_grid: list[float] = [0.0]
        if isinstance(m, LendingModel):
            model[a] = MODEL_LENDING
            close_factor[a] = _f(m.liquidation_close_factor)
        elif isinstance(m, CrossPerpModel):
            model[a] = MODEL_CROSS_PERP
            penalty_rate[a] = _f(m.liquidation_penalty)
        elif isinstance(m, IsolatedPerpModel):
            model[a] = MODEL_ISOLATED_PERP
            penalty_rate[a] = _f(m.liquidation_penalty)
        elif isinstance(m, OptionsScenarioModel):
            model[a] = MODEL_OPTIONS
            penalty_rate[a] = _f(m.liquidation_penalty)
            mm_factor[a] = _f(m.mm_factor)
            contingency[a] = _f(m.static_contingency)
            vps[a] = _f(m.vega_power_short)
            vpl[a] = _f(m.vega_power_long)
            spot_grid = [float(s) for s in m.spot_shocks for _ in m.vol_shocks]
            vol_grid = [float(v) for _ in m.spot_shocks for v in m.vol_shocks]
            if not spot_grid:
                raise RiskInputError(f"{account.key}: the options scenario grid is empty")
        elif isinstance(m, StandardMarginModel):
            model[a] = MODEL_STANDARD
            penalty_rate[a] = _f(m.liquidation_penalty)
            sm_call_spot[a] = _f(m.call_spot)
            sm_put_spot[a] = _f(m.put_spot)
            sm_put_mark[a] = _f(m.put_mark)
            sm_option_value[a] = 1.0 if m.option_value_counts else 0.0
        elif isinstance(m, DeriveStandardModel):
            # parameters are read from ``book.accounts[a].margin_model`` by risk.margin.derive_standard
            model[a] = MODEL_DERIVE_STANDARD
            penalty_rate[a] = _f(m.liquidation_penalty)
        else:  # pragma: no cover - MarginModel is a closed union
            raise RiskInputError(f"{account.key}: unknown margin model {m!r}")
        grids.append((spot_grid, vol_grid))

        for p in account.positions:
            n = len(kind)
            pos_account.append(a)
            kind.append(_KIND_CODE[p.kind])
            quantity.append(_f(p.quantity))
            price0.append(_f(p.price))
            factor_idx.append(index[p.factor])
            basis_idx.append(n_f if p.basis_factor is None else index[p.basis_factor])
            is_coll = p.kind is PositionKind.COLLATERAL and p.lending is not None
            lt.append(_f(p.lending.liquidation_threshold) if is_coll and p.lending else 0.0)
            bonus.append(_f(p.lending.liquidation_bonus) if is_coll and p.lending else 0.0)
            if p.kind is PositionKind.PERP and p.perp is not None:
                perp_pos.append(n)
                perp_entry.append(_f(p.perp.entry_price))
                perp_funding.append(_f(p.perp.accrued_funding))
                perp_entry_basis.append(p.perp.requirement_basis == "entry_notional")
                perp_min_req.append(_f(p.perp.min_requirement))
                tiers.append(
                    _tiers(
                        [_f(t.lower_bound) for t in p.perp.margin_tiers],
                        [_f(t.maintenance_fraction) for t in p.perp.margin_tiers],
                    )
                )
            if p.kind is PositionKind.OPTION and p.option is not None:
                o = p.option
                years = (o.expiry - market.as_of).total_seconds() / _YEAR_SECONDS
                opt_pos.append(n)
                opt_strike.append(_f(o.strike))
                opt_expiry.append(max(years, 0.0))
                opt_sign.append(1.0 if o.option_type == "call" else -1.0)
                opt_iv.append(_f(o.mark_iv))
                opt_underlying.append(_f(o.underlying_price))
                opt_size.append(_f(o.contract_size))
                opt_spot.append(_f(o.underlying_price if o.spot_price is None else o.spot_price))

    n_g = max((len(g[0]) for g in grids), default=1)
    grid_spot = np.zeros((n_a, n_g))
    grid_vol = np.zeros((n_a, n_g))
    for a, (sg, vg) in enumerate(grids):
        grid_spot[a, : len(sg)] = sg
        grid_vol[a, : len(vg)] = vg

    n_t = max((len(t[0]) for t in tiers), default=1)
    n_p = len(perp_pos)
    tier_bounds = np.full((n_p, n_t), np.inf)
    tier_mmr = np.zeros((n_p, n_t))
    tier_deduction = np.zeros((n_p, n_t))
    for j, (b, f_, d) in enumerate(tiers):
        tier_bounds[j, : len(b)] = b
        tier_mmr[j, : len(f_)] = f_
        tier_deduction[j, : len(d)] = d

    n_n = len(kind)
    pos_account_a = np.asarray(pos_account, dtype=np.int64).reshape(n_n)
    membership = np.zeros((n_n, n_a))
    membership[np.arange(n_n), pos_account_a] = 1.0
    price0_a = np.asarray(price0, dtype=np.float64).reshape(n_n)
    price0_usd = price0_a * prices0[quote_idx[pos_account_a]] if n_n else price0_a

    def fa(values: list[float]) -> FloatArray:
        return np.asarray(values, dtype=np.float64).reshape(len(values))

    def ia(values: list[int]) -> IntArray:
        return np.asarray(values, dtype=np.int64).reshape(len(values))

    return Book(
        factors=factors,
        prices0=prices0,
        vols=vols,
        betas=betas,
        driver=driver,
        usd=index[USD],
        accounts=tuple(accounts),
        account_keys=tuple(a.key for a in accounts),
        skipped=tuple(skipped),
        model=model,
        quote_idx=quote_idx,
        penalty_rate=penalty_rate,
        close_factor=close_factor,
        grid_spot=grid_spot,
        grid_vol=grid_vol,
        mm_factor=mm_factor,
        contingency=contingency,
        vega_power_short=vps,
        vega_power_long=vpl,
        pos_account=pos_account_a,
        kind=ia(kind),
        quantity=fa(quantity),
        price0=price0_a,
        price0_usd=price0_usd,
        factor_idx=ia(factor_idx),
        basis_idx=ia(basis_idx),
        lt=fa(lt),
        bonus=fa(bonus),
        membership=membership,
        perp_pos=ia(perp_pos),
        perp_entry=fa(perp_entry),
        perp_funding=fa(perp_funding),
        perp_entry_basis=np.asarray(perp_entry_basis, dtype=np.bool_).reshape(n_p),
        perp_min_req=fa(perp_min_req),
        tier_bounds=tier_bounds,
        tier_mmr=tier_mmr,
        tier_deduction=tier_deduction,
        opt_pos=ia(opt_pos),
        opt_strike=fa(opt_strike),
        opt_expiry=fa(opt_expiry),
        opt_sign=fa(opt_sign),
        opt_iv=fa(opt_iv),
        opt_underlying=fa(opt_underlying),
        opt_size=fa(opt_size),
        sm_call_spot=sm_call_spot,
        sm_put_spot=sm_put_spot,
        sm_put_mark=sm_put_mark,
        sm_option_value=sm_option_value,
        opt_spot=fa(opt_spot),
    )
