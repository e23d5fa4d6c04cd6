"""Deploy the Compound V3 (Comet) STAND-IN (``solidity/CometStandIn.sol``, written for the devnet: no
Comet artifacts exist on npm) as a USDC base market with WETH, WBTC and wstETH collateral, each priced
by a ``SettablePriceFeed`` (Chainlink-style, 8 decimals, USD).

The stand-in serves Comet's read interface with the same selectors and layouts, and Comet's exact
liquidation rule (``lending.md`` §2.2: stored ``baseBorrowIndex``, truncation toward zero, factors kept
to 4 decimals). Writes use Comet's names: ``supply(asset, amount)`` (base or collateral),
``withdraw(asset, amount)`` (withdrawing base past zero borrows), ``absorb(absorber, accounts)``;
plus ``accrue()`` and the governor's ``setRates(supplyRate, borrowRate)`` (per second, 1e18 scale)
for interest. Tokens are the devnet ERC-20s passed in by symbol (``aggregator.devnet.tokens``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from aggregator.devnet.market import TOKENS, price_to_base, token_price, token_spec
from aggregator.devnet.solc import compile_devnet_contracts
from aggregator.devnet.tokens import approve, mint
from aggregator.devnet.txs import Txs
from aggregator.errors import ConfigError

__all__ = [
    "COMET_BASE",
    "COMET_COLLATERALS",
    "SECONDS_PER_YEAR",
    "CometAssetSpec",
    "CometDeployment",
    "absorb",
    "accrue",
    "borrow",
    "comet_contract",
    "deploy_comet",
    "set_comet_prices",
    "set_rates",
    "supply_base",
    "supply_collateral",
]

FACTOR_SCALE = 10**18
SECONDS_PER_YEAR = 31_536_000
COMET_BASE = "USDC"
DEFAULT_LIQUIDITY = 5_000_000  # whole base tokens supplied at deployment
DEFAULT_BASE_BORROW_MIN = 100  # whole base tokens (mainnet cUSDCv3: 100 USDC)
DEFAULT_SUPPLY_RATE_APR = Decimal("0.03")
DEFAULT_BORROW_RATE_APR = Decimal("0.05")


@dataclass(frozen=True)
class CometAssetSpec:
    """One collateral asset: factors as 1e18 wads (4-decimal precision), supply cap in whole tokens."""

    symbol: str
    borrow_collateral_factor: int
    liquidate_collateral_factor: int
    liquidation_factor: int
    supply_cap: int


def _wad(text: str) -> int:
    return int(Decimal(text) * FACTOR_SCALE)


# Illustrative values close to mainnet cUSDCv3's configuration.
COMET_COLLATERALS: tuple[CometAssetSpec, ...] = (
    CometAssetSpec("WETH", _wad("0.83"), _wad("0.90"), _wad("0.95"), 500_000),
    CometAssetSpec("WBTC", _wad("0.80"), _wad("0.85"), _wad("0.95"), 20_000),
    CometAssetSpec("wstETH", _wad("0.82"), _wad("0.87"), _wad("0.92"), 200_000),
)


@dataclass
class CometDeployment:
    """The stand-in's address, base token, and the price feed of every token (symbol -> address)."""

    comet: str
    governor: str
    base: str  # base token symbol
    tokens: dict[str, str]
    price_feeds: dict[str, str] = field(default_factory=dict)

    @property
    def base_token(self) -> str:
        return self.tokens[self.base]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CometDeployment:
        return cls(**data)


def _rate_per_second(apr: Decimal) -> int:
    return int(apr * FACTOR_SCALE) // SECONDS_PER_YEAR


def comet_contract(txs: Txs, deployment: CometDeployment) -> Contract:
    """The stand-in bound to its ABI."""
    return txs.contract(compile_devnet_contracts().get("CometStandIn").deployable, deployment.comet)


