"""Oracle freshness of the lending adapters on the devnet, through to the ``oracle_stale`` alert rule.

The expected figures are read independently with web3: the pinned block's timestamp
(``eth_getBlockByNumber``) minus each feed's ``latestRoundData().updatedAt`` at that block, against the
heartbeats configured in the test's ``ChainSpec`` (default 3600 s, USDC 86400 s).

Devnet price sources: the Comet stand-in's ``SettablePriceFeed`` serves ``latestRoundData`` (stamped
with the block time on ``setAnswer``). Aave's ``MockAggregator`` (@aave/core-v3) has only
``latestAnswer``: the adapter reports the freshness as unknown; the test then points one reserve at a
``SettablePriceFeed`` through ``AaveOracle.setAssetSources``. Morpho's ``OracleMock`` has no feed
getters (unknown); the test creates a market whose oracle exposes MorphoChainlinkOracleV2's
``BASE_FEED_1`` / ``QUOTE_FEED_1`` getters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from web3 import Web3

from adapters.aave_v3 import AaveV3Adapter
from adapters.addresses import ChecksumAddress as Address
from adapters.base import AdapterContext
from adapters.compound_v3 import CompoundV3Adapter
from adapters.evm import EvmChainReader
from adapters.lending_common import DISCOVERY
from adapters.morpho_blue import MorphoBlueAdapter
from adapters.specs import AaveV3Deployment, ChainSpec, CompoundV3Deployment, MorphoBlueDeployment
from aggregator.alerts.decide import AlertOutcome, DedupKey, decide_alerts
from aggregator.alerts.rules import AlertsSettings
from aggregator.alerts.state import AlertState
from aggregator.devnet import comet as cm
from aggregator.devnet import morpho as mo
from aggregator.devnet.artifacts import load_artifact
from aggregator.devnet.market import TOKENS, price_to_base, token_price
from aggregator.devnet.network import Devnet
from aggregator.devnet.solc import STANDIN_SETTINGS, compile_devnet_contracts, compile_sources
from aggregator.devnet.tokens import approve, mint
from risk.model import AccountStatus, MarginAccount
from tests.devnet.lending_support import ASSETS, CHAIN, fund_wallet

pytestmark = pytest.mark.devnet

HEARTBEAT = 3_600
USDC_HEARTBEAT = 86_400
LATEST_ROUND_ABI = [
    {
        "type": "function", "name": "latestRoundData", "stateMutability": "view", "inputs": [],
        "outputs": [{"name": n, "type": t} for n, t in (
            ("roundId", "uint80"), ("answer", "int256"), ("startedAt", "uint256"), ("updatedAt", "uint256"),
            ("answeredInRound", "uint80"),
        )],
    }
]
ORACLE_SOURCE = """// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.19;

