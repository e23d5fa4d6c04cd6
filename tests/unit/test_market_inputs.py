"""The reference factor price of a cycle: what counts as an observation of a factor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aggregator.market_inputs import reference_prices
from risk.model import (
    AsOf,
    FactorId,
    MarginAccount,
    OptionParams,
    OptionsScenarioModel,
    Position,
    PositionKind,
    PriceSource,
)

NOW = datetime(2026, 11, 21, tzinfo=UTC)
BTC = FactorId("BTC")


def _option_account(venue: str, premium: str, index: str, spot: str | None) -> MarginAccount:
    option = Position(
        token="BTC-27DEC26-70000-C",
        factor=BTC,
        kind=PositionKind.OPTION,
        quantity=Decimal(-1),
        price=Decimal(premium),
        price_source=PriceSource.MARK,
        option=OptionParams(
            strike=Decimal(70000),
            expiry=NOW + timedelta(days=36),
            option_type="call",
            mark_iv=Decimal("0.5"),
            underlying_price=Decimal(index),
            spot_price=None if spot is None else Decimal(spot),
        ),
    )
    cash = Position(token="USDC", factor=FactorId("USD"), kind=PositionKind.SPOT, quantity=Decimal(50000),
                    price=Decimal(1))
    return MarginAccount(venue=venue, deployment=f"{venue}:main", account_id="a", wallet="0xW",
                         margin_model=OptionsScenarioModel(spot_shocks=(Decimal("-0.1"), Decimal("0.1")), vol_shocks=(Decimal(0),)), positions=(cash, option), as_of=AsOf(timestamp=NOW))


def test_an_option_observes_its_underlying_not_its_premium() -> None:
    # premiums of a few thousand USD must not drag the BTC reference away from ~65,000
    quotes, warnings = reference_prices([
        _option_account("derive", "7446.75", "65100", None),   # forward only
        _option_account("deribit", "7300", "65150", "65000"),  # index given: it wins over the forward
    ])
    assert quotes[BTC].price == (65100 + 65000) / 2
    assert not [w for w in warnings if "spread" in w]


def _wbtc_account(price: str) -> MarginAccount:
    from risk.model import LendingModel, LendingParams

    wbtc = Position(token="WBTC", factor=BTC, basis_factor=FactorId("WBTC/BTC"), kind=PositionKind.COLLATERAL,
                    quantity=Decimal(1), price=Decimal(price),
                    lending=LendingParams(liquidation_threshold=Decimal("0.8"), ltv=Decimal("0.75"),
                                          liquidation_bonus=Decimal("0.05")))
    return MarginAccount(venue="aave_v3", deployment="aave_v3:x", account_id="w", wallet="0xW",
                         margin_model=LendingModel(), positions=(wbtc,), as_of=AsOf(timestamp=NOW))


def test_a_factor_held_only_through_a_basis_token_is_derived_from_it() -> None:
    # BTC only as WBTC: no direct BTC price, yet the cycle must not fail
    quotes, warnings = reference_prices([_wbtc_account("64000")])
    assert (quotes[BTC].price, quotes[FactorId("WBTC/BTC")].price) == (64000.0, 1.0)
    assert any("derived from WBTC/BTC" in w for w in warnings)
    # with a stored basis of 0.99 the reference is the token price over it, and the basis stays 0.99
    quotes, _ = reference_prices([_wbtc_account("64000")], stored={"WBTC/BTC": 0.99})
    assert quotes[BTC].price == 64000 / 0.99
    assert abs(quotes[FactorId("WBTC/BTC")].price - 0.99) < 1e-15
