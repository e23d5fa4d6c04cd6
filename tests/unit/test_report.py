"""The ``scan --json`` document: exact decimal numbers, null health semantics, stable keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from aggregator.report import (
    SCHEMA_VERSION,
    AccountOut,
    ReadOut,
    ScanReport,
    account_out,
    build_report,
    dumps,
    lending_formula_health,
)
from risk.model import (
    AsOf,
    CrossPerpModel,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    Position,
    PositionKind,
)

T = datetime(2026, 3, 1, tzinfo=UTC)
AS_OF = AsOf(timestamp=T, chain="ethereum", block_number=123, block_hash="0x" + "ab" * 32)
LT = LendingParams(ltv=Decimal("0.8"), liquidation_threshold=Decimal("0.825"), liquidation_bonus=Decimal("0.05"))


def coll(qty: str, price: str) -> Position:
    return Position(token="WETH", factor=FactorId("ETH"), kind=PositionKind.COLLATERAL,
                    quantity=Decimal(qty), price=Decimal(price), lending=LT)


def debt(qty: str, price: str) -> Position:
    return Position(token="USDC", factor=FactorId("USD"), kind=PositionKind.DEBT,
                    quantity=Decimal(qty), price=Decimal(price))


def account(*positions: Position, venue_health: Decimal | None = None) -> MarginAccount:
    return MarginAccount(venue="aave_v3", deployment="aave_v3:ethereum", account_id="0xW", wallet="0xW",
                         margin_model=LendingModel(), positions=positions, as_of=AS_OF, venue_health=venue_health)


def test_account_keys_are_the_contract() -> None:
    out = account_out(account(coll("1.5", "2000"), debt("-1000", "1")))
    data = json.loads(dumps(out.model_dump(mode="python")))
    assert set(data) >= {"venue", "deployment", "chain", "account_id", "wallet", "status", "status_reason",
                         "health", "venue_reported_health", "as_of", "positions"}
    assert data["as_of"] == {"chain": "ethereum", "block": 123, "block_hash": "0x" + "ab" * 32,
                             "timestamp": "2026-03-01T00:00:00+00:00"}
    assert set(data["positions"][0]) >= {"token", "factor", "kind", "quantity", "price", "value_usd"}
    # 1.5 * 2000 * 0.825 / 1000, independently computed
    assert Decimal(str(data["health"])) == Decimal("2.475")


def test_no_debt_is_null_health_with_a_source_and_unknown_is_null_without() -> None:
    safe = account_out(account(coll("1", "2000"), venue_health=Decimal("Infinity")))
    assert safe.health is None and safe.health_source is not None and safe.venue_reported_health is None
    down = account_out(MarginAccount.unavailable(
        venue="aave_v3", deployment="aave_v3:ethereum", account_id="0xW", wallet="0xW",
        margin_model=LendingModel(), as_of=AS_OF, reason="rpc@ethereum: all 2 RPC endpoints failed"))
    assert down.health is None and down.health_source is None and down.status == "unavailable"
    perp = account_out(MarginAccount(venue="hyperliquid", deployment="hyperliquid:main", account_id="x",
                                     wallet="0xW", margin_model=CrossPerpModel(), positions=(), as_of=AS_OF))
    assert perp.health_source in (None, "risk")


def test_wad_health_survives_the_round_trip_exactly() -> None:
    wad = Decimal("1.234567890123456789")
    report = build_report(wallets=["0xW"], accounts=[account(coll("1", "1"), debt("-1", "1"), venue_health=wad)],
                          reads=[ReadOut(deployment="aave_v3:ethereum", wallet="0xW", status="ok", reason=None,
                                         accounts=1)], generated_at=T)
    text = report.to_json()
    assert '"venue_reported_health": 1.234567890123456789' in text  # a JSON number, every digit
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION == "1"
    back = ScanReport.from_json(text)
    assert back == report
    assert back.accounts[0].venue_reported_health == wad


@given(st.decimals(allow_nan=False, allow_infinity=False, places=18, min_value=-10**30, max_value=10**30))
def test_decimal_numbers_are_exact(value: Decimal) -> None:
    text = dumps({"x": value}, indent=None)
    assert "E" not in text and "e" not in text
    assert json.loads(text, parse_float=Decimal, parse_int=Decimal)["x"] == value


@given(
    st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**5)), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**5)), min_size=1, max_size=5),
)
def test_lending_formula_scales_with_prices(colls: list[tuple[int, int]], debts: list[tuple[int, int]]) -> None:
    positions = [coll(str(q), str(p)) for q, p in colls] + [debt(str(-q), str(p)) for q, p in debts]
    h = lending_formula_health(positions)
    expected = sum(Decimal(q * p) * Decimal("0.825") for q, p in colls) / sum(Decimal(q * p) for q, p in debts)
    assert h == expected
    doubled_debt = positions[: len(colls)] + [debt(str(-q), str(2 * p)) for q, p in debts]
    assert abs(lending_formula_health(doubled_debt) * 2 - h) <= h * Decimal("1e-26")  # 28-digit context


def test_report_models_are_importable_for_extension() -> None:
    assert "positions" in AccountOut.model_fields and "health" in AccountOut.model_fields
