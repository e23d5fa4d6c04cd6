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


def assert_rejected(tmp_path: Path, text: str, needle: str) -> None:
    """Loading ``text`` fails with an error that names the item (``needle``) and the file."""
    with pytest.raises(PortfolioFileError) as info:
        load(tmp_path, text)
    assert needle in str(info.value)
    assert str(tmp_path / "p.toml") in str(info.value)


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
    assert_rejected(tmp_path, edit(MINIMAL), needle)


def test_rounded_correlation_is_repaired_with_a_warning(tmp_path: Path) -> None:
    text = MINIMAL.replace('"USDC/USD" = 1\n', '"USDC/USD" = 1\nBTC = 60000\nSOL = 150\n') + (
        '[correlation]\nfactors = ["ETH", "BTC", "SOL"]\nmatrix = [[1, 0.9, 0.7], [0.9, 1, 0.3], [0.7, 0.3, 1]]\n'
    )
    loaded = load(tmp_path, text)
    assert any("repaired" in w for w in loaded.warnings)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(PortfolioFileError, match="not valid TOML"):
        load(tmp_path, "name = ")


# --- standard margin (Aevo / Deribit) -----------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "portfolio-file.md"
STANDARD_HEAD = """
as_of = 2026-11-21T08:00:00Z
[prices]
BTC = 65000
"USDC/USD" = 1
"""


def docs_example(model: str) -> str:
    """The TOML example of the ``### `model``` section of docs/portfolio-file.md (so the docs stay
    loadable)."""
    text = DOCS.read_text()
    section = text[text.index(f"### `{model}`") :]
    start = section.index("```toml\n") + len("```toml\n")
    return section[start : section.index("```", start)]


def docs_standard_example() -> str:
    return docs_example("standard_margin")


