"""Small builders for risk tests: accounts, positions and market states with few keystrokes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from risk.model import (
    AsOf,
    CrossPerpModel,
    FactorId,
    IsolatedPerpModel,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginModel,
    MarginTier,
    MarketState,
    OptionParams,
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
)

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
ETH = FactorId("ETH")
BTC = FactorId("BTC")
USD = FactorId("USD")
AS_OF = AsOf(timestamp=NOW, chain="ethereum", block_number=1, block_hash="0x" + "0" * 64)


def D(x: float | str | int | Decimal) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def lending_params(lt: float | str = "0.825", bonus: float | str = "0.05") -> LendingParams:
    return LendingParams(ltv=D("0.5"), liquidation_threshold=D(lt), liquidation_bonus=D(bonus))


def _rate(rate: float | str | None) -> Decimal | None:
    return None if rate is None else D(rate)


def collateral(
    qty: float | str,
    price: float | str,
    factor: str = "ETH",
    lt: float | str = "0.825",
    rate: float | str | None = None,
) -> Position:
    """``rate``: the supply APR (``Position.interest_rate``), unknown when ``None``."""
    return Position(
        token=factor,
        factor=FactorId(factor),
        kind=PositionKind.COLLATERAL,
        quantity=D(qty),
        price=D(price),
        lending=lending_params(lt),
        interest_rate=_rate(rate),
    )


def debt(
    qty: float | str, price: float | str = 1, factor: str = "USD", rate: float | str | None = None
) -> Position:
    """``rate``: the borrow APR, unknown when ``None``."""
    return Position(
        token="USDC" if factor == "USD" else factor,
        factor=FactorId(factor),
        kind=PositionKind.DEBT,
        quantity=-abs(D(qty)),
        price=D(price),
        interest_rate=_rate(rate),
    )


def cash(amount: float | str) -> Position:
    return Position(
        token="USDC", factor=USD, kind=PositionKind.SPOT, quantity=D(amount), price=D(1)
    )


def perp(
    qty: float | str,
    mark: float | str,
    factor: str = "ETH",
    mmr: float | str = "0.01",
    entry: float | str | None = None,
    tiers: tuple[tuple[float | str, float | str], ...] | None = None,
    funding: float | str = 0,
) -> Position:
    """``funding``: the hourly funding rate (+: longs pay shorts)."""
    table = tiers if tiers is not None else ((0, mmr),)
    return Position(
        token=factor,
        factor=FactorId(factor),
        kind=PositionKind.PERP,
        quantity=D(qty),
        price=D(mark),
        perp=PerpParams(
            entry_price=D(entry if entry is not None else mark),
            funding_rate_hourly=D(funding),
            margin_tiers=tuple(
                MarginTier(lower_bound=D(b), maintenance_fraction=D(f)) for b, f in table
            ),
        ),
    )


def option(
    qty: float | str,
    mark: float | str,
    strike: float | str,
    days: float,
    kind: str = "call",
    iv: float | str = "0.6",
    under: float | str = 3000,
    factor: str = "ETH",
) -> Position:
    return Position(
        token=f"{factor}-{strike}-{kind[0].upper()}",
        factor=FactorId(factor),
        kind=PositionKind.OPTION,
        quantity=D(qty),
        price=D(mark),
        option=OptionParams(
            strike=D(strike),
            expiry=NOW + timedelta(days=days),
            option_type="call" if kind == "call" else "put",
            mark_iv=D(iv),
            underlying_price=D(under),
        ),
    )


def account(
    account_id: str,
    *positions: Position,
    model: MarginModel | None = None,
    venue: str = "aave_v3",
    venue_health: Decimal | None = None,
) -> MarginAccount:
    return MarginAccount(
        venue=venue,
        deployment=f"{venue}:test",
        account_id=account_id,
        wallet="0xabc",
        margin_model=model if model is not None else LendingModel(),
        positions=positions,
        as_of=AS_OF,
        venue_health=venue_health,
    )


def cross(account_id: str, *positions: Position) -> MarginAccount:
    return account(account_id, *positions, model=CrossPerpModel(), venue="hyperliquid")


def isolated(account_id: str, *positions: Position) -> MarginAccount:
    return account(account_id, *positions, model=IsolatedPerpModel(), venue="hyperliquid")


def portfolio(*accounts: MarginAccount) -> Portfolio:
    return Portfolio(name="test", accounts=tuple(accounts))


def market(
    prices: dict[str, float] | None = None,
    vols: dict[str, float] | None = None,
    betas: dict[str, float] | None = None,
    correlation: float = 0.8,
) -> MarketState:
    p = prices if prices is not None else {"ETH": 3000.0, "BTC": 60000.0}
    factors = tuple(FactorId(f) for f in p)
    v = {f: 0.7 for f in p} | (vols or {})
    b = {f: 1.0 for f in p} | (betas or {})
    n = len(factors)
    corr = np.full((n, n), correlation) + (1 - correlation) * np.eye(n)
    return MarketState(
        factors=factors,
        prices={FactorId(k): float(x) for k, x in p.items()},
        vols={FactorId(k): float(x) for k, x in v.items()},
        correlation=corr,
        betas={FactorId(k): float(x) for k, x in b.items()},
        as_of=NOW,
    )
