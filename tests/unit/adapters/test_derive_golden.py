"""Derive: instrument names, Black-76 and its inversion (checked against scipy independently), and the
normalization of the net maintenance margin into h, on a margin_watch answer in the documented shape."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from adapters import derive
from adapters.assets import AssetMap
from adapters.errors import VenueDataError, VenueUnavailable
from risk.model import DeriveStandardModel, OptionsScenarioModel, PositionKind
from tests.support.engine import engine_health


def test_parse_instrument() -> None:
    call = derive.parse_instrument("ETH-20241227-3000-C")
    assert (call.underlying, call.kind, call.strike, call.option_type) == (
        "ETH",
        "option",
        Decimal(3000),
        "call",
    )
    assert call.expiry == datetime(2024, 12, 27, 8, tzinfo=UTC)
    assert derive.parse_instrument("BTC-20250131-95000-P").option_type == "put"
    assert derive.parse_instrument("ETH-PERP").kind == "perp"
    assert derive.parse_instrument("DOGE-20250131-0_25-C").strike == Decimal("0.25")
    with pytest.raises(VenueDataError):
        derive.parse_instrument("ETH-31DEC24-3000-C")


def scipy_black76(f: float, k: float, t: float, v: float, call: bool) -> float:
    s = v * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * s * s) / s
    d2 = d1 - s
    return float(f * norm.cdf(d1) - k * norm.cdf(d2) if call else k * norm.cdf(-d2) - f * norm.cdf(-d1))


@given(st.floats(500, 5000), st.floats(0.5, 2.0), st.floats(0.01, 2.0), st.floats(0.05, 2.0), st.booleans())
def test_black76_and_inversion(f: float, moneyness: float, t: float, v: float, call: bool) -> None:
    k = f * moneyness
    price = derive.black76_price(f, k, t, v, call)
    assert price == pytest.approx(scipy_black76(f, k, t, v, call), rel=1e-9, abs=1e-9)
    vega = f * norm.pdf((math.log(f / k) + 0.5 * v * v * t) / (v * math.sqrt(t))) * math.sqrt(t)
    if vega > 1e-3:  # invertible to useful precision
        iv = derive.implied_vol(price, f, k, t, call)
        assert iv is not None and iv == pytest.approx(v, abs=1e-5)


def test_put_call_parity() -> None:
    c = derive.black76_price(3000, 3200, 0.25, 0.7, True)
    p = derive.black76_price(3000, 3200, 0.25, 0.7, False)
    assert c - p == pytest.approx(3000 - 3200, abs=1e-9)


def margin_watch(mm: str, sv: str = "10500.5", margin_type: str = "PM") -> dict[str, object]:
    """A v2 ``public/margin_watch`` answer in the documented shape (values decimal strings)."""
    mark = derive.black76_price(3000.0, 3400.0, 30 / 365, 0.62, True)
    return {
        "id": 1,
        "result": {
            "subaccount_id": 12345,
            "currency": "USDC",
            "margin_type": margin_type,
            "subaccount_value": sv,
            "initial_margin": "3000.25",
            "maintenance_margin": mm,
            "valuation_timestamp": 1764576000,
            "positions": [
                {
                    "instrument_name": "ETH-20251231-3400-C",
                    "instrument_type": "option",
                    "amount": "-2",
                    "mark_price": f"{mark:.8f}",
                    "mark_value": f"{-2 * mark:.8f}",
                    "index_price": "3000",
                    "delta": "0.25",
                    "gamma": "0.0004",
                    "vega": "2.9",
                    "theta": "-3.1",
                    "initial_margin": "-700",
                    "maintenance_margin": "-600",
                    "liquidation_price": None,
                },
                {
                    "instrument_name": "ETH-PERP",
                    "instrument_type": "perp",
                    "amount": "1.5",
                    "mark_price": "3001",
                    "mark_value": "-148.5",
                    "index_price": "3000",
                    "delta": "1",
                    "gamma": "0",
                    "vega": "0",
                    "theta": "0",
                    "initial_margin": "-292.6",
                    "maintenance_margin": "-225.075",
                    "liquidation_price": "2100.5",
                },
            ],
            "collaterals": [
                {
                    "asset_name": "USDC",
                    "asset_type": "erc20",
                    "amount": "9000",
                    "mark_price": "1",
                    "mark_value": "9000",
                    "initial_margin": "0",
                    "maintenance_margin": "0",
                }
            ],
        },
    }


def test_margin_watch_account_and_health(assets: AssetMap) -> None:
    mw = derive.parse_margin_watch(margin_watch("2500.5"))
    account = derive.margin_watch_account(mw, wallet="0xW", deployment="derive:main", assets=assets)
    assert account.venue_health == Decimal("10500.5") / Decimal("8000")
    option = next(p for p in account.positions if p.kind is PositionKind.OPTION)
    assert option.option is not None and abs(option.option.mark_iv - Decimal("0.62")) < Decimal("1e-5")
    assert option.option.expiry == datetime(2025, 12, 31, 8, tzinfo=UTC)
    perp = next(p for p in account.positions if p.kind is PositionKind.PERP)
    assert perp.perp is not None
    assert perp.perp.entry_price == Decimal(3001) + Decimal("148.5") / Decimal("1.5")  # value 0 there
    assert perp.perp.margin_tiers[0].maintenance_fraction == Decimal("225.075") / Decimal("4501.5")
    cash = account.positions[0]
    # equity (sum of position values) = collateral + option mark value + perp unsettled PnL
    assert sum(p.value for p in account.positions) == Decimal(9000) + Decimal(option.value) + Decimal(
        "-148.5"
    )
    assert cash.quantity == Decimal(9000) + Decimal("-148.5") - Decimal("1.5") * 3001
    assert account.raw["greeks"]["ETH-PERP"]["delta"] == "1"  # type: ignore[index]


@pytest.mark.parametrize(("mm", "liquidatable"), [("0.01", False), ("-0.01", True), ("-500", True)])
def test_negative_net_margin_means_h_below_one(assets: AssetMap, mm: str, liquidatable: bool) -> None:
    account = derive.margin_watch_account(
        derive.parse_margin_watch(margin_watch(mm)), wallet="0xW", deployment="derive:main", assets=assets
    )
    assert account.venue_health is not None and (account.venue_health < 1) is liquidatable


def test_rpc_error_is_unavailable() -> None:
    with pytest.raises(VenueUnavailable, match="14001"):
        derive.parse_margin_watch({"id": 1, "error": {"code": 14001, "message": "Subaccount not found"}})
    with pytest.raises(VenueDataError, match="subaccount_ids"):
        derive.parse_subaccount_ids({"id": 1, "result": {"wallet": "0x"}})


@pytest.mark.parametrize(
    ("margin_type", "model"), [("SM", DeriveStandardModel), ("PM", OptionsScenarioModel)]
)
def test_model_follows_the_margin_type(assets: AssetMap, margin_type: str, model: type) -> None:
    mw = derive.parse_margin_watch(margin_watch("2500.5", margin_type=margin_type))
    account = derive.margin_watch_account(mw, wallet="0xW", deployment="derive:main", assets=assets)
    assert isinstance(account.margin_model, model)
    assert not account.raw["warnings"]


def test_pm2_is_modelled_on_the_pm1_grid_with_a_warning(assets: AssetMap) -> None:
    mw = derive.parse_margin_watch(margin_watch("2500.5", margin_type="PM2"))
    account = derive.margin_watch_account(mw, wallet="0xW", deployment="derive:main", assets=assets)
    assert isinstance(account.margin_model, OptionsScenarioModel)
    warnings = account.raw["warnings"]
    assert isinstance(warnings, list) and any("PM2" in w for w in warnings)


def test_standard_margin_engine_equals_the_documented_rule(assets: AssetMap) -> None:
    """An "SM" answer whose figures follow the Standard Manager by hand: 2 ETH base collateral at
    3000 with marginFactor 0.8 (requirement 0.2 x 6000 = 1200), 2 short calls (0.10 x 3000 x 2 =
    600; the call alone, so no max-loss offset: unpaired 1.1 x 3000 x 2 > any isolated figure),
    1.5 long perps at mark 3001 (0.05 x 1.5 x 3001 = 225.075)."""
    raw = margin_watch("0", margin_type="SM")
    result = raw["result"]
    assert isinstance(result, dict)
    result["collaterals"].append(
        {"asset_name": "ETH", "asset_type": "erc20", "amount": "2", "mark_price": "3000", "mark_value": "6000",
         "initial_margin": "-1500", "maintenance_margin": "-1200"}
    )  # fmt: skip
    option_value = Decimal(result["positions"][0]["mark_value"])
    sv = Decimal(9000) + Decimal(6000) + option_value - Decimal("148.5")
    requirement = Decimal(1200) + Decimal(600) + Decimal("225.075")
    result["subaccount_value"] = str(sv)
    result["maintenance_margin"] = str(sv - requirement)
    account = derive.margin_watch_account(
        derive.parse_margin_watch(raw), wallet="0xW", deployment="derive:main", assets=assets
    )
    assert isinstance(account.margin_model, DeriveStandardModel)
    assert account.margin_model.base_margin_factor("ETH") == Decimal("0.8")
    health = engine_health(account, factor_price=3000.0)
    assert account.venue_health == sv / requirement
    assert health == pytest.approx(float(sv / requirement), rel=1e-9)