def test_the_documented_standard_margin_account_gets_deribits_rule(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from adapters import deribit
    from risk.arrays import compile_book
    from risk.health import current_state
    from risk.options import black76_price

    loaded = load(tmp_path, STANDARD_HEAD + docs_standard_example())
    acct = loaded.portfolio.accounts[0]
    assert acct.margin_model == deribit.STANDARD
    put = acct.positions[1]
    assert put.option is not None and put.option.spot_price == Decimal(64950)
    years = (datetime(2026, 12, 25, 8, tzinfo=UTC) - datetime(2026, 11, 21, 8, tzinfo=UTC)).days / 365
    mark = float(black76_price(65000.0, 70000.0, years, 0.55, False))
    assert float(put.price) == pytest.approx(mark, rel=1e-12)
    # Deribit: resources = equity less the options' value = the cash; short put
    # 2 x (max(0.075 x 64,950, 0.075 x mark) + mark)
    requirement = 2 * (max(0.075 * 64950, 0.075 * mark) + mark)
    book = compile_book(loaded.portfolio, loaded.market)
    assert float(current_state(book).health[0]) == pytest.approx(20_000 / requirement, rel=1e-9)


def test_standard_margin_parameters_override_the_preset(tmp_path: Path) -> None:
    from adapters import aevo

    text = STANDARD_HEAD + docs_standard_example().replace(
        'preset = "deribit"', 'preset = "aevo"\nput_spot = 0.15\nliquidation_penalty = 0.03'
    )
    model = load(tmp_path, text).portfolio.accounts[0].margin_model
    assert model.name == "standard_margin"
    assert model == type(aevo.STANDARD)(
        call_spot=Decimal("0.1"),
        put_spot=Decimal("0.15"),
        put_mark=Decimal("0.1"),
        option_value_counts=True,
        liquidation_penalty=Decimal("0.03"),
    )
    no_preset = load(tmp_path, text.replace('preset = "aevo"\n', "")).portfolio.accounts[0].margin_model
    assert no_preset == model  # no preset: the model defaults, which are Aevo's rule


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace('preset = "deribit"', "call_spot = 1.5"),
         "accounts[0] (deribit main/BTC): standard margin parameter call_spot=1.5 is outside [0, 1]"),
        (lambda t: t.replace('preset = "deribit"', 'preset = "derive"'),
         'accounts[0] (deribit main/BTC): a standard_margin account takes preset = "aevo" or "deribit"'),
        (lambda t: t.replace('model = "standard_margin"', 'model = "cross_perp"').replace(
            'preset = "deribit"', "put_mark = 0.2"),
         "accounts[0] (deribit main/BTC): put_mark given, but only a standard_margin account takes them"),
        (lambda t: t.replace("spot_price = 64950", "spot_price = 0"),
         "accounts[0].positions[1].spot_price: Input should be greater than 0"),
    ],
)
def test_bad_standard_margin_accounts_name_the_item(tmp_path: Path, edit, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(tmp_path, edit(STANDARD_HEAD + docs_standard_example()), needle)


# --- Derive standard margin -----------------------------------------------------------------------

DERIVE_HEAD = """
as_of = 2026-11-21T08:00:00Z
[prices]
ETH = 3000
"USDC/USD" = 1
"""


def test_the_documented_derive_standard_account_gets_the_standard_managers_rule(tmp_path: Path) -> None:
    from adapters.derive import black76_price  # the adapter's own Black-76 (math.erf), not risk.options
    from risk.arrays import compile_book
    from risk.health import current_state
    from risk.model import DeriveStandardModel

    loaded = load(tmp_path, DERIVE_HEAD + docs_example("derive_standard"))
    acct = loaded.portfolio.accounts[0]
    assert acct.margin_model == DeriveStandardModel(
        call_spot=Decimal("0.1"),
        put_spot=Decimal("0.1"),
        put_mtm=Decimal("0.1"),
        unpaired_scale=Decimal("1.1"),
        base_margin_factors=(("ETH", Decimal("0.8")),),
        cash_token="USDC",
        liquidation_penalty=Decimal("0.05"),
    )
    s = 3000.0
    dec, jan = 34 / 365, 69 / 365  # 2026-11-21 08:00 to 2026-12-25 / 2027-01-29 08:00
    c3500, c3600 = (black76_price(s, k, dec, 0.6, True) for k in (3500.0, 3600.0))
    p2500, c3500_jan = black76_price(s, 2500.0, jan, 0.7, False), black76_price(s, 3500.0, jan, 0.7, True)
    # a perp counts at quantity x price (the cash leg of 13,000 holds the short's proceeds)
    equity = 13_000 + 2 * s - 1 * s - 3 * c3500 + 3 * c3600 - p2500 - c3500_jan
    # the rule of DeriveStandardModel's docstring, by hand:
    perp = 0.05 * 1 * s
    base = (1 - 0.8) * 2 * s
    # December: short 3 x 3500 C, long 3 x 3600 C; payoff at {0, 3500, 3600} = {0, 0, -300}, no net calls
    dec_isolated = 3 * 0.1 * s
    dec_max_loss = -300.0
    dec_req = min(dec_isolated, (-3 * c3500 + 3 * c3600) - dec_max_loss)
    assert dec_req < dec_isolated  # the max-loss branch binds here
    # January: short 2500 P and 3500 C; payoff at {0, 2500, 3500} = {-2500, 0, 0}; one net short call
    jan_isolated = max(0.1 * s, 0.1 * p2500) + 0.1 * s
    jan_max_loss = -2500.0 + 1.1 * s * -1
    jan_req = min(jan_isolated, (-p2500 - c3500_jan) - jan_max_loss)
    assert jan_req == jan_isolated  # the isolated margin binds here
    requirement = perp + base + dec_req + jan_req
    book = compile_book(loaded.portfolio, loaded.market)
    assert float(current_state(book).health[0]) == pytest.approx(equity / requirement, rel=1e-9)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace('model = "derive_standard"', 'model = "derive_standard"\npreset = "aevo"'),
         'accounts[0] (derive 0xabc/7): a derive_standard account takes preset = "derive" (or none)'),
        (lambda t: t.replace("base_margin_factors = { ETH = 0.8 }", "base_margin_factors = { ETH = 1.2 }"),
         "accounts[0] (derive 0xabc/7): Derive base margin factor of ETH=1.2 is outside [0, 1]"),
        (lambda t: t.replace("base_margin_factors = { ETH = 0.8 }", "put_mark = 0.2"),
         "accounts[0] (derive 0xabc/7): put_mark given, but only a standard_margin account takes them"),
        (lambda t: t.replace('model = "derive_standard"', 'model = "cross_perp"'),
         "accounts[0] (derive 0xabc/7): base_margin_factors given, but only a derive_standard account takes them"),
    ],
)
def test_bad_derive_standard_accounts_name_the_item(tmp_path: Path, edit, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert_rejected(tmp_path, edit(DERIVE_HEAD + docs_example("derive_standard")), needle)