/// A Morpho oracle with MorphoChainlinkOracleV2's feed getters; the price is set at deployment.
contract FeedGetterOracle {
    address public immutable BASE_FEED_1;
    address public immutable BASE_FEED_2;
    address public immutable QUOTE_FEED_1;
    address public immutable QUOTE_FEED_2;
    uint256 public immutable price;

    constructor(address base1, address quote1, uint256 price_) {
        BASE_FEED_1 = base1;
        BASE_FEED_2 = address(0);
        QUOTE_FEED_1 = quote1;
        QUOTE_FEED_2 = address(0);
        price = price_;
    }
}
"""
CHANNELS = {"ops": {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/x"}}
RULE = {"name": "oracle", "metric": "oracle_stale", "warning": 60, "critical": 7_200, "channels": ["ops"]}


@pytest.fixture
def net(fresh_devnet: Devnet) -> Iterator[Devnet]:
    """The fresh devnet; the process-level discovery cache is emptied afterwards (the chain reverts,
    so price sources cached here must not outlive the test)."""
    DISCOVERY.clear()
    yield fresh_devnet
    DISCOVERY.clear()


def spec_of(rpc_url: str) -> ChainSpec:
    return ChainSpec(
        chain_id=31337, rpc_urls=(rpc_url,), max_call_gas=500_000_000, block_time_seconds=1.0,
        oracle_heartbeat_seconds=HEARTBEAT, oracle_heartbeats={"USDC": USDC_HEARTBEAT},
    )


def read(devnet: Devnet, adapter_type: Any, deployment: Any, wallets: Sequence[str]) -> list[MarginAccount]:
    """One cycle of one adapter over the real reader with the test's heartbeats."""

    async def run() -> list[MarginAccount]:
        async with httpx.AsyncClient() as http:
            reader = EvmChainReader(chain=CHAIN, spec=spec_of(devnet.rpc_url), http=http)
            context = AdapterContext(http=http, chains={CHAIN: reader}, assets=ASSETS)
            adapter = adapter_type(instance="devnet", spec=deployment, context=context)
            wallet_list = [Address(Web3.to_checksum_address(w)) for w in wallets]
            accounts: list[MarginAccount] = await adapter.read_accounts(wallet_list)
            return accounts

    accounts = asyncio.run(run())
    for account in accounts:
        assert account.status is AccountStatus.OK, account.status_reason
    return accounts


def breakdown(account: MarginAccount) -> dict[str, dict[str, Any]]:
    feeds = account.raw["oracle_feeds"]
    assert isinstance(feeds, dict)
    return feeds


def block_time(devnet: Devnet, account: MarginAccount) -> int:
    assert account.as_of.block_number is not None
    return int(devnet.w3.eth.get_block(account.as_of.block_number)["timestamp"])


def feed_updated_at(devnet: Devnet, feed: str, block: int) -> int:
    contract = devnet.w3.eth.contract(address=Web3.to_checksum_address(feed), abi=LATEST_ROUND_ABI)
    return int(contract.functions.latestRoundData().call(block_identifier=block)[3])


def expected_stale(devnet: Devnet, account: MarginAccount, feeds: Mapping[str, tuple[str, int]]) -> int:
    """Independent figure: max over ``feeds`` (label -> (feed, heartbeat)) of block time - updatedAt
    - heartbeat, at least 0; also checks each feed's age in the breakdown."""
    assert account.as_of.block_number is not None
    now = block_time(devnet, account)
    worst = None
    for label, (feed, heartbeat) in feeds.items():
        age = now - feed_updated_at(devnet, feed, account.as_of.block_number)
        entry = breakdown(account)[label]
        assert entry["age_seconds"] == age, (label, entry)
        assert entry["heartbeat_seconds"] == heartbeat
        assert Web3.to_checksum_address(entry["feed"]) == Web3.to_checksum_address(feed)
        worst = age - heartbeat if worst is None else max(worst, age - heartbeat)
    assert worst is not None
    return max(0, worst)


def decide(
    account: MarginAccount, previous: Mapping[DedupKey, AlertState] | None = None
) -> AlertOutcome:
    """One alert cycle at the pinned block's time (the value comes from ``oracle_stale_seconds``)."""
    alerts = AlertsSettings.model_validate({"channels": CHANNELS, "rules": [RULE]})
    return decide_alerts(
        alerts, portfolio="fund", accounts=[account], assessment=None, previous=previous or {},
        now=account.as_of.timestamp,
    )


def kinds(outcome: AlertOutcome) -> list[tuple[str, str]]:
    return [(d.kind, str(d.tier)) for d in outcome.decisions]


# --- Compound V3 (SettablePriceFeed: latestRoundData) ---------------------------------------------


