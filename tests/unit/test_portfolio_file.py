"""The portfolio file: the worked example parses; bad files name the item."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from aggregator.config import DEFAULTS_DIR, load_config
from aggregator.portfolio_file import PortfolioFileError, load_portfolio_file
from risk.model import PositionKind

EXAMPLE = DEFAULTS_DIR / "examples" / "portfolio.toml"
SETTINGS = load_config(None, environ={}).settings

MINIMAL = """
name = "t"
[prices]
ETH = 3000
"USDC/USD" = 1
[[accounts]]
venue = "aave_v3"
account_id = "a"
model = "lending"
[[accounts.positions]]
token = "WETH"
kind = "collateral"
quantity = 10
liquidation_threshold = 0.8
[[accounts.positions]]
token = "USDC"
kind = "debt"
quantity = -20000
"""


def load(tmp_path: Path, text: str, name: str = "p.toml"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text)
    return load_portfolio_file(path, assets=SETTINGS.assets, settings=SETTINGS.risk)


def test_worked_example_parses_into_the_vocabulary() -> None:
    loaded = load_portfolio_file(EXAMPLE, assets=SETTINGS.assets, settings=SETTINGS.risk)
    keys = [a.key for a in loaded.portfolio.accounts]
    assert keys[0].startswith("aave_v3:ethereum/")
    aave = loaded.portfolio.accounts[0]
    weth, usdc = aave.positions
    assert weth.quantity == Decimal(20) and weth.lending is not None
    assert weth.lending.liquidation_threshold == Decimal("0.83")  # exact, not via float
    assert usdc.basis_factor == "USDC/USD" and usdc.kind is PositionKind.DEBT
    assert usdc.interest_rate == Decimal("0.06")
    option = loaded.portfolio.accounts[2].positions[0]
    assert option.option is not None and option.price > 0
    assert loaded.market.vols["ETH"] == 0.70
    assert loaded.params.mc_paths == 10_000


def test_json_is_accepted(tmp_path: Path) -> None:
    import json
    import tomllib

    doc = tomllib.loads(MINIMAL)
    loaded = load(tmp_path, json.dumps(doc), "p.json")
    assert loaded.portfolio.accounts[0].positions[1].quantity == Decimal(-20000)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace('token = "WETH"', 'token = "WETH"\nfactor = "DOGE"'),
         "accounts[0].positions[0] (WETH collateral).factor: unknown factor 'DOGE'"),
        (lambda t: t.replace('ETH = 3000\n', ''),
         "accounts[0].positions[0] (WETH collateral).factor: missing price for factor 'ETH'"),
        (lambda t: t.replace("quantity = 10", "quantity = -10"),
         "accounts[0].positions[0] (WETH collateral): collateral quantity must be >= 0"),
        (lambda t: t.replace("quantity = -20000", "quantity = 20000"),
         "accounts[0].positions[1] (USDC debt): debt quantity is signed exposure and must be <= 0"),
        (lambda t: t.replace('model = "lending"', 'model = "lending"\ncolour = "red"'),
         "accounts[0].colour: Extra inputs are not permitted"),
        (lambda t: t.replace('token = "WETH"', 'token = "PEPE"'),
         "unknown token 'PEPE'"),
        (lambda t: t + '[correlation]\nfactors = ["ETH", "USDC/USD"]\nmatrix = [[1, 0.5], [0.4, 1]]\n',
         "correlation: not symmetric at (ETH, USDC/USD)"),
        (lambda t: t.replace('"USDC/USD" = 1\n', '"USDC/USD" = 1\nBTC = 60000\n')
         + '[correlation]\nfactors = ["ETH", "BTC", "USDC/USD"]\n'
           'matrix = [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]\n',
         "correlation: not positive semi-definite"),
        (lambda t: t.replace("[prices]", "[prices]\nSOL = -3"), "prices.SOL: Input should be greater than 0"),
    ],
)
def test_bad_file_names_the_item(tmp_path: Path, edit, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PortfolioFileError) as info:
        load(tmp_path, edit(MINIMAL))
    assert needle in str(info.value)
    assert str(tmp_path / "p.toml") in str(info.value)


def test_rounded_correlation_is_repaired_with_a_warning(tmp_path: Path) -> None:
    text = MINIMAL.replace('"USDC/USD" = 1\n', '"USDC/USD" = 1\nBTC = 60000\nSOL = 150\n') + (
        '[correlation]\nfactors = ["ETH", "BTC", "SOL"]\nmatrix = [[1, 0.9, 0.7], [0.9, 1, 0.3], [0.7, 0.3, 1]]\n'
    )
    loaded = load(tmp_path, text)
    assert any("repaired" in w for w in loaded.warnings)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(PortfolioFileError, match="not valid TOML"):
        load(tmp_path, "name = ")
