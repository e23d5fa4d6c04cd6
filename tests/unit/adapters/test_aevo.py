"""Aevo golden tests through the pure parser, on the fixtures built in the documented shapes
(tests/fixtures/aevo/README.md says where each shape comes from)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.aevo import MODEL, AevoAccount, AevoPosition, IndexPrice, aevo_account
from adapters.assets import AssetMap
from adapters.errors import VenueDataError
from adapters.http import parse_model
from risk.model import AsOf, PositionKind
from tests.unit.adapters.conftest import load_fixture

WALLET = "0x1111111111111111111111111111111111111111"
AS_OF = AsOf(timestamp=datetime(2026, 11, 21, tzinfo=UTC))


def _read() -> tuple[AevoAccount, list[AevoPosition], dict[str, Decimal]]:
    account = parse_model(AevoAccount, load_fixture("aevo", "account.json"), venue="aevo", what="account")
    positions = [
        parse_model(AevoPosition, p, venue="aevo", what="positions")
        for p in load_fixture("aevo", "positions.json")["positions"]
    ]
    index = parse_model(IndexPrice, load_fixture("aevo", "index_eth.json"), venue="aevo", what="index").price
    return account, positions, {"ETH": index}


def test_equity_health_and_positions(assets: AssetMap) -> None:
    account, positions, index = _read()
    result = aevo_account(
        account, positions, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
    )
    assert result is not None and result.as_of == AS_OF and result.margin_model == MODEL
    # our equity (sum of position values) is the venue's equity, exactly
    assert sum((p.value for p in result.positions), Decimal(0)) == Decimal("18931.25")
    # independent: USDC 20000 + WETH 3000 - 5 short calls at 853.75 + 2 x (3000 - 2900)
    assert Decimal(20000) + 3000 - 5 * Decimal("853.75") + 2 * 100 == Decimal("18931.25")
    assert result.venue_health == Decimal("18931.25") / Decimal("2468.5")
    option = next(p for p in result.positions if p.kind is PositionKind.OPTION)
    assert option.quantity == -5 and option.option is not None
    assert option.option.strike == 3500 and option.option.option_type == "call"
    assert option.option.expiry == datetime(2030, 12, 27, 8, tzinfo=UTC)
    assert option.option.mark_iv == Decimal("0.6") and option.option.underlying_price == 3000
    perp = next(p for p in result.positions if p.kind is PositionKind.PERP)
    assert perp.perp is not None and perp.perp.entry_price == 2900 and perp.perp.oracle_price == 3000
    assert perp.perp.margin_tiers[0].maintenance_fraction == Decimal(200) / Decimal(6000)
    weth = next(p for p in result.positions if p.token == "WETH")
    assert weth.factor == "ETH" and weth.price == 3000
    assert result.raw["greeks"]["ETH-27DEC30-3500-C"]["vega"] == "12.5"


def test_collaterals_list_under_either_name() -> None:
    raw = load_fixture("aevo", "account.json")
    raw["collaterals"] = raw.pop("collateral")
    account = parse_model(AevoAccount, raw, venue="aevo", what="account")
    assert [c.collateral_asset for c in account.collaterals] == ["USDC", "WETH"]


@pytest.mark.parametrize("drop", ["equity", "maintenance_margin", "account"])
def test_missing_account_field_names_it(drop: str) -> None:
    raw = load_fixture("aevo", "account.json")
    del raw[drop]
    with pytest.raises(VenueDataError, match=drop):
        parse_model(AevoAccount, raw, venue="aevo", what="account")


def test_number_instead_of_decimal_string_is_rejected() -> None:
    raw = load_fixture("aevo", "positions.json")["positions"][1]
    raw["mark_price"] = 3000.0
    with pytest.raises(VenueDataError, match="mark_price"):
        parse_model(AevoPosition, raw, venue="aevo", what="positions")


def test_option_without_option_object_and_negative_amount(assets: AssetMap) -> None:
    account, positions, index = _read()
    broken = [positions[0].model_copy(update={"option": None})]
    with pytest.raises(VenueDataError, match="option object"):
        aevo_account(
            account, broken, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
        )
    negative = [positions[1].model_copy(update={"amount": Decimal(-2)})]
    with pytest.raises(VenueDataError, match="negative"):
        aevo_account(
            account, negative, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
        )


def test_in_liquidation_disagreement_is_warned(assets: AssetMap) -> None:
    account, positions, index = _read()
    flagged = account.model_copy(update={"in_liquidation": True})
    result = aevo_account(
        flagged, positions, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
    )
    assert result is not None and any("in_liquidation" in w for w in result.raw["warnings"])