def test_comet_staleness_fires_past_the_heartbeat_and_resolves_on_update(net: Devnet) -> None:
    assert net.state.comet is not None
    dep = cm.CometDeployment.from_dict(net.state.comet)
    spec = CompoundV3Deployment(chain=CHAIN, comet=dep.comet, base_symbol=dep.base)
    fund = net.wallets["fund"]
    held = {"USDC": (dep.price_feeds["USDC"], USDC_HEARTBEAT), "WETH": (dep.price_feeds["WETH"], HEARTBEAT)}

    # fresh: every feed updated within its heartbeat (refreshed here, whatever the devnet did before)
    refresh_comet(net, dep)
    (account,) = read(net, CompoundV3Adapter, spec, [fund])
    assert set(breakdown(account)) == set(held)
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0
    first = decide(account)
    assert kinds(first) == []

    # no price update for longer than the WETH heartbeat: stale by block time - updatedAt - 3600
    net.warp(HEARTBEAT + 900)
    (account,) = read(net, CompoundV3Adapter, spec, [fund])
    stale = expected_stale(net, account, held)
    assert stale >= 900
    assert account.raw["oracle_stale_seconds"] == stale
    assert account.raw["oracle_stalest"] == "WETH"  # USDC is older-equal but has a 1-day heartbeat
    weth_updated = feed_updated_at(net, held["WETH"][0], account.as_of.block_number or 0)
    assert account.raw["oracle_updated_at"] == weth_updated
    assert account.raw["oracle_age_seconds"] == block_time(net, account) - min(
        weth_updated, feed_updated_at(net, held["USDC"][0], account.as_of.block_number or 0)
    )
    fired = decide(account, first.states)
    assert kinds(fired) == [("fire", "warning")]
    assert fired.decisions[0].key == ("oracle", "fund", account.key)
    assert fired.decisions[0].value == stale

    # a price update (same prices, new round) makes it fresh: the alert resolves
    refresh_comet(net, dep)
    (account,) = read(net, CompoundV3Adapter, spec, [fund])
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0
    assert [d.kind for d in decide(account, fired.states).decisions] == ["resolve"]


def refresh_comet(devnet: Devnet, dep: cm.CometDeployment) -> None:
    prices = {t.symbol: token_price(t, devnet.factor_prices) for t in TOKENS if t.symbol in dep.price_feeds}
    cm.set_comet_prices(devnet.txs, dep, prices)


# --- Aave V3 (MockAggregator: no latestRoundData; then a SettablePriceFeed source) --------------


def test_aave_mock_sources_are_unknown_then_a_round_data_source_is_measured(net: Devnet) -> None:
    spec = AaveV3Deployment(chain=CHAIN, pool_addresses_provider=net.aave.pool_addresses_provider)
    fund = net.wallets["fund"]
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    feeds = breakdown(account)
    assert set(feeds) == {"WBTC", "wstETH", "DAI", "WETH"}  # AAVE_BOOK["fund"]
    assert all("latestRoundData" in str(f["reason"]) for f in feeds.values()), feeds
    assert "oracle_stale_seconds" not in account.raw
    assert kinds(decide(account)) == []  # unknown freshness: no observation, no alert

    # point WBTC at a Chainlink-style feed with the same answer (the Pool's price does not move)
    wbtc = next(t for t in TOKENS if t.symbol == "WBTC")
    answer = price_to_base(token_price(wbtc, net.factor_prices))
    feed = net.txs.deploy(
        compile_devnet_contracts().get("SettablePriceFeed").deployable, 8, "WBTC / USD", answer,
        sender=net.wallets["deployer"],
    )
    oracle = net.txs.contract(load_artifact("AaveOracle"), net.aave.oracle)
    net.txs.transact(
        oracle.functions.setAssetSources([net.tokens["WBTC"]], [feed.address]), net.wallets["deployer"]
    )
    (account,) = read(net, AaveV3Adapter, spec, [fund])  # the cached source changed: unknown once
    assert "changed" in str(breakdown(account)["WBTC"]["reason"])
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    held = {"WBTC": (feed.address, HEARTBEAT)}
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0

    net.warp(HEARTBEAT + 120)
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    stale = expected_stale(net, account, held)
    assert 120 <= stale == account.raw["oracle_stale_seconds"]
    assert account.raw["oracle_stalest"] == "WBTC"
    fired = decide(account)
    assert kinds(fired) == [("fire", "warning")]

    net.txs.transact(feed.functions.setAnswer(answer), net.wallets["deployer"])
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0
    assert [d.kind for d in decide(account, fired.states).decisions] == ["resolve"]


