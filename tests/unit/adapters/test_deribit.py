"""Deribit golden tests through the pure parsers, on the documented examples (tests/fixtures/deribit)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.assets import AssetMap
from adapters.deribit import (
    AccountSummary,
    Instrument,
    RpcPosition,
    attribute,
    parse_result,
    redact,
    summary_account,
)
from adapters.errors import VenueDataError, VenueUnavailable
from adapters.http import parse_model
from risk.model import AsOf, PositionKind
from tests.unit.adapters.conftest import load_fixture

WALLET = "0x1111111111111111111111111111111111111111"
AS_OF = AsOf(timestamp=datetime(2023, 6, 21, tzinfo=UTC))


def _doc() -> tuple[AccountSummary, list[RpcPosition], dict[str, Instrument], int | None]:
    result, us_out = parse_result(load_fixture("deribit", "get_account_summary_doc.json"), "summary")
    summary = parse_model(AccountSummary, result, venue="deribit", what="summary")
    raw_positions, _ = parse_result(load_fixture("deribit", "get_positions_doc.json"), "positions")
    assert isinstance(raw_positions, list)
    positions = [parse_model(RpcPosition, p, venue="deribit", what="positions") for p in raw_positions]
    inst_raw, _ = parse_result(load_fixture("deribit", "get_instrument_btc_perpetual.json"), "instrument")
    inst = parse_model(Instrument, inst_raw, venue="deribit", what="instrument")
    return summary, positions, {inst.instrument_name: inst}, us_out


def test_doc_example_health_equity_and_inverse_perp(assets: AssetMap) -> None:
    summary, positions, instruments, _ = _doc()
    index = positions[0].index_price
    account = summary_account(
        summary,
        positions,
        instruments,
        {},
        index_usd=index,
        wallet=WALLET,
        deployment="deribit:main",
        assets=assets,
        as_of=AS_OF,
    )
    assert account is not None and account.account_id == "10/BTC"
    # the venue's own identity on its example: margin_balance = equity - options_value
    assert summary.margin_balance == summary.equity - summary.options_value  # type: ignore[operator]
    # h = margin balance / maintenance margin (liquidation when MM reaches the margin balance)
    assert account.venue_health == Decimal("302.62729214") / Decimal("0.8857841")
    # all positions together are worth the account's equity at the index, exactly
    total = sum((p.value for p in account.positions), Decimal(0))
    assert total == Decimal("302.61869214") * Decimal("7466.79")
    perp = next(p for p in account.positions if p.kind is PositionKind.PERP)
    assert perp.quantity == Decimal(50) / Decimal("7440.18") and perp.price == Decimal("7476.65")
    assert perp.perp is not None and perp.perp.oracle_price == Decimal("7466.79")  # mark and index apart
    usd_leg = next(p for p in account.positions if p.token == "USD")
    assert usd_leg.quantity == -50  # the inverse future's fixed USD leg
    # inverse future PnL in USD = N (S/A - 1): independent of how we split it
    assert perp.value + usd_leg.value == Decimal(50) * (Decimal("7476.65") / Decimal("7440.18") - 1)
    # maintenance fraction from the venue's own MM: 0.000143783 BTC on 50 USD of notional
    assert abs(
        perp.perp.margin_tiers[0].maintenance_fraction
        - Decimal("0.000143783") * Decimal("7466.79") * Decimal("7440.18") / 50 / Decimal("7476.65")
    ) < Decimal("1e-12")
    assert account.raw["greeks"]["BTC-PERPETUAL"]["delta"] == "0.006687487"


def test_doc_example_is_an_old_shape_without_gamma_for_futures() -> None:
    _, positions, _, _ = _doc()
    assert positions[0].gamma is None and positions[0].delta is not None


@pytest.mark.parametrize("drop", ["equity", "maintenance_margin", "margin_balance", "currency"])
def test_missing_summary_field_names_it(drop: str) -> None:
    raw = load_fixture("deribit", "get_account_summary_doc.json")["result"]
    del raw[drop]
    with pytest.raises(VenueDataError, match=drop):
        parse_model(AccountSummary, raw, venue="deribit", what="get_account_summary")


def test_a_string_where_a_number_is_documented_is_rejected() -> None:
    raw = load_fixture("deribit", "get_positions_doc.json")["result"][0]
    raw["size"] = "50"
    with pytest.raises(VenueDataError, match="size"):
        parse_model(RpcPosition, raw, venue="deribit", what="get_positions")


def test_size_against_direction_is_a_data_error(assets: AssetMap) -> None:
    summary, positions, instruments, _ = _doc()
    bad = [positions[0].model_copy(update={"direction": "sell"})]
    with pytest.raises(VenueDataError, match="direction"):
        summary_account(
            summary,
            bad,
            instruments,
            {},
            index_usd=Decimal(7466),
            wallet=WALLET,
            deployment="deribit:main",
            assets=assets,
            as_of=AS_OF,
        )


def test_rpc_error_is_unavailable_with_the_message() -> None:
    with pytest.raises(VenueUnavailable, match="13009: unauthorized"):
        parse_result({"jsonrpc": "2.0", "error": {"code": 13009, "message": "unauthorized"}}, "summary")


def test_empty_currency_is_none(assets: AssetMap) -> None:
    raw: dict[str, Any] = copy.deepcopy(load_fixture("deribit", "get_account_summary_doc.json")["result"])
    for key in (
        "equity",
        "balance",
        "margin_balance",
        "maintenance_margin",
        "initial_margin",
        "available_funds",
    ):
        raw[key] = 0
    summary = parse_model(AccountSummary, raw, venue="deribit", what="summary")
    assert (
        summary_account(
            summary,
            [],
            {},
            {},
            index_usd=Decimal(1),
            wallet=WALLET,
            deployment="deribit:main",
            assets=assets,
            as_of=AS_OF,
        )
        is None
    )


def test_attribution() -> None:
    a, b = "0x" + "a" * 40, "0x" + "b" * 40
    assert attribute([a, b], {b: ("user",)}, ["10", "user"]) == (b, None)
    owner, warning = attribute([a, b], {}, ["10", "user"])
    assert owner == a and warning is not None and "attributed" in warning
    assert attribute([a, b], {b: ("x",)}, []) == (b, None)


@given(st.text(min_size=6, max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_redact_removes_every_occurrence(secret: str, before: str, after: str) -> None:
    text = redact(f"{before}{secret}{after}{secret}", [secret])
    assert secret not in text or secret in "***"
