"""``crossmargin whatif``: changes applied to the example book, checked against hand formulas.

The example (config/examples/portfolio.toml): Aave 20 WETH (LT 0.83) against 30,000 USDC at ETH 3,000
(h = 1.66); Hyperliquid short 20 ETH at 3,000 with 70,000 USDC cash and tiers 1.25% / 2.5% above 5M
(h = (70,000 - 60,000) / (60,000 x 0.0125) = 13.33); Derive long 10 puts with 2,000 USDC.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aggregator.cli import app
from aggregator.cli.app import run
from aggregator.cli.whatif_cmd import parse_changes
from aggregator.config import DEFAULTS_DIR, Settings, load_config
from aggregator.portfolio_file import PortfolioInput, load_portfolio_file
from aggregator.whatif import Action, WhatIfError, apply_changes, parse_change
from risk.arrays import compile_book
from risk.health import current_state
from risk.model import MarketState, Portfolio, PositionKind

EXAMPLE = DEFAULTS_DIR / "examples" / "portfolio.toml"
AAVE = "aave_v3:ethereum/0x1111111111111111111111111111111111111111"
Loaded = tuple[Settings, PortfolioInput]
HL = "hyperliquid:mainnet/0x1111111111111111111111111111111111111111"


def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["crossmargin", *args])
    code = run(app)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def health(pf: Portfolio, key: str, market: MarketState) -> float:
    book = compile_book(pf, market)
    return float(current_state(book).health[book.account_keys.index(key)])


@pytest.fixture(scope="module")
def loaded() -> Loaded:
    settings = load_config(None).settings
    return settings, load_portfolio_file(EXAMPLE, assets=settings.assets, settings=settings.risk)


def apply(loaded: Loaded, *specs: tuple[Action, tuple[str, ...]], **kw: Any) -> Portfolio:
    settings, inp = loaded
    changes = [parse_change(action, values) for action, values in specs]
    return apply_changes(inp.portfolio, inp.market, changes, assets=settings.assets, **kw)


def test_repay_and_deposit_move_the_aave_health_as_the_formula_says(loaded: Loaded) -> None:
    market = loaded[1].market
    after = apply(loaded, ("repay", ("5000", "USDC", "aave_v3:ethereum")))
    assert health(after, AAVE, market) == pytest.approx(20 * 3000 * 0.83 / 25_000, rel=1e-12)
    after = apply(loaded, ("deposit", ("2", "WETH", "aave_v3:ethereum")))
    assert health(after, AAVE, market) == pytest.approx(22 * 3000 * 0.83 / 30_000, rel=1e-12)
    after = apply(loaded, ("deposit", ("6000", "USDC", AAVE)), lt={"USDC": Decimal("0.78")})
    assert health(after, AAVE, market) == pytest.approx((60_000 * 0.83 + 6_000 * 0.78) / 30_000, rel=1e-12)
    after = apply(loaded, ("repay", ("all", "USDC", "aave_v3")))
    assert health(after, AAVE, market) == float("inf")
    after = apply(loaded, ("withdraw", ("5", "WETH", "aave_v3")), ("borrow", ("1000", "USDC", "aave_v3")))
    assert health(after, AAVE, market) == pytest.approx(15 * 3000 * 0.83 / 31_000, rel=1e-12)


def test_a_perp_trade_keeps_equity_and_adds_maintenance(loaded: Loaded) -> None:
    market = loaded[1].market
    after = apply(loaded, ("perp", ("hyperliquid", "ETH", "-2")))
    hl = next(a for a in after.accounts if a.key == HL)
    perp = next(p for p in hl.positions if p.kind is PositionKind.PERP)
    cash = next(p for p in hl.positions if p.kind is PositionKind.SPOT)
    assert perp.quantity == -22 and cash.quantity == 76_000  # the short's proceeds land in the cash leg
    equity = 76_000 - 22 * 3000
    assert health(after, HL, market) == pytest.approx(equity / (22 * 3000 * 0.0125), rel=1e-12)
    closed = apply(loaded, ("close_perp", ("hyperliquid", "ETH")))
    hl = next(a for a in closed.accounts if a.key == HL)
    assert [(p.kind, p.quantity) for p in hl.positions] == [(PositionKind.SPOT, Decimal(10_000))]
    assert health(closed, HL, market) == float("inf")


def test_an_option_trade_pays_its_premium_from_cash(loaded: Loaded) -> None:
    _, inp = loaded
    after = apply(loaded, ("option", ("derive", "ETH-20250702-3000-C", "-5")), iv=Decimal("0.7"))
    derive = next(a for a in after.accounts if a.venue == "derive")
    call = next(p for p in derive.positions if p.token == "ETH-20250702-3000-C")
    cash = next(p for p in derive.positions if p.kind is PositionKind.SPOT)
    assert call.quantity == -5 and call.option is not None and call.option.strike == 3000
    assert cash.quantity == pytest.approx(Decimal(2000) + 5 * call.price)

    def equity(pf: Portfolio) -> Decimal:
        return sum((p.value for a in pf.accounts if a.venue == "derive" for p in a.positions), Decimal(0))

    assert equity(after) == pytest.approx(equity(inp.portfolio))


def test_bad_changes_name_what_is_wrong(loaded: Loaded) -> None:
    with pytest.raises(WhatIfError, match="no account matches 'aave_v3:arbitrum'"):
        apply(loaded, ("deposit", ("1", "WETH", "aave_v3:arbitrum")))
    with pytest.raises(WhatIfError, match="cannot take 25"):
        apply(loaded, ("withdraw", ("25", "WETH", "aave_v3")))
    with pytest.raises(WhatIfError, match="exceeds the debt"):
        apply(loaded, ("repay", ("40000", "USDC", "aave_v3")))
    with pytest.raises(WhatIfError, match=r"--lt USDC=0\.78"):
        apply(loaded, ("deposit", ("1", "USDC", "aave_v3")))
    with pytest.raises(WhatIfError, match="--mmr"):
        apply(loaded, ("perp", ("hyperliquid", "BTC", "1")))
    with pytest.raises(WhatIfError, match="not a number"):
        parse_change("deposit", ("lots", "USDC", "aave_v3"))
    with pytest.raises(WhatIfError, match="needs 3 values"):
        parse_changes(["--perp", "hyperliquid", "ETH"])
    with pytest.raises(WhatIfError, match="unexpected argument"):
        parse_changes(["--deposti", "1", "USDC", "x"])


def test_cli_json_before_and_after(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        monkeypatch,
        capsys,
        "whatif",
        str(EXAMPLE),
        "--repay",
        "5000",
        "USDC",
        "aave_v3:ethereum",
        "--perp",
        "hyperliquid",
        "ETH",
        "-2",
        "--json",
        "--seed",
        "3",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert [c["action"] for c in doc["changes"]] == ["repay", "perp"]
    assert doc["before"]["composite"]["chf"] == pytest.approx(1.66)
    assert doc["after"]["composite"]["chf"] == pytest.approx(20 * 3000 * 0.83 / 25_000)
    after_hl = next(a for a in doc["after"]["accounts"] if a["venue"] == "hyperliquid")
    assert after_hl["risk"]["health"] == pytest.approx((76_000 - 66_000) / (66_000 * 0.0125))


def test_cli_tables_and_bad_input_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(monkeypatch, capsys, "whatif", str(EXAMPLE), "--repay", "all", "USDC", "aave_v3")
    assert code == 0
    assert "before → after" in out and "liquidation ladder (after)" in out and "repay all USDC" in out
    code, _, err = cli(monkeypatch, capsys, "whatif", str(EXAMPLE), "--repay", "9e9", "USDC", "aave_v3")
    assert code == 2 and "exceeds the debt" in err
    code, _, err = cli(monkeypatch, capsys, "whatif", str(EXAMPLE))
    assert code == 2 and "no change given" in err


def test_a_stored_snapshot_is_rebuilt_with_the_same_figures(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    loaded: Loaded,
    tmp_path: Path,
) -> None:
    from aggregator.db import Repository, ScanInfo, open_database
    from risk.engine import assess

    _, inp = loaded
    assessment = assess(inp.portfolio, inp.market, inp.params)
    engine = open_database()  # the embedded default under the test's HOME
    Repository(engine).store_scan(
        ScanInfo(id="s1", started_at=assessment.as_of),
        "hedged-eth",
        list(inp.portfolio.accounts),
        assessment,
        factor_prices={k: float(v) for k, v in inp.market.prices.items()},
    )
    engine.dispose()
    code, out, err = cli(
        monkeypatch, capsys, "whatif", "hedged-eth", "--repay", "5000", "USDC", "aave_v3", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["before"]["composite"]["chf"] == pytest.approx(assessment.chf, rel=1e-12)
    assert doc["before"]["composite"]["stressed_chf"] == pytest.approx(assessment.stressed_chf, rel=1e-9)
    assert doc["after"]["composite"]["chf"] == pytest.approx(20 * 3000 * 0.83 / 25_000, rel=1e-12)
    assert any("snapshot" in n for n in doc["notes"])
    code, _, err = cli(monkeypatch, capsys, "whatif", "nobody", "--repay", "1", "USDC", "aave_v3")
    assert code == 2 and "nobody" in err


# --- standard-margin accounts (Aevo, Deribit) ---------------------------------------------------

STANDARD_BOOK = """
name = "standard"
as_of = 2026-11-21T08:00:00Z
[prices]
BTC = 65000
ETH = 3000
"USDC/USD" = 1