def deploy_comet(
    txs: Txs,
    governor: str,
    tokens: dict[str, ChecksumAddress],
    factor_prices: dict[str, Decimal],
    *,
    supplier: str | None = None,
    liquidity: int = DEFAULT_LIQUIDITY,
    collaterals: tuple[CometAssetSpec, ...] = COMET_COLLATERALS,
) -> CometDeployment:
    """Deploy one price feed per token (USD, 8 decimals, from ``market.token_price``), the stand-in
    (base ``COMET_BASE``), have ``supplier`` (default ``governor``) supply ``liquidity`` whole base
    tokens, then set 3 % / 5 % APR rates."""
    compiled = compile_devnet_contracts()
    feed_artifact = compiled.get("SettablePriceFeed").deployable
    symbols = [COMET_BASE, *(c.symbol for c in collaterals)]
    missing = [s for s in symbols if s not in tokens]
    if missing:
        raise ConfigError(f"Comet stand-in: tokens {missing} missing from {sorted(tokens)}", source="devnet")
    feeds: dict[str, str] = {}
    for spec in TOKENS:
        if spec.symbol in symbols:
            answer = price_to_base(token_price(spec, factor_prices))
            feeds[spec.symbol] = txs.deploy(
                feed_artifact, 8, f"{spec.symbol} / USD (devnet)", answer, sender=governor
            ).address
    configs = [
        (
            tokens[c.symbol],
            feeds[c.symbol],
            token_spec(c.symbol).decimals,
            c.borrow_collateral_factor,
            c.liquidate_collateral_factor,
            c.liquidation_factor,
            c.supply_cap * 10 ** token_spec(c.symbol).decimals,
        )
        for c in collaterals
    ]
    base_min = DEFAULT_BASE_BORROW_MIN * 10 ** token_spec(COMET_BASE).decimals
    comet = txs.deploy(
        compiled.get("CometStandIn").deployable,
        governor,
        tokens[COMET_BASE],
        feeds[COMET_BASE],
        base_min,
        configs,
        sender=governor,
    )
    deployment = CometDeployment(
        comet=comet.address,
        governor=governor,
        base=COMET_BASE,
        tokens={s: tokens[s] for s in symbols},
        price_feeds=feeds,
    )
    if liquidity:  # supplied while the rates are still 0, so the deployed indices are exactly 1e15
        supply_base(txs, deployment, supplier or governor, liquidity * 10 ** token_spec(COMET_BASE).decimals)
    set_rates(txs, deployment, DEFAULT_SUPPLY_RATE_APR, DEFAULT_BORROW_RATE_APR)
    return deployment


def set_rates(txs: Txs, deployment: CometDeployment, supply_apr: Decimal, borrow_apr: Decimal) -> None:
    """The governor sets constant per-second rates (APR / 31,536,000 in 1e18); accrues first."""
    fn = comet_contract(txs, deployment).functions.setRates(
        _rate_per_second(supply_apr), _rate_per_second(borrow_apr)
    )
    txs.transact(fn, deployment.governor, precheck=True)


def set_comet_prices(txs: Txs, deployment: CometDeployment, token_prices: dict[str, Decimal]) -> None:
    """Set the feed answer (USD, 8 decimals, truncated) of each given token this market prices."""
    feed_abi = compile_devnet_contracts().get("SettablePriceFeed").deployable
    for symbol, price in token_prices.items():
        if symbol in deployment.price_feeds:
            feed = txs.contract(feed_abi, deployment.price_feeds[symbol])
            txs.transact(feed.functions.setAnswer(price_to_base(price)), deployment.governor, precheck=True)


def _supply(txs: Txs, deployment: CometDeployment, user: str, symbol: str, amount: int) -> None:
    token = deployment.tokens[symbol]
    mint(txs, token, user, amount)
    approve(txs, token, user, deployment.comet, amount)
    txs.transact(comet_contract(txs, deployment).functions.supply(token, amount), user, precheck=True)


def supply_base(txs: Txs, deployment: CometDeployment, user: str, amount: int) -> None:
    """Mint ``amount`` raw base units to ``user`` and ``supply`` them (lending)."""
    _supply(txs, deployment, user, deployment.base, amount)


def supply_collateral(txs: Txs, deployment: CometDeployment, user: str, symbol: str, amount: int) -> None:
    """Mint ``amount`` raw units of collateral ``symbol`` to ``user`` and ``supply`` them."""
    if symbol == deployment.base:
        raise ConfigError(f"{symbol} is the base token, not a collateral: use supply_base", source="devnet")
    _supply(txs, deployment, user, symbol, amount)


def borrow(txs: Txs, deployment: CometDeployment, user: str, amount: int) -> None:
    """``withdraw(baseToken, amount)`` past a zero balance: a borrow (reverts unless collateralized)."""
    fn = comet_contract(txs, deployment).functions.withdraw(deployment.base_token, amount)
    txs.transact(fn, user, what=f"borrow {amount} on the Comet stand-in", precheck=True)


def accrue(txs: Txs, deployment: CometDeployment) -> None:
    """Write the indices accrued since the last accrual (moves the STORED ``baseBorrowIndex``)."""
    txs.transact(comet_contract(txs, deployment).functions.accrue(), deployment.governor, precheck=True)


def absorb(txs: Txs, deployment: CometDeployment, absorber: str, accounts: list[str]) -> TxReceipt:
    """``absorb(absorber, accounts)``; a :class:`TxError` naming ``NotLiquidatable`` if one is healthy."""
    fn = comet_contract(txs, deployment).functions.absorb(
        Web3.to_checksum_address(absorber), [Web3.to_checksum_address(a) for a in accounts]
    )
    return txs.transact(fn, absorber, what=f"absorb {accounts}", precheck=True)
