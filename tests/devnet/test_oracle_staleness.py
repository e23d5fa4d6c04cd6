"""Oracle freshness of the lending adapters on the devnet, through to the ``oracle_stale`` alert rule.

The expected figures are read independently with web3: the pinned block's timestamp
(``eth_getBlockByNumber``) minus each feed's ``latestRoundData().updatedAt`` at that block, against the
heartbeats configured in the test's ``ChainSpec`` (default 3600 s, USDC 86400 s).

Devnet price sources: every one is a ``SettablePriceFeed`` (``aggregator/devnet/solidity``), which
serves ``latestRoundData`` stamped with the block time of its last ``setAnswer``. The Comet stand-in
has its own feeds; Aave's sources (one per reserve, registered in the AaveOracle) are moved by
``Devnet.set_price``; Morpho's market oracles (``FeedGetterOracle``: a set price plus
MorphoChainlinkOracleV2's ``BASE_FEED_1`` / ``QUOTE_FEED_1`` getters) name those same Aave feeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
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
from aggregator.devnet.aave import set_aave_prices
from aggregator.devnet.artifacts import load_artifact
from aggregator.devnet.market import TOKENS, price_to_base, token_price
from aggregator.devnet.network import Devnet
from risk.model import AccountStatus, MarginAccount
from tests.devnet.lending_support import ASSETS, CHAIN

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


# --- Aave V3 (the deployed SettablePriceFeed sources, moved by Devnet.set_price) ----------------


def test_aave_deployed_sources_are_measured_and_set_price_refreshes_them(net: Devnet) -> None:
    spec = AaveV3Deployment(chain=CHAIN, pool_addresses_provider=net.aave.pool_addresses_provider)
    fund = net.wallets["fund"]
    aave = net.aave
    oracle = net.txs.contract(load_artifact("AaveOracle"), aave.oracle)
    held: dict[str, tuple[str, int]] = {}
    for symbol in ("WBTC", "wstETH", "DAI", "WETH"):  # AAVE_BOOK["fund"]
        source = oracle.functions.getSourceOfAsset(net.tokens[symbol]).call()
        assert Web3.to_checksum_address(source) == Web3.to_checksum_address(aave.price_sources[symbol])
        held[symbol] = (source, HEARTBEAT)

    # every source starts a round on the current prices in one block stamped updatedAt
    refresh_aave(net)
    update_block = net.w3.eth.get_block("latest")
    for symbol, (source, _) in held.items():
        round_data = round_of(net, source, int(update_block["number"]))
        spec_of_token = next(t for t in TOKENS if t.symbol == symbol)
        answer = price_to_base(token_price(spec_of_token, net.factor_prices))
        assert round_data[3] == update_block["timestamp"]  # updatedAt = the update's block time
        assert round_data[1] == answer == oracle.functions.getAssetPrice(net.tokens[symbol]).call()
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    assert set(breakdown(account)) == set(held)
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0
    first = decide(account)
    assert kinds(first) == []

    # no update for longer than the heartbeat: every source is stale, the alert fires
    net.warp(HEARTBEAT + 120)
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    stale = expected_stale(net, account, held)
    assert 120 <= stale == account.raw["oracle_stale_seconds"]
    assert account.raw["oracle_stalest"] in held
    fired = decide(account, first.states)
    assert kinds(fired) == [("fire", "warning")]
    assert fired.decisions[0].value == stale

    # Devnet.set_price moves ETH: WETH and wstETH are fresh, WBTC and DAI still stale
    net.set_price("ETH", net.factor_prices["ETH"])
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    stale = expected_stale(net, account, held)
    assert stale >= 120 and account.raw["oracle_stale_seconds"] == stale
    feeds = breakdown(account)
    assert feeds["WETH"]["stale_seconds"] == feeds["wstETH"]["stale_seconds"] == 0
    assert account.raw["oracle_stalest"] in ("WBTC", "DAI")
    assert "resolve" not in [d.kind for d in decide(account, fired.states).decisions]

    # ... then BTC and USD: every source is fresh again, the alert resolves
    net.set_price("BTC", net.factor_prices["BTC"])
    net.set_price("USD", net.factor_prices["USD"])
    (account,) = read(net, AaveV3Adapter, spec, [fund])
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0
    assert [d.kind for d in decide(account, fired.states).decisions] == ["resolve"]


def refresh_aave(devnet: Devnet) -> None:
    prices = {t.symbol: token_price(t, devnet.factor_prices) for t in TOKENS}
    set_aave_prices(devnet.txs, devnet.aave, prices)


def round_of(devnet: Devnet, feed: str, block: int) -> tuple[int, int, int, int, int]:
    contract = devnet.w3.eth.contract(address=Web3.to_checksum_address(feed), abi=LATEST_ROUND_ABI)
    values = contract.functions.latestRoundData().call(block_identifier=block)
    return (int(values[0]), int(values[1]), int(values[2]), int(values[3]), int(values[4]))


# --- Morpho Blue (the deployed FeedGetterOracles name the Aave feeds) ----------------------------


def test_morpho_deployed_oracles_follow_the_aave_feeds_and_the_worst_feed_counts(net: Devnet) -> None:
    assert net.state.morpho is not None
    dep = mo.MorphoDeployment.from_dict(net.state.morpho)
    aave = net.aave
    market = dep.markets["WETH/USDC"]
    spec = MorphoBlueDeployment(
        chain=CHAIN, morpho=dep.morpho, start_block=int(net.w3.eth.block_number), markets=(market.id,)
    )
    fund = net.wallets["fund"]
    held = {
        "WETH BASE_FEED_1": (aave.price_sources["WETH"], HEARTBEAT),
        "USDC QUOTE_FEED_1": (aave.price_sources["USDC"], USDC_HEARTBEAT),
    }
    net.set_price("ETH", net.factor_prices["ETH"])
    net.set_price("USD", net.factor_prices["USD"])
    (account,) = read(net, MorphoBlueAdapter, spec, [fund])  # first cycle: getters, then one more batch
    assert set(breakdown(account)) == set(held)
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0

    net.warp(HEARTBEAT + 300)
    net.set_price("USD", net.factor_prices["USD"])  # the quote feed alone is fresh
    (account,) = read(net, MorphoBlueAdapter, spec, [fund])  # cached getters: round B only
    stale = expected_stale(net, account, held)
    assert stale >= 300
    assert account.raw["oracle_stale_seconds"] == stale
    assert account.raw["oracle_stalest"] == "WETH BASE_FEED_1"
    fired = decide(account)
    assert kinds(fired) == [("fire", "warning")]

    # a real move of ETH refreshes the base feed, and the oracle's price is still the exact 1e36 figure
    net.set_price("ETH", Decimal("3123.456789123"))
    (account,) = read(net, MorphoBlueAdapter, spec, [fund])
    assert account.raw["oracle_stale_seconds"] == expected_stale(net, account, held) == 0
    assert [d.kind for d in decide(account, fired.states).decisions] == ["resolve"]
    price_abi = mo.compile_morpho().get("OracleMock").deployable
    price = net.txs.contract(price_abi, market.oracle).functions.price().call()
    exact = Fraction(Decimal("3123.456789123")) * 10 ** (36 + 6 - 18)  # USDC at 1 USD
    assert price == exact.numerator // exact.denominator
