"""Aevo golden tests through the pure parser, on the fixtures built in the documented shapes
(tests/fixtures/aevo/README.md says where each shape comes from)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from adapters.aevo import MODEL, PORTFOLIO, STANDARD, AevoAccount, AevoPosition, IndexPrice, aevo_account
from adapters.assets import AssetMap
from adapters.derive import black76_price
from adapters.errors import VenueDataError
from adapters.http import parse_model
from risk.arrays import Book, FloatArray, compile_book
from risk.health import model_drift
from risk.margin import evaluate
from risk.model import AsOf, MarginAccount, MarketState, Portfolio, PositionKind
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
    assert result is not None and result.as_of == AS_OF and result.margin_model == MODEL == STANDARD
    # our equity (sum of position values) is the venue's equity, exactly
    assert sum((p.value for p in result.positions), Decimal(0)) == Decimal("18931.25")
    # independent: USDC 20000 + WETH 3000 - 5 short calls at 853.75 + 2 x (3000 - 2900)
    assert Decimal(20000) + 3000 - 5 * Decimal("853.75") + 2 * 100 == Decimal("18931.25")
    assert result.venue_health == Decimal("18931.25") / Decimal("5968.75")
    option = next(p for p in result.positions if p.kind is PositionKind.OPTION)
    assert option.quantity == -5 and option.option is not None
    assert option.option.strike == 3500 and option.option.option_type == "call"
    assert option.option.expiry == datetime(2030, 12, 27, 8, tzinfo=UTC)
    assert option.option.mark_iv == Decimal("0.6") and option.option.underlying_price == 3000
    assert option.option.spot_price == 3000  # the documented formulas' "Spot": the index
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


def _book_at(account: MarginAccount, eth: float = 3000.0) -> tuple[Book, FloatArray]:
    """The account compiled against a market at the venue's prices (ETH 3000, bases at 1), and the
    factor prices of one scenario where ETH is at ``eth``."""
    portfolio = Portfolio("p", (account,))
    factors = tuple(f for f in portfolio.factors if f != "USD")
    market = MarketState(
        factors=factors,
        prices={f: 3000.0 if f == "ETH" else 1.0 for f in factors},
        vols={f: 0.6 for f in factors},
        correlation=np.eye(len(factors)),
        betas={},
        as_of=AS_OF.timestamp,
    )
    book = compile_book(portfolio, market)
    prices = book.prices0[None, :].copy()
    prices[0, book.factor_index("ETH")] = eth
    return book, prices


def _standard(assets: AssetMap) -> MarginAccount:
    account, positions, index = _read()
    result = aevo_account(
        account, positions, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
    )
    assert result is not None
    return result


def test_engine_health_at_current_prices_is_the_venue_figure(assets: AssetMap) -> None:
    result = _standard(assets)
    book, prices = _book_at(result)
    ev = evaluate(book, prices)
    # independent: Aevo's documented rule, short call 0.1 * spot + mark, plus the perp's own 200
    mm = 5 * (0.1 * 3000 + 853.75) + 200
    assert ev.requirement[0, 0] == pytest.approx(mm, rel=1e-12)
    assert ev.resources[0, 0] == pytest.approx(18931.25, rel=1e-12)  # equity, options included
    assert result.venue_health is not None
    assert ev.health[0, 0] == pytest.approx(float(result.venue_health), rel=1e-9)
    drift = model_drift(float(ev.health[0, 0]), result.venue_health)
    assert drift is not None and abs(drift) < 1e-9 * float(result.venue_health)


@pytest.mark.parametrize("eth", [2400.0, 2700.0, 3300.0, 3900.0])
def test_engine_requirement_follows_the_rule_under_a_price_move(assets: AssetMap, eth: float) -> None:
    result = _standard(assets)
    book, prices = _book_at(result, eth)
    ev = evaluate(book, prices)
    option = next(p for p in result.positions if p.kind is PositionKind.OPTION)
    assert option.option is not None
    years = (option.option.expiry - AS_OF.timestamp).total_seconds() / (365 * 24 * 3600)
    # the mark moves by the Black-76 change of the option (the engine's revaluation), independently
    mark = (
        853.75
        + black76_price(eth, 3500.0, years, 0.6, True)
        - black76_price(3000.0, 3500.0, years, 0.6, True)
    )
    mm = 5 * (0.1 * eth + mark) + 200 * eth / 3000  # the perp's fraction of its moved mark notional
    equity = 20000 + eth - 5 * mark + 2 * (eth - 2900)
    assert ev.requirement[0, 0] == pytest.approx(mm, rel=1e-9)
    assert ev.health[0, 0] == pytest.approx(equity / mm, rel=1e-9)


def test_drift_is_reported_when_the_venue_figure_breaks_the_rule(assets: AssetMap) -> None:
    account, positions, index = _read()
    off = account.model_copy(update={"maintenance_margin": Decimal("2468.5")})  # not the documented rule
    result = aevo_account(
        off, positions, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
    )
    assert result is not None and result.venue_health == Decimal("18931.25") / Decimal("2468.5")
    book, prices = _book_at(result)
    h = float(evaluate(book, prices).health[0, 0])
    drift = model_drift(h, result.venue_health)
    assert drift is not None and drift == pytest.approx(18931.25 / 5968.75 - 18931.25 / 2468.5, rel=1e-9)


def test_portfolio_margin_accounts_use_the_scenario_grid(assets: AssetMap) -> None:
    account, positions, index = _read()
    pm = account.model_copy(update={"portfolio": True})
    result = aevo_account(
        pm, positions, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
    )
    assert result is not None and result.margin_model == PORTFOLIO
    missing = account.model_copy(update={"portfolio": None})
    other = aevo_account(
        missing, positions, index, wallet=WALLET, deployment="aevo:main", assets=assets, as_of=AS_OF
    )
    assert other is not None and other.margin_model == STANDARD
