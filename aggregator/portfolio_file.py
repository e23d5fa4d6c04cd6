"""Read a portfolio file (TOML or JSON, ``docs/portfolio-file.md``) into ``risk.model`` objects.

The file holds accounts with their positions and parameters (the margin model by name, a venue's
preset from ``aggregator.margin_models``), factor prices, and optionally vols and a correlation
matrix; it is parsed strictly (pydantic, unknown keys rejected, numbers read as exact
``Decimal``: TOML/JSON floats never pass through binary floats). Token -> factor comes from the
position's own ``factor``/``basis`` keys, else from the configured asset map (``config/assets.toml``).
The market state is built by ``risk.market.estimate_market`` from the file's prices, vols and
correlation, with ``config/risk.toml`` defaults for what the file leaves out.

Every error is a ``PortfolioFileError`` (exit 2) that names the file and the item
(``accounts[1].positions[0] (USDC debt)``): unknown factor (neither priced nor a configured factor),
missing price, a negative quantity where none is allowed, a correlation that is not one.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.config import AssetSpec, RiskSettings
from aggregator.errors import InputError
from aggregator.margin_models import DERIVE_STANDARD, OPTIONS_PRESETS, STANDARD_PRESETS, ModelName
from risk.errors import RiskInputError
from risk.market import estimate_market
from risk.model import (
    USD,
    AsOf,
    CrossPerpModel,
    DeriveStandardModel,
    FactorId,
    IsolatedPerpModel,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginModel,
    MarginTier,
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
from risk.params import RiskParams

__all__ = ["PortfolioFile", "PortfolioFileError", "PortfolioInput", "load_portfolio_file"]


class PortfolioFileError(InputError):
    """A portfolio file that cannot be used; the message names the file and the item."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PositionIn(_Strict):
    token: str
    kind: Literal["collateral", "supply", "debt", "perp", "option", "spot"]
    quantity: Decimal  # signed exposure: debt <= 0, short perp/option < 0
    price: Annotated[Decimal, Field(ge=0)] | None = None  # default: factor price x basis price / quote
    factor: str | None = None
    basis: str | None = None
    price_source: Literal["oracle", "mark", "index", "ticker"] = "oracle"
    interest_rate: Decimal | None = None  # annual: supply APR (collateral) or borrow APR (debt)
    # lending
    ltv: Decimal | None = None
    liquidation_threshold: Decimal | None = None
    liquidation_bonus: Decimal | None = None
    # perp
    entry_price: Decimal | None = None
    maintenance_fraction: Decimal | None = None  # a single tier
    margin_tiers: tuple[tuple[Decimal, Decimal], ...] | None = None  # [[lower_bound, fraction], ...]
    accrued_funding: Decimal = Decimal(0)
    funding_rate_hourly: Decimal = Decimal(0)
    requirement_basis: Literal["mark_notional", "entry_notional"] = "mark_notional"
    min_requirement: Decimal = Decimal(0)
    # option
    strike: Decimal | None = None
    expiry: datetime | None = None
    option_type: Literal["call", "put"] | None = None
    mark_iv: Decimal | None = None
    underlying_price: Decimal | None = None
    contract_size: Decimal = Decimal(1)
    spot_price: Annotated[Decimal, Field(gt=0)] | None = None  # standard margin's spot (default underlying)


class AccountIn(_Strict):
    venue: str
    account_id: str
    deployment: str | None = None  # default "<venue>:file"
    wallet: str = ""
    model: ModelName
    quote: str = "USD"
    venue_health: Decimal | None = None
    close_factor: Decimal = Decimal("0.5")  # lending
    liquidation_penalty: Decimal | None = None  # perps / options
    # options_scenario grid ("derive"/"deribit"); standard_margin: the venue's rule ("aevo"/"deribit");
    # derive_standard: "derive" (the adapter's fractions, also the default)
    preset: Literal["derive", "deribit", "aevo"] | None = None
    spot_shocks: tuple[Decimal, ...] | None = None
    vol_shocks: tuple[Decimal, ...] | None = None
    mm_factor: Decimal = Decimal(1)
    static_contingency: Decimal = Decimal(0)
    # standard_margin (risk.model.StandardMarginModel; default: its own defaults, Aevo's rule) and
    # derive_standard (risk.model.DeriveStandardModel; call_spot, put_spot shared)
    call_spot: Decimal | None = None
    put_spot: Decimal | None = None
    put_mark: Decimal | None = None
    option_value_counts: bool | None = None
    put_mtm: Decimal | None = None
    unpaired_scale: Decimal | None = None
    base_margin_factors: dict[str, Decimal] | None = None  # token -> marginFactor
    cash_token: str | None = None
    positions: tuple[PositionIn, ...] = ()