[[accounts]]
venue = "deribit"
account_id = "main/BTC"
model = "standard_margin"
preset = "deribit"
[[accounts.positions]]
token = "USDC"
kind = "spot"
quantity = 20000
[[accounts.positions]]
token = "BTC-20261225-70000-P"
kind = "option"
factor = "BTC"
quantity = -2
strike = 70000
expiry = 2026-12-25T08:00:00Z
option_type = "put"
mark_iv = 0.55
spot_price = 64950

[[accounts]]
venue = "aevo"
account_id = "0xaevo"
model = "standard_margin"
preset = "aevo"
[[accounts.positions]]
token = "USDC"
kind = "spot"
quantity = 10000
"""


def standard_book(tmp_path: Path) -> Loaded:
    settings = load_config(None).settings
    path = tmp_path / "standard.toml"
    path.write_text(STANDARD_BOOK)
    return settings, load_portfolio_file(path, assets=settings.assets, settings=settings.risk)


def test_an_option_trade_on_a_standard_margin_account_carries_its_spot(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from risk.options import black76_price

    book = standard_book(tmp_path)
    _, inp = book
    years = (datetime(2026, 12, 25, 8, tzinfo=UTC) - inp.market.as_of).total_seconds() / (365 * 86400)
    after = apply(book, ("option", ("deribit", "BTC-20261225-60000-P", "-1")), iv=Decimal("0.6"))
    acct = next(a for a in after.accounts if a.venue == "deribit")
    new = next(p for p in acct.positions if p.token == "BTC-20261225-60000-P")
    # the venue's index of the option already held on BTC, not the factor price
    assert new.option is not None and new.option.spot_price == Decimal(64950)
    new_mark = float(black76_price(65000.0, 60000.0, years, 0.6, False))
    old_mark = float(black76_price(65000.0, 70000.0, years, 0.55, False))
    assert float(new.price) == pytest.approx(new_mark, rel=1e-12)
    # Deribit: resources = cash (equity less the options' value), now with the premium received;
    # each short put needs max(0.075 x 64,950, 0.075 x mark) + mark
    cash = 20_000 + new_mark
    requirement = 2 * (max(0.075 * 64950, 0.075 * old_mark) + old_mark) + (
        max(0.075 * 64950, 0.075 * new_mark) + new_mark
    )
    assert health(after, acct.key, inp.market) == pytest.approx(cash / requirement, rel=1e-9)

    # an account without a BTC option takes the factor price as the spot (Aevo: 0.1 x spot + mark)
    after = apply(book, ("option", ("aevo", "BTC-20261225-60000-C", "-1")), iv=Decimal("0.6"))
    acct = next(a for a in after.accounts if a.venue == "aevo")
    call = next(p for p in acct.positions if p.token == "BTC-20261225-60000-C")
    assert call.option is not None and call.option.spot_price == Decimal(65000)
    call_mark = float(black76_price(65000.0, 60000.0, years, 0.6, True))
    # Aevo: resources = equity = cash + premium - the call's value = 10,000
    assert health(after, acct.key, inp.market) == pytest.approx(10_000 / (0.1 * 65000 + call_mark), rel=1e-9)
    closed = apply(book, ("close_option", ("deribit", "BTC-20261225-70000-P")))
    assert health(closed, "deribit:file/main/BTC", inp.market) == float("inf")  # nothing short is left


def test_stored_standard_margin_accounts_are_rebuilt_with_their_venues_rule(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from adapters import aevo, deribit
    from aggregator.db import Repository, ScanInfo, open_database
    from aggregator.whatif_db import load_stored_portfolio
    from risk.engine import assess

    _, inp = standard_book(tmp_path)
    # the adapters' own models, and an option whose spot differs from its underlying
    models = {"aevo": aevo.STANDARD, "deribit": deribit.STANDARD}
    accounts = [
        replace(a, deployment=f"{a.venue}:mainnet", margin_model=models[a.venue])
        for a in inp.portfolio.accounts
    ]
    put = accounts[0].positions[1]
    assert put.option is not None and put.option.spot_price != put.option.underlying_price
    portfolio = replace(inp.portfolio, accounts=tuple(accounts))
    assessment = assess(portfolio, inp.market, inp.params)
    engine = open_database()
    try:
        Repository(engine).store_scan(
            ScanInfo(id="s-standard", started_at=assessment.as_of),
            "standard",
            accounts,
            assessment,
            factor_prices={k: float(v) for k, v in inp.market.prices.items()},
        )
        stored = load_stored_portfolio(engine, "standard")
    finally:
        engine.dispose()
    rebuilt = {a.venue: a for a in stored.portfolio.accounts}
    assert rebuilt["deribit"].margin_model == deribit.STANDARD
    assert rebuilt["aevo"].margin_model == aevo.STANDARD
    assert rebuilt["deribit"].positions[1].option == put.option  # spot_price included
    for a in accounts:
        assert health(stored.portfolio, a.key, inp.market) == pytest.approx(
            health(portfolio, a.key, inp.market), rel=1e-12
        )


def test_stored_model_names_map_to_the_venues_models() -> None:
    from adapters import aevo, deribit
    from aggregator.margin_models import stored_model as _model
    from risk.margin import derive_pm_model
    from risk.model import DeriveStandardModel, StandardMarginModel

    assert _model("options_scenario", "aevo") == aevo.PORTFOLIO  # Aevo's own grid, not Derive's
    assert _model("options_scenario", "deribit") == deribit.PORTFOLIO
    assert _model("options_scenario", "derive") == derive_pm_model()
    assert _model("standard_margin", "deribit") == deribit.STANDARD != aevo.STANDARD
    assert _model("standard_margin", "okx") == StandardMarginModel()  # unknown venue: defaults (warned)
    assert (
        _model("derive_standard", "derive") == DeriveStandardModel()
    )  # the adapter's fractions: the defaults
