"""Deploy and configure Aave V3 (``@aave/core-v3`` 1.19.3 = Aave v3.0.2, ``POOL_REVISION() == 1``)
from the npm artifacts, the way aave-v3-deploy does it:

1. PoolAddressesProvider(marketId, owner); ACL admin = deployer; ACLManager; pool, risk, emergency
   and asset-listing admin roles for the deployer.
2. The seven Pool libraries (FlashLoanLogic is itself linked to BorrowLogic), the Pool implementation
   linked to them and initialized, ``setPoolImpl`` (the provider deploys the proxy and initializes it).
3. ConfiguratorLogic, the PoolConfigurator implementation linked to it, ``setPoolConfiguratorImpl``.
4. The price sources: one ``SettablePriceFeedSet`` transaction (``solidity/SettablePriceFeedSet.sol``)
   creates one ``SettablePriceFeed`` per token (Chainlink-style, 8-decimal USD answer: ``decimals``,
   ``latestAnswer`` -- what AaveOracle reads -- and ``latestRoundData`` with ``updatedAt`` = the block
   time of the last update) plus a constant USD / USD feed; AaveOracle(provider, assets, sources, no
   fallback, USD base 0x0, unit 1e8) registers them (its constructor runs the same
   ``_setAssetsSources`` as ``setAssetSources``, so no extra transaction), ``setPriceOracle``;
   AaveProtocolDataProvider, ``setPoolDataProvider``.
5. AToken / StableDebtToken / VariableDebtToken implementations, one
   DefaultReserveInterestRateStrategy per class (``market.RATE_STRATEGIES``), ``initReserves``, then
   per reserve: ``configureReserveAsCollateral``, ``setReserveBorrowing``, ``setReserveFactor``,
   ``setLiquidationProtocolFee``; the e-mode category and its assets.
6. UiPoolDataProviderV3(the WETH feed as ETH / USD, the USD / USD feed at 1e8).

Prices move with one ``SettablePriceFeedSet.setAnswers`` transaction from the admin (one block): each
moved token's feed starts a new round stamped with that block's time, so every reader of the source
(AaveOracle, UiPoolDataProviderV3) sees the new price from that block on, and the adapters' oracle
freshness (``latestRoundData().updatedAt``) sees the update.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from aggregator.devnet.artifacts import load_artifact
from aggregator.devnet.market import (
    AAVE_RESERVES,
    BASE_CURRENCY_UNIT,
    EMODE_ETH,
    RATE_STRATEGIES,
    TOKENS,
    price_to_base,
    token_price,
)
from aggregator.devnet.solc import compile_devnet_contracts
from aggregator.devnet.tokens import approve, mint
from aggregator.devnet.txs import Txs
from aggregator.errors import ConfigError

__all__ = [
    "POOL_LIBRARIES",
    "AaveDeployment",
    "borrow",
    "deploy_aave",
    "deploy_price_feeds",
    "pool",
    "set_aave_prices",
    "set_user_emode",
    "supply",
]

MARKET_ID = "crossmargin devnet"
VARIABLE_RATE = 2
POOL_LIBRARIES = (
    "SupplyLogic",
    "BorrowLogic",
    "LiquidationLogic",
    "EModeLogic",
    "BridgeLogic",
    "PoolLogic",
    "FlashLoanLogic",  # after BorrowLogic: it is linked against it
)
FEED_DECIMALS = 8
USD_FEED = "USD"  # key of the constant USD / USD feed in deploy_price_feeds' answer


@dataclass
class AaveDeployment:
    """Addresses of one devnet Aave V3 market (all checksummed)."""

    pool_addresses_provider: str
    acl_manager: str
    pool: str
    pool_impl: str
    pool_configurator: str
    oracle: str
    data_provider: str
    ui_pool_data_provider: str
    atoken_impl: str
    stable_debt_token_impl: str
    variable_debt_token_impl: str
    treasury: str
    admin: str
    rate_strategies: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    price_sources: dict[str, str] = field(default_factory=dict)  # token symbol -> SettablePriceFeed
    eth_usd_source: str = ""  # UiPoolDataProviderV3's network base token feed
    atokens: dict[str, str] = field(default_factory=dict)
    variable_debt_tokens: dict[str, str] = field(default_factory=dict)
    emode_category: int = EMODE_ETH.category_id
    price_feed_set: str = ""  # the SettablePriceFeedSet that created the sources and moves them
    usd_usd_source: str = ""  # UiPoolDataProviderV3's market reference currency feed (constant 1e8)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AaveDeployment:
        return cls(**data)


def pool(txs: Txs, deployment: AaveDeployment) -> Contract:
    """The Pool proxy bound to the Pool ABI."""
    return txs.contract(load_artifact("Pool"), deployment.pool)


def deploy_aave(
    txs: Txs,
    deployer: str,
    tokens: dict[str, ChecksumAddress],
    factor_prices: dict[str, Decimal],
    *,
    treasury: str,
) -> AaveDeployment:
    """Deploy and configure the whole market (see the module docstring); ``deployer`` becomes every admin."""
    art = load_artifact
    provider = txs.deploy(art("PoolAddressesProvider"), MARKET_ID, deployer, sender=deployer)
    txs.transact(provider.functions.setACLAdmin(deployer), deployer)
    acl = txs.deploy(art("ACLManager"), provider.address, sender=deployer)
    txs.transact(provider.functions.setACLManager(acl.address), deployer)
    for role in ("addPoolAdmin", "addRiskAdmin", "addEmergencyAdmin", "addAssetListingAdmin"):
        txs.transact(acl.functions[role](deployer), deployer)

    libraries: dict[str, str] = {}
    for name in POOL_LIBRARIES:
        libraries[name] = txs.deploy(art(name), sender=deployer, libraries=libraries).address
    pool_impl = txs.deploy(art("Pool"), provider.address, sender=deployer, libraries=libraries)
    txs.transact(pool_impl.functions.initialize(provider.address), deployer)
    txs.transact(provider.functions.setPoolImpl(pool_impl.address), deployer)
    pool_address = provider.functions.getPool().call()

    configurator_logic = txs.deploy(art("ConfiguratorLogic"), sender=deployer).address
    libraries["ConfiguratorLogic"] = configurator_logic
    configurator_impl = txs.deploy(
        art("PoolConfigurator"), sender=deployer, libraries={"ConfiguratorLogic": configurator_logic}
    )
    txs.transact(configurator_impl.functions.initialize(provider.address), deployer)
    txs.transact(provider.functions.setPoolConfiguratorImpl(configurator_impl.address), deployer)
    configurator = txs.contract(art("PoolConfigurator"), provider.functions.getPoolConfigurator().call())

    feed_set, feeds = deploy_price_feeds(txs, deployer, factor_prices)
    sources = {s.symbol: feeds[s.symbol] for s in TOKENS}
    assets = [tokens[s.symbol] for s in TOKENS]
    oracle = txs.deploy(
        art("AaveOracle"),
        provider.address,
        assets,
        [sources[s.symbol] for s in TOKENS],
        "0x0000000000000000000000000000000000000000",
        "0x0000000000000000000000000000000000000000",
        BASE_CURRENCY_UNIT,
        sender=deployer,
    )
    txs.transact(provider.functions.setPriceOracle(oracle.address), deployer)
    data_provider = txs.deploy(art("AaveProtocolDataProvider"), provider.address, sender=deployer)
    txs.transact(provider.functions.setPoolDataProvider(data_provider.address), deployer)

    atoken_impl = txs.deploy(art("AToken"), pool_address, sender=deployer)
    stable_impl = txs.deploy(art("StableDebtToken"), pool_address, sender=deployer)
    variable_impl = txs.deploy(art("VariableDebtToken"), pool_address, sender=deployer)
    strategies: dict[str, str] = {
        name: txs.deploy(
            art("DefaultReserveInterestRateStrategy"),
            provider.address,
            s.optimal_usage_ratio,
            s.base_variable_borrow_rate,
            s.variable_rate_slope1,
            s.variable_rate_slope2,
            s.stable_rate_slope1,
            s.stable_rate_slope2,
            s.base_stable_rate_offset,
            s.stable_rate_excess_offset,
            s.optimal_stable_to_total_debt_ratio,
            sender=deployer,
        ).address
        for name, s in RATE_STRATEGIES.items()
    }
    decimals = {s.symbol: s.decimals for s in TOKENS}
    inputs = [
        (
            atoken_impl.address,
            stable_impl.address,
            variable_impl.address,
            decimals[r.symbol],
            strategies[r.strategy],
            tokens[r.symbol],
            treasury,
            "0x0000000000000000000000000000000000000000",
            f"Aave devnet {r.symbol}",
            f"aDev{r.symbol}",
            f"Aave devnet variable debt {r.symbol}",
            f"variableDebtDev{r.symbol}",
            f"Aave devnet stable debt {r.symbol}",
            f"stableDebtDev{r.symbol}",
            b"",
        )
        for r in AAVE_RESERVES
    ]
    txs.transact(configurator.functions.initReserves(inputs), deployer)
    for r in AAVE_RESERVES:
        asset = tokens[r.symbol]
        txs.transact(
            configurator.functions.configureReserveAsCollateral(
                asset, r.ltv, r.liquidation_threshold, r.liquidation_bonus
            ),
            deployer,
        )
        if r.borrowable:
            txs.transact(configurator.functions.setReserveBorrowing(asset, True), deployer)
        txs.transact(configurator.functions.setReserveFactor(asset, r.reserve_factor), deployer)
        txs.transact(
            configurator.functions.setLiquidationProtocolFee(asset, r.liquidation_protocol_fee), deployer
        )
    e = EMODE_ETH
    txs.transact(
        configurator.functions.setEModeCategory(
            e.category_id, e.ltv, e.liquidation_threshold, e.liquidation_bonus,
            "0x0000000000000000000000000000000000000000", e.label,
        ),
        deployer,
    )
    for symbol in e.assets:
        txs.transact(configurator.functions.setAssetEModeCategory(tokens[symbol], e.category_id), deployer)

    ui = txs.deploy(art("UiPoolDataProviderV3"), sources["WETH"], feeds[USD_FEED], sender=deployer)

    pool_contract = txs.contract(art("Pool"), pool_address)
    atokens: dict[str, str] = {}
    vtokens: dict[str, str] = {}
    for r in AAVE_RESERVES:
        data = pool_contract.functions.getReserveData(tokens[r.symbol]).call()
        atokens[r.symbol] = data[8]
        vtokens[r.symbol] = data[10]
    return AaveDeployment(
        pool_addresses_provider=provider.address,
        acl_manager=acl.address,
        pool=pool_address,
        pool_impl=pool_impl.address,
        pool_configurator=configurator.address,
        oracle=oracle.address,
        data_provider=data_provider.address,
        ui_pool_data_provider=ui.address,
        atoken_impl=atoken_impl.address,
        stable_debt_token_impl=stable_impl.address,
        variable_debt_token_impl=variable_impl.address,
        treasury=Web3.to_checksum_address(treasury),
        admin=Web3.to_checksum_address(deployer),
        rate_strategies=strategies,
        libraries=libraries,
        price_sources=sources,
        eth_usd_source=sources["WETH"],
        atokens=atokens,
        variable_debt_tokens=vtokens,
        price_feed_set=feed_set,
        usd_usd_source=feeds[USD_FEED],
    )


def deploy_price_feeds(
    txs: Txs, deployer: str, factor_prices: dict[str, Decimal]
) -> tuple[str, dict[str, str]]:
    """One transaction: a ``SettablePriceFeedSet`` creating one 8-decimal USD feed per token of
    ``market.TOKENS`` (answer ``price_to_base(token_price)``) and the USD / USD feed (1e8).
    Returns the set's address and symbol (or ``USD_FEED``) -> feed address, read from ``feeds()``."""
    labels = [*(s.symbol for s in TOKENS), USD_FEED]
    answers = [*(price_to_base(token_price(s, factor_prices)) for s in TOKENS), BASE_CURRENCY_UNIT]
    feed_set = txs.deploy(
        compile_devnet_contracts().get("SettablePriceFeedSet").deployable,
        FEED_DECIMALS,
        [f"{label} / USD (devnet)" for label in labels],
        answers,
        sender=deployer,
    )
    created = feed_set.functions.feeds().call()
    if len(created) != len(labels):
        raise ConfigError(
            f"SettablePriceFeedSet created {len(created)} feeds, expected {len(labels)}", source="devnet"
        )
    pairs = zip(labels, created, strict=True)
    feeds: dict[str, str] = {label: Web3.to_checksum_address(a) for label, a in pairs}
    return feed_set.address, feeds