class CorrelationIn(_Strict):
    factors: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]


class PortfolioFile(_Strict):
    name: str = "portfolio"
    as_of: datetime | None = None
    prices: dict[str, Annotated[Decimal, Field(gt=0)]]
    vols: dict[str, Annotated[float, Field(ge=0)]] = {}
    correlation: CorrelationIn | None = None
    accounts: tuple[AccountIn, ...]


@dataclass(frozen=True, slots=True)
class PortfolioInput:
    portfolio: Portfolio
    market: MarketState
    params: RiskParams
    warnings: tuple[str, ...]


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PortfolioFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw, parse_float=Decimal)
        else:
            data = tomllib.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise PortfolioFileError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise PortfolioFileError(f"{path}: expected a table/object at the top level")
    return data


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(path: Path, data: Mapping[str, Any]) -> PortfolioFile:
    try:
        return PortfolioFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _loc(tuple(first["loc"]))
        more = len(exc.errors()) - 1
        tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        got = f" (got {first['input']!r})" if "input" in first and first["type"] != "missing" else ""
        raise PortfolioFileError(f"{path}: {where}: {first['msg']}{got}{tail}") from None


class _Context:
    def __init__(self, path: Path, doc: PortfolioFile, assets: Mapping[str, AssetSpec]) -> None:
        self.path = path
        self.doc = doc
        self.assets = assets
        self.known = {FactorId(a.factor) for a in assets.values()} | {
            FactorId(a.basis) for a in assets.values() if a.basis
        }
        self.prices: dict[FactorId, Decimal] = {FactorId(k): v for k, v in doc.prices.items()}
        self.prices.setdefault(USD, Decimal(1))

    def fail(self, where: str, message: str) -> PortfolioFileError:
        return PortfolioFileError(f"{self.path}: {where}: {message}")

    def factor(self, name: str, where: str) -> FactorId:
        f = FactorId(name)
        if f not in self.prices:
            if f not in self.known:
                raise self.fail(
                    where, f"unknown factor {name!r} (not in [prices] and not a configured factor)"
                )
            raise self.fail(where, f"missing price for factor {name!r}: add it to [prices]")
        return f


_RULE_KEYS: dict[str, tuple[str, ...]] = {
    "standard_margin": ("call_spot", "put_spot", "put_mark", "option_value_counts"),
    "derive_standard": (
        "call_spot", "put_spot", "put_mtm", "unpaired_scale", "base_margin_factors", "cash_token"
    ),
}
"""model -> the rule parameters only that model takes (an error on any other model)."""


def _given(acc: AccountIn, model: str) -> dict[str, Any]:
    """The ``model``'s rule parameters the account sets, and its ``liquidation_penalty``."""
    given = {k: getattr(acc, k) for k in _RULE_KEYS[model] if getattr(acc, k) is not None}
    if acc.liquidation_penalty is not None:
        given["liquidation_penalty"] = acc.liquidation_penalty
    return given


def _check_rule_keys(acc: AccountIn, ctx: _Context, where: str) -> None:
    """Rule parameters set on a model that does not take them are an error naming the models that do."""
    misplaced: dict[str, list[str]] = {}
    for key in dict.fromkeys(k for keys in _RULE_KEYS.values() for k in keys):
        takers = [m for m, keys in _RULE_KEYS.items() if key in keys]
        if getattr(acc, key) is not None and acc.model not in takers:
            misplaced.setdefault(" or ".join(takers), []).append(key)
    if misplaced:
        reasons = [f"{', '.join(ks)} given, but only a {m} account takes them" for m, ks in misplaced.items()]
        raise ctx.fail(where, "; ".join(reasons))


def _standard_model(acc: AccountIn, ctx: _Context, where: str) -> StandardMarginModel:
    """``StandardMarginModel`` from ``preset`` (the adapter's own model) and/or the explicit keys."""
    if acc.preset is not None and acc.preset not in STANDARD_PRESETS:
        raise ctx.fail(where, 'a standard_margin account takes preset = "aevo" or "deribit"')
    base = StandardMarginModel() if acc.preset is None else STANDARD_PRESETS[acc.preset]
    return replace(base, **_given(acc, "standard_margin"))


