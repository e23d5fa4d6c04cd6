"""The vocabulary rejects impossible positions and accounts, naming the item."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from risk.errors import RiskInputError
from risk.model import (
    AccountStatus,
    AsOf,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginTier,
    MarketState,
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
)

NOW = datetime(2026, 11, 21, tzinfo=UTC)
ETH = FactorId("ETH")
LP = LendingParams(
    ltv=Decimal("0.8"), liquidation_threshold=Decimal("0.825"), liquidation_bonus=Decimal("0.05")
)


def weth(quantity: str) -> Position:
    return Position(
        token="WETH",
        factor=ETH,
        kind=PositionKind.COLLATERAL,
        quantity=Decimal(quantity),
        price=Decimal(2500),
        lending=LP,
    )


def account(account_id: str, *positions: Position) -> MarginAccount:
    return MarginAccount(
        venue="aave_v3",
        deployment="aave_v3:ethereum",
        account_id=account_id,
        wallet=account_id,
        margin_model=LendingModel(),
        positions=positions,
        as_of=AsOf(timestamp=NOW, chain="ethereum", block_number=1, block_hash="0x" + "0" * 64),
    )


def test_signed_value() -> None:
    debt = Position(
        token="USDC",
        factor=FactorId("USD"),
        kind=PositionKind.DEBT,
        quantity=Decimal(-1000),
        price=Decimal(1),
    )
    assert weth("2").value == Decimal(5000)
    assert debt.value == Decimal(-1000)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"kind": PositionKind.COLLATERAL, "quantity": Decimal(-1), "lending": LP}, "must be >= 0"),
        ({"kind": PositionKind.DEBT, "quantity": Decimal(1)}, "must be <= 0"),
        ({"kind": PositionKind.COLLATERAL, "quantity": Decimal(1)}, "lending parameters"),
        ({"kind": PositionKind.PERP, "quantity": Decimal(1)}, "perp parameters"),
        ({"kind": PositionKind.OPTION, "quantity": Decimal(1)}, "option parameters"),
        ({"kind": PositionKind.SPOT, "quantity": Decimal(1), "price": Decimal(-2)}, "negative price"),
    ],
)
def test_impossible_positions(kwargs: dict[str, object], needle: str) -> None:
    base: dict[str, object] = {"token": "TKN", "factor": ETH, "price": Decimal(1)}
    with pytest.raises(RiskInputError, match=needle) as info:
        Position(**(base | kwargs))  # type: ignore[arg-type]
    assert "TKN" in str(info.value)


def test_lending_parameters_bounds() -> None:
    with pytest.raises(RiskInputError, match="liquidation_threshold"):
        LendingParams(ltv=Decimal("0.8"), liquidation_threshold=Decimal("82.5"), liquidation_bonus=Decimal(0))


def test_perp_tiers_must_start_at_zero_and_be_sorted() -> None:
    with pytest.raises(RiskInputError):
        PerpParams(entry_price=Decimal(1), margin_tiers=())
    with pytest.raises(RiskInputError):
        PerpParams(entry_price=Decimal(1), margin_tiers=(MarginTier(Decimal(10), Decimal("0.01")),))


def test_unavailable_account_needs_reason_and_has_no_positions() -> None:
    acct = MarginAccount.unavailable(
        venue="aave_v3",
        deployment="aave_v3:ethereum",
        account_id="0xabc",
        wallet="0xabc",
        margin_model=LendingModel(),
        as_of=AsOf(timestamp=NOW),
        reason="RPC timed out",
    )
    assert acct.status is AccountStatus.UNAVAILABLE
    with pytest.raises(RiskInputError, match="needs a reason"):
        MarginAccount(
            venue="x",
            deployment="x:y",
            account_id="1",
            wallet="1",
            margin_model=LendingModel(),
            positions=(),
            as_of=AsOf(timestamp=NOW),
            status=AccountStatus.STALE,
        )


def test_portfolio_rejects_duplicate_accounts_and_lists_factors() -> None:
    a = account("0x1", weth("1"))
    with pytest.raises(RiskInputError, match="twice"):
        Portfolio(name="p", accounts=(a, a))
    assert Portfolio(name="p", accounts=(a,)).factors == (ETH,)


def test_market_state_checks_shapes_and_prices() -> None:
    with pytest.raises(RiskInputError, match="correlation"):
        MarketState(
            factors=(ETH,),
            prices={ETH: 2500.0},
            vols={ETH: 0.7},
            correlation=np.eye(2),
            betas={ETH: 1.0},
            as_of=NOW,
        )
    with pytest.raises(RiskInputError, match="ETH"):
        MarketState(
            factors=(ETH,),
            prices={ETH: 0.0},
            vols={ETH: 0.7},
            correlation=np.eye(1),
            betas={ETH: 1.0},
            as_of=NOW,
        )
    state = MarketState(
        factors=(ETH,),
        prices={ETH: 2500.0},
        vols={ETH: 0.5},
        correlation=np.eye(1),
        betas={ETH: 1.0},
        as_of=NOW,
    )
    assert state.covariance[0, 0] == pytest.approx(0.25)