# --- Morpho Blue (OracleMock: no getters; a market whose oracle has BASE/QUOTE feeds) -----------


def test_morpho_feed_getters_are_followed_and_the_worst_feed_counts(net: Devnet) -> None:
    assert net.state.morpho is not None
    dep = mo.MorphoDeployment.from_dict(net.state.morpho)
    head = int(net.w3.eth.block_number)
    fund = net.wallets["fund"]
    mock_spec = MorphoBlueDeployment(
        chain=CHAIN, morpho=dep.morpho, start_block=head, markets=(dep.markets["WETH/USDC"].id,)
    )
    (mock_account,) = read(net, MorphoBlueAdapter, mock_spec, [fund])
    assert "no BASE_FEED/QUOTE_FEED getters" in str(breakdown(mock_account))
    assert "oracle_stale_seconds" not in mock_account.raw

    deployer = net.wallets["deployer"]
    settable = compile_devnet_contracts().get("SettablePriceFeed").deployable
    base = net.txs.deploy(settable, 8, "ETH / USD", 3_000 * 10**8, sender=deployer)
    quote = net.txs.deploy(settable, 8, "USDC / USD", 10**8, sender=deployer)
    template = dep.markets["WETH/USDC"]
    price = int(
        net.txs.contract(mo.compile_morpho().get("OracleMock").deployable, template.oracle)
        .functions.price().call()
    )
    compiled = compile_sources({"FeedGetterOracle.sol": ORACLE_SOURCE}, STANDIN_SETTINGS)
    oracle = net.txs.deploy(
        compiled.get("FeedGetterOracle").deployable, base.address, quote.address, price, sender=deployer
    )
    params = (template.loan_token, template.collateral_token, oracle.address, template.irm, template.lltv)
    morpho = mo.morpho_contract(net.txs, dep)
    net.txs.transact(morpho.functions.createMarket(params), deployer)
    market = mo.market_id(*params)
    wallet = Web3.to_checksum_address("0x0000000000000000000000000000000000a11ce5")
    fund_wallet(net.w3, wallet)
    mint(net.txs, template.collateral_token, wallet, 10**18)
    approve(net.txs, template.collateral_token, wallet, dep.morpho, 10**18)
    net.txs.transact(morpho.functions.supplyCollateral(params, 10**18, wallet, b""), wallet)

    spec = MorphoBlueDeployment(chain=CHAIN, morpho=dep.morpho, start_block=head, markets=(market,))
    held = {"WETH BASE_FEED_1": (base.address, HEARTBEAT), "USDC QUOTE_FEED_1": (quote.address, USDC_HEARTBEAT)}
    (account,) = read(net, MorphoBlueAdapter, spec, [wallet])  # first cycle: getters, then one more batch
    assert set(breakdown(account)) == set(held)
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0

    net.warp(HEARTBEAT + 300)
    net.txs.transact(quote.functions.setAnswer(10**8), deployer)  # the quote feed alone is fresh
    (account,) = read(net, MorphoBlueAdapter, spec, [wallet])  # cached getters: round B only
    stale = expected_stale(net, account, held)
    assert stale >= 300
    assert account.raw["oracle_stale_seconds"] == stale
    assert account.raw["oracle_stalest"] == "WETH BASE_FEED_1"
    fired = decide(account)
    assert kinds(fired) == [("fire", "warning")]

    net.txs.transact(base.functions.setAnswer(3_000 * 10**8), deployer)
    (account,) = read(net, MorphoBlueAdapter, spec, [wallet])
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0
    assert [d.kind for d in decide(account, fired.states).decisions] == ["resolve"]