def _derive_standard_model(acc: AccountIn, ctx: _Context, where: str) -> DeriveStandardModel:
    """``DeriveStandardModel``: the Derive adapter's option fractions (``preset = "derive"`` or none)
    overridden by the explicit keys; ``base_margin_factors`` a table token -> marginFactor."""
    if acc.preset not in (None, "derive"):
        raise ctx.fail(where, 'a derive_standard account takes preset = "derive" (or none)')
    given = _given(acc, "derive_standard")
    if acc.base_margin_factors is not None:
        given["base_margin_factors"] = tuple(acc.base_margin_factors.items())
    return replace(DERIVE_STANDARD, **given)


def _margin_model(acc: AccountIn, ctx: _Context, where: str) -> MarginModel:
    penalty = acc.liquidation_penalty
    _check_rule_keys(acc, ctx, where)
    if acc.model == "standard_margin":
        return _standard_model(acc, ctx, where)
    if acc.model == "derive_standard":
        return _derive_standard_model(acc, ctx, where)
    if acc.preset == "aevo":
        raise ctx.fail(where, 'preset "aevo" only applies to a standard_margin account')
    if acc.model == "lending":
        return LendingModel(liquidation_close_factor=acc.close_factor)
    if acc.model == "cross_perp":
        return CrossPerpModel() if penalty is None else CrossPerpModel(liquidation_penalty=penalty)
    if acc.model == "isolated_perp":
        return IsolatedPerpModel() if penalty is None else IsolatedPerpModel(liquidation_penalty=penalty)
    if acc.preset is not None and (acc.spot_shocks or acc.vol_shocks):
        raise ctx.fail(where, "give either preset or spot_shocks/vol_shocks, not both")
    if acc.preset is not None:
        base = OPTIONS_PRESETS[acc.preset]
        spot, vol, mm = base.spot_shocks, base.vol_shocks, base.mm_factor
    elif acc.spot_shocks and acc.vol_shocks:
        spot, vol, mm = acc.spot_shocks, acc.vol_shocks, acc.mm_factor
    else:
        raise ctx.fail(where, "an options_scenario account needs preset = \"derive\"|\"deribit\" or "
                              "spot_shocks and vol_shocks")
    model = OptionsScenarioModel(
        spot_shocks=spot, vol_shocks=vol, mm_factor=mm, static_contingency=acc.static_contingency
    )
    return model if penalty is None else replace(model, liquidation_penalty=penalty)


def _position(p: PositionIn, acc: AccountIn, ctx: _Context, where: str, as_of: datetime) -> Position:
    asset = ctx.assets.get(p.token)
    if p.factor is None and asset is None:
        raise ctx.fail(where, f"unknown token {p.token!r}: give its factor (and basis), or add it to assets")
    factor_name = p.factor if p.factor is not None else (asset.factor if asset else "")
    factor = ctx.factor(factor_name, f"{where}.factor")
    basis_name = p.basis if p.basis is not None or p.factor is not None else (asset.basis if asset else None)
    basis = None if basis_name is None else ctx.factor(basis_name, f"{where}.basis")
    quote = ctx.factor(acc.quote, "quote")
    kind = PositionKind(p.kind)
    if kind in (PositionKind.COLLATERAL, PositionKind.SUPPLY) and p.quantity < 0:
        raise ctx.fail(where, f"{p.kind} quantity must be >= 0, got {p.quantity}")
    if kind is PositionKind.DEBT and p.quantity > 0:
        raise ctx.fail(where, f"debt quantity is signed exposure and must be <= 0, got {p.quantity}")
    price = p.price
    if price is None:
        price = ctx.prices[factor] * (ctx.prices[basis] if basis else Decimal(1)) / ctx.prices[quote]
    lending = perp = option = None
    if kind is PositionKind.COLLATERAL:
        if p.liquidation_threshold is None:
            raise ctx.fail(where, "collateral needs liquidation_threshold")
        lt = p.liquidation_threshold
        lending = LendingParams(ltv=p.ltv if p.ltv is not None else lt,
                                liquidation_threshold=lt,
                                liquidation_bonus=p.liquidation_bonus or Decimal(0))
    if kind is PositionKind.PERP:
        if p.margin_tiers is not None:
            tiers = tuple(MarginTier(lower_bound=b, maintenance_fraction=f) for b, f in p.margin_tiers)
        elif p.maintenance_fraction is not None:
            tiers = (MarginTier(lower_bound=Decimal(0), maintenance_fraction=p.maintenance_fraction),)
        else:
            raise ctx.fail(where, "a perp needs maintenance_fraction or margin_tiers")
        perp = PerpParams(
            entry_price=p.entry_price if p.entry_price is not None else price, margin_tiers=tiers,
            accrued_funding=p.accrued_funding, funding_rate_hourly=p.funding_rate_hourly,
            requirement_basis=p.requirement_basis, min_requirement=p.min_requirement,
        )
    if kind is PositionKind.OPTION:
        missing = [n for n in ("strike", "expiry", "option_type", "mark_iv") if getattr(p, n) is None]
        if missing:
            raise ctx.fail(where, f"an option needs {', '.join(missing)}")
        assert p.strike is not None and p.expiry is not None and p.option_type is not None
        assert p.mark_iv is not None
        expiry = p.expiry if p.expiry.tzinfo else p.expiry.replace(tzinfo=UTC)
        underlying = p.underlying_price
        if underlying is None:
            underlying = ctx.prices[factor] * (ctx.prices[basis] if basis else Decimal(1)) / ctx.prices[quote]
        option = OptionParams(strike=p.strike, expiry=expiry, option_type=p.option_type, mark_iv=p.mark_iv,
                              underlying_price=underlying, contract_size=p.contract_size,
                              spot_price=p.spot_price)
        if p.price is None:
            from risk.options import black76_price

            years = max((expiry - as_of).total_seconds(), 0.0) / (365.0 * 86400.0)
            mark = float(black76_price(float(underlying), float(p.strike), years, float(p.mark_iv),
                                       p.option_type == "call"))
            price = Decimal(repr(mark))
    return Position(
        token=p.token, factor=factor, kind=kind, quantity=p.quantity, price=price,
        price_source=PriceSource(p.price_source), basis_factor=basis,
        lending=lending, perp=perp, option=option, interest_rate=p.interest_rate,
    )


