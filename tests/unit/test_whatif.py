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
