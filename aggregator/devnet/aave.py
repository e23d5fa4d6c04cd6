"""Deploy and configure Aave V3 (``@aave/core-v3`` 1.19.3 = Aave v3.0.2, ``POOL_REVISION() == 1``)
from the npm artifacts, the way aave-v3-deploy does it:

1. PoolAddressesProvider(marketId, owner); ACL admin = deployer; ACLManager; pool, risk, emergency
   and asset-listing admin roles for the deployer.
2. The seven Pool libraries (FlashLoanLogic is itself linked to BorrowLogic), the Pool implementation
   linked to them and initialized, ``setPoolImpl`` (the provider deploys the proxy and initializes it).
3. ConfiguratorLogic, the PoolConfigurator implementation linked to it, ``setPoolConfiguratorImpl``.
4. One MockAggregator per token (8-decimal USD answer), AaveOracle(provider, assets, sources, no
   fallback, USD base 0x0, unit 1e8), ``setPriceOracle``; AaveProtocolDataProvider,
   ``setPoolDataProvider``.
5. AToken / StableDebtToken / VariableDebtToken implementations, one
   DefaultReserveInterestRateStrategy per class (``market.RATE_STRATEGIES``), ``initReserves``, then
   per reserve: ``configureReserveAsCollateral``, ``setReserveBorrowing``, ``setReserveFactor``,
   ``setLiquidationProtocolFee``; the e-mode category and its assets.
6. UiPoolDataProviderV3(ETH/USD aggregator, USD/USD aggregator at 1e8).

Prices move by rewriting the MockAggregator's answer (storage slot 0, ``int256 _latestAnswer``) with
``anvil_setStorageAt`` and mining a block: every reader of the source (AaveOracle,
UiPoolDataProviderV3) sees the new price at the next block.
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
from aggregator.devnet.tokens import approve, mint
from aggregator.devnet.txs import Txs

__all__ = [
    "POOL_LIBRARIES",
    "AaveDeployment",
    "borrow",
    "deploy_aave",
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
_ANSWER_SLOT = "0x0"


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
    price_sources: dict[str, str] = field(default_factory=dict)  # token symbol -> MockAggregator
    eth_usd_source: str = ""  # UiPoolDataProviderV3's network base token feed
    atokens: dict[str, str] = field(default_factory=dict)
    variable_debt_tokens: dict[str, str] = field(default_factory=dict)
    emode_category: int = EMODE_ETH.category_id

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

    sources: dict[str, str] = {
        spec.symbol: txs.deploy(
            art("MockAggregator"), price_to_base(token_price(spec, factor_prices)), sender=deployer
        ).address
        for spec in TOKENS
    }
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

    usd_source = txs.deploy(art("MockAggregator"), BASE_CURRENCY_UNIT, sender=deployer).address
    ui = txs.deploy(art("UiPoolDataProviderV3"), sources["WETH"], usd_source, sender=deployer)

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
    )


def set_aave_prices(txs: Txs, deployment: AaveDeployment, token_prices: dict[str, Decimal]) -> None:
    """Rewrite the MockAggregator answer of each given token (USD price) and mine one block."""
    for symbol, price in token_prices.items():
        source = deployment.price_sources[symbol]
        value = "0x" + price_to_base(price).to_bytes(32, "big", signed=True).hex()
        txs.rpc("anvil_setStorageAt", [source, _ANSWER_SLOT, value])
    txs.rpc("evm_mine", [])


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
