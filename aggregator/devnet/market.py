"""The devnet market as data: test tokens, their risk factors and starting prices, Aave V3 reserve
parameters, the e-mode category and the interest-rate strategies.

Prices are USD with 8 decimals (Aave's base currency unit 1e8). A token's price is its factor's
price times ``factor_ratio`` (wstETH = 1.18 ETH, the stETH-per-wstETH rate, fixed on the devnet).
Reserve parameters are in basis points as Aave stores them (LTV 8000 = 80 %, bonus 10500 = +5 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from aggregator.errors import ConfigError

__all__ = [
    "AAVE_RESERVES",
    "BASE_CURRENCY_UNIT",
    "EMODE_ETH",
    "INITIAL_FACTOR_PRICES",
    "RATE_STRATEGIES",
    "TOKENS",
    "AaveReserveSpec",
    "EModeSpec",
    "RateStrategySpec",
    "TokenSpec",
    "price_to_base",
    "token_price",
    "token_spec",
]

BASE_CURRENCY_UNIT = 10**8
RAY = 10**27


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int
    factor: str
    factor_ratio: Decimal = Decimal(1)


TOKENS: tuple[TokenSpec, ...] = (
    TokenSpec("WETH", "Wrapped Ether (devnet)", 18, "ETH"),
    TokenSpec("WBTC", "Wrapped BTC (devnet)", 8, "BTC"),
    TokenSpec("wstETH", "Wrapped liquid staked Ether 2.0 (devnet)", 18, "ETH", Decimal("1.18")),
    TokenSpec("USDC", "USD Coin (devnet)", 6, "USD"),
    TokenSpec("DAI", "Dai Stablecoin (devnet)", 18, "USD"),
)

INITIAL_FACTOR_PRICES: dict[str, Decimal] = {"ETH": Decimal(3000), "BTC": Decimal(60000), "USD": Decimal(1)}


def token_spec(symbol: str) -> TokenSpec:
    """The ``TOKENS`` entry of ``symbol``; an unknown symbol is a :class:`ConfigError`."""
    for spec in TOKENS:
        if spec.symbol == symbol:
            return spec
    raise ConfigError(f"unknown devnet token {symbol!r}", source="devnet")


def token_price(token: TokenSpec, factor_prices: dict[str, Decimal]) -> Decimal:
    """USD price of ``token`` given factor prices."""
    return factor_prices[token.factor] * token.factor_ratio


def price_to_base(price: Decimal) -> int:
    """USD price -> 8-decimal integer answer (truncated), as a Chainlink USD feed reports it."""
    return int((price * BASE_CURRENCY_UNIT).to_integral_value(rounding=ROUND_DOWN))


@dataclass(frozen=True)
class RateStrategySpec:
    """DefaultReserveInterestRateStrategy parameters (rays); stable-rate borrowing stays disabled."""

    optimal_usage_ratio: int
    base_variable_borrow_rate: int
    variable_rate_slope1: int
    variable_rate_slope2: int
    stable_rate_slope1: int = 0
    stable_rate_slope2: int = 0
    base_stable_rate_offset: int = 0
    stable_rate_excess_offset: int = 0
    optimal_stable_to_total_debt_ratio: int = 0


def _ray(percent: str) -> int:
    return int(Decimal(percent) * RAY // 100)


RATE_STRATEGIES: dict[str, RateStrategySpec] = {
    "volatile": RateStrategySpec(_ray("80"), 0, _ray("3.8"), _ray("80")),
    "stable": RateStrategySpec(_ray("90"), 0, _ray("4"), _ray("60")),
}


@dataclass(frozen=True)
class AaveReserveSpec:
    symbol: str
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    reserve_factor: int
    strategy: str
    borrowable: bool = True
    liquidation_protocol_fee: int = 1000


AAVE_RESERVES: tuple[AaveReserveSpec, ...] = (
    AaveReserveSpec("WETH", 8000, 8250, 10500, 1500, "volatile"),
    AaveReserveSpec("WBTC", 7300, 7800, 10500, 2000, "volatile"),
    AaveReserveSpec("wstETH", 6900, 7950, 10700, 1500, "volatile"),
    AaveReserveSpec("USDC", 7700, 8000, 10450, 1000, "stable"),
    AaveReserveSpec("DAI", 6300, 7700, 10500, 1000, "stable"),
)


@dataclass(frozen=True)
class EModeSpec:
    category_id: int
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    label: str
    assets: tuple[str, ...]


EMODE_ETH = EModeSpec(1, 9000, 9300, 10100, "ETH correlated", ("WETH", "wstETH"))