def set_aave_prices(txs: Txs, deployment: AaveDeployment, token_prices: dict[str, Decimal]) -> None:
    """Set the feed answer (USD, 8 decimals, truncated by ``price_to_base``) of each given token in
    one ``setAnswers`` transaction from the admin: one block, whose time becomes each feed's
    ``updatedAt`` (also with no token: a block is mined either way)."""
    if not deployment.price_feed_set:
        raise ConfigError(
            "this devnet's Aave price sources predate the settable feeds: "
            "run `crossmargin devnet down`, then `up`",
            source="devnet",
        )
    unknown = sorted(set(token_prices) - set(deployment.price_sources))
    if unknown:
        raise ConfigError(f"Aave devnet has no price source for {unknown}", source="devnet")
    feed_set = txs.contract(
        compile_devnet_contracts().get("SettablePriceFeedSet").deployable, deployment.price_feed_set
    )
    symbols = list(token_prices)
    fn = feed_set.functions.setAnswers(
        [Web3.to_checksum_address(deployment.price_sources[s]) for s in symbols],
        [price_to_base(token_prices[s]) for s in symbols],
    )
    txs.transact(fn, deployment.admin, what=f"moving the Aave devnet prices of {symbols}")


def supply(txs: Txs, deployment: AaveDeployment, user: str, token: str, amount: int) -> None:
    """Mint ``amount`` of ``token`` to ``user``, approve the Pool and supply it (becomes collateral)."""
    mint(txs, token, user, amount)
    approve(txs, token, user, deployment.pool, amount)
    txs.transact(pool(txs, deployment).functions.supply(token, amount, user, 0), user)


def borrow(txs: Txs, deployment: AaveDeployment, user: str, token: str, amount: int) -> None:
    """Borrow ``amount`` of ``token`` at the variable rate."""
    txs.transact(pool(txs, deployment).functions.borrow(token, amount, VARIABLE_RATE, 0, user), user)


def set_user_emode(txs: Txs, deployment: AaveDeployment, user: str, category: int) -> None:
    """``Pool.setUserEMode(category)`` for ``user``."""
    txs.transact(pool(txs, deployment).functions.setUserEMode(category), user)