def load_portfolio_file(
    path: Path, *, assets: Mapping[str, AssetSpec], settings: RiskSettings, now: datetime | None = None
) -> PortfolioInput:
    """Parse ``path`` strictly and build the portfolio, its market state and the risk parameters."""
    doc = _parse(path, _read(path))
    ctx = _Context(path, doc, assets)
    as_of = doc.as_of or now or datetime.now(UTC)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    accounts: list[MarginAccount] = []
    for i, acc in enumerate(doc.accounts):
        where = f"accounts[{i}] ({acc.venue} {acc.account_id})"
        try:
            model = _margin_model(acc, ctx, where)
            positions = tuple(
                _position(p, acc, ctx, f"accounts[{i}].positions[{j}] ({p.token} {p.kind})", as_of)
                for j, p in enumerate(acc.positions)
            )
            accounts.append(MarginAccount(
                venue=acc.venue, deployment=acc.deployment or f"{acc.venue}:file", account_id=acc.account_id,
                wallet=acc.wallet, margin_model=model, positions=positions, as_of=AsOf(timestamp=as_of),
                venue_health=acc.venue_health, quote=FactorId(acc.quote),
            ))
        except RiskInputError as exc:
            raise ctx.fail(where, str(exc)) from None
    try:
        portfolio = Portfolio(name=doc.name, accounts=tuple(accounts))
    except RiskInputError as exc:
        raise ctx.fail("accounts", str(exc)) from None

    params = settings.to_params()
    for name in doc.vols:
        ctx.factor(name, f"vols.{name}")
    factors = [f for f in ctx.prices if f != USD] + [USD]
    for f in portfolio.factors:
        if f not in factors:
            factors.append(f)
    correlation = None
    corr_factors: list[FactorId] | None = None
    if doc.correlation is not None:
        corr_factors = [ctx.factor(f, "correlation.factors") for f in doc.correlation.factors]
        try:
            correlation = np.array(doc.correlation.matrix, dtype=np.float64)
        except ValueError:
            raise ctx.fail("correlation.matrix", "must be a square list of rows") from None
    try:
        estimate = estimate_market(
            factors,
            {f: float(v) for f, v in ctx.prices.items()},
            params,
            as_of=as_of,
            vols={FactorId(k): v for k, v in doc.vols.items()},
            correlation=correlation,
            correlation_factors=corr_factors,
        )
    except RiskInputError as exc:
        raise PortfolioFileError(f"{path}: {exc}") from None
    return PortfolioInput(portfolio=portfolio, market=estimate.state, params=params,
                          warnings=estimate.warnings)

