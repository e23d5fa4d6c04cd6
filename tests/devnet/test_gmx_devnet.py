"""GMX v2 end to end on anvil: the Reader / DataStore stand-ins, the venue server's ``/prices/tickers``
over real HTTP, the real EVM reader (Multicall3) and the adapter.

The stand-in's own ``isPositionLiquidatable(..., true, true)`` (Solidity, read directly with web3 at
the ticker prices) is the reference: our exact ``h < 1`` and the risk engine's ``h < 1`` must agree
with it over hypothesis-generated positions, costs, parameters and price moves."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from web3 import Web3

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetInfo, AssetMap
from adapters.base import AdapterContext
from adapters.evm import EvmChainReader
from adapters.gmx_v2 import GmxV2Adapter
from adapters.specs import GmxV2Deployment
from aggregator.cli import app
from aggregator.cli.app import run
from aggregator.devnet import gmx
from aggregator.devnet.network import Devnet
from aggregator.devnet.tokens import deploy_tokens
from aggregator.devnet.txs import Txs
from aggregator.devnet.user_config import write_user_config
from aggregator.devnet.venues import VenueServer
from risk.arrays import compile_book
from risk.health import current_state
from risk.model import AccountStatus, FactorId, MarginAccount, Portfolio
from tests.devnet.lending_support import chain_spec
from tests.fixtures_devnet import AnvilChain
from tests.unit.risk.builders import market

pytestmark = pytest.mark.devnet

P30 = 10**30
CHAIN = "devnet"
ASSETS = AssetMap(
    {"ETH": AssetInfo(FactorId("ETH")), "BTC": AssetInfo(FactorId("BTC")), "USDC": AssetInfo(FactorId("USD"))}
)
BASE = {"ETH": Decimal(3000), "BTC": Decimal(60000)}
DECIMALS = {"WETH": 18, "WBTC": 8, "USDC": 6}


@dataclass
class Env:
    txs: Txs
    deployment: gmx.GmxDeployment
    server: VenueServer
    rpc_url: str

    @property
    def tickers_url(self) -> str:
        return f"{self.server.url}/prices/tickers"


@pytest.fixture(scope="module")
def env(anvil: AnvilChain) -> Iterator[Env]:
    snapshot = anvil.snapshot()
    txs = Txs(anvil.w3)
    tokens = deploy_tokens(txs, anvil.accounts[0])
    deployment = gmx.deploy_gmx(txs, anvil.accounts[0], dict(tokens))
    with VenueServer() as server:
        gmx.seed_tickers(server.url, deployment)
        yield Env(txs, deployment, server, anvil.rpc_url)
    anvil.revert(snapshot)


def read(env: Env, wallets: Sequence[str]) -> list[MarginAccount]:
    """One cycle of the adapter over the real reader and the real tickers endpoint."""

    async def run() -> list[MarginAccount]:
        async with httpx.AsyncClient() as http:
            reader = EvmChainReader(chain=CHAIN, spec=chain_spec(env.rpc_url), http=http)
            spec = GmxV2Deployment(
                chain=CHAIN,
                reader=env.deployment.reader,
                data_store=env.deployment.data_store,
                referral_storage=env.deployment.referral_storage,
                tickers_url=env.tickers_url,
            )
            adapter = GmxV2Adapter(
                instance="devnet",
                spec=spec,
                context=AdapterContext(http=http, chains={CHAIN: reader}, assets=ASSETS),
            )
            return await adapter.read_accounts(
                [ChecksumAddress(Web3.to_checksum_address(w)) for w in wallets]
            )

    return asyncio.run(run())


def admin(env: Env, path: str, body: dict[str, object]) -> None:
    response = httpx.post(f"{env.server.url}/_devnet/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text


def venue_says(env: Env, key: bytes, market: dict[str, str]) -> tuple[bool, str, list[int]]:
    """The stand-in's isPositionLiquidatable(..., true, true) at the current ticker prices."""
    tickers = {
        Web3.to_checksum_address(t["tokenAddress"]): t for t in httpx.get(env.tickers_url, timeout=10).json()
    }

    def price(token: str) -> tuple[int, int]:
        t = tickers[Web3.to_checksum_address(token)]
        return int(t["minPrice"]), int(t["maxPrice"])

    props = (market["market"], market["index"], market["long"], market["short"])
    prices = (price(market["index"]), price(market["long"]), price(market["short"]))
    reader = gmx.reader_contract(env.txs, env.deployment)
    flag, reason, info = reader.functions.isPositionLiquidatable(
        env.deployment.data_store, env.deployment.referral_storage, key, props, prices, True, True
    ).call()
    return bool(flag), str(reason), list(info)


def engine_health(account: MarginAccount) -> float:
    prices = {str(p.factor): float(p.price) for p in account.positions}
    book = compile_book(Portfolio("p", (account,)), market(prices | {"USD": 1.0}))
    return float(current_state(book).health[0])


_wallets = (Web3.to_checksum_address(f"0x{i:040x}") for i in itertools.count(0x6D5000))


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    market_name, index_symbol = draw(st.sampled_from([("ETH/USD", "WETH"), ("BTC/USD", "WBTC")]))
    factor = "ETH" if index_symbol == "WETH" else "BTC"
    leverage = Decimal(draw(st.integers(11, 1200))) / 10
    size_usd = Decimal(draw(st.integers(100, 2_000_000)))
    return {
        "market": market_name,
        "index_symbol": index_symbol,
        "factor": factor,
        "is_long": draw(st.booleans()),
        "collateral_symbol": draw(st.sampled_from([index_symbol, "USDC"])),
        "size_usd": size_usd,
        "leverage": leverage,
        "entry_move": Decimal(draw(st.integers(-300, 300))) / 1000,
        "price_move": Decimal(draw(st.integers(-400, 400))) / 1000,
        "spread": draw(st.sampled_from(["0", "0.001"])),
        "close_impact": Decimal(draw(st.integers(-300, 100))) / 10_000,
        "borrowing": Decimal(draw(st.integers(0, 200))) / 10_000,
        "funding": Decimal(draw(st.integers(0, 200))) / 10_000,
        "pending": Decimal(draw(st.integers(-100, 100))) / 10_000,
        "liq_factor": draw(st.sampled_from(["0.005", "0.01", "0.02"])),
        "max_impact": draw(st.sampled_from(["0", "0.005", "0.01"])),
        "min_usd": draw(st.sampled_from(["0", "1", "50"])),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_h_below_one_exactly_when_the_stand_in_liquidates(env: Env, case: dict[str, object]) -> None:
    d = env.deployment
    index_symbol, factor = str(case["index_symbol"]), str(case["factor"])
    coll_symbol = str(case["collateral_symbol"])
    size_usd, leverage = Decimal(str(case["size_usd"])), Decimal(str(case["leverage"]))
    entry = BASE[factor] * (1 + Decimal(str(case["entry_move"])))
    now = BASE[factor] * (1 + Decimal(str(case["price_move"])))
    coll_price = BASE[factor] if coll_symbol != "USDC" else Decimal(1)
    size_in_tokens = int(size_usd / entry * 10 ** DECIMALS[index_symbol])
    collateral = int(size_usd / leverage / coll_price * 10 ** DECIMALS[coll_symbol])

    gmx.set_market_params(
        env.txs, d, str(case["market"]),
        min_collateral_factor_for_liquidation=Decimal(str(case["liq_factor"])),
        max_position_impact_factor_for_liquidations=Decimal(str(case["max_impact"])),
    )  # fmt: skip
    gmx.set_min_collateral_usd(env.txs, d, Decimal(str(case["min_usd"])))
    wallet = next(_wallets)
    key = gmx.open_position(
        env.txs, d, wallet, str(case["market"]), is_long=bool(case["is_long"]),
        size_in_usd=int(size_usd * P30), size_in_tokens=size_in_tokens,
        collateral_token=d.tokens[coll_symbol], collateral_amount=collateral,
        pending_impact_amount=int(size_in_tokens * Decimal(str(case["pending"]))),
    )  # fmt: skip
    gmx.set_costs(
        env.txs, d, key,
        close_impact_usd=int(size_usd * Decimal(str(case["close_impact"])) * P30),
        borrowing_fee_usd=int(size_usd * Decimal(str(case["borrowing"])) * P30),
        funding_fee_amount=int(collateral * Decimal(str(case["funding"]))),
    )  # fmt: skip
    admin(env, "seed/gmx", {"spread": str(case["spread"])})
    admin(env, "price", {"factor": factor, "price": str(now)})
    try:
        accounts = read(env, [wallet])
        flag, reason, info = venue_says(env, key, d.markets[str(case["market"])])
    finally:
        admin(env, "price", {"factor": factor, "price": str(BASE[factor])})

    event(f"venue: {reason or 'healthy'}")
    assert len(accounts) == 1, accounts
    account = accounts[0]
    assert account.status is AccountStatus.OK
    raw = account.raw
    assert raw["position_key"] == "0x" + key.hex()
    assert raw["venue_is_liquidatable"] is flag and raw["venue_reason"] == reason
    assert raw["venue_remaining_usd"] == info[0]
    assert raw["exact_remaining_usd"] == info[0]  # our rule reproduces the stand-in's remaining collateral
    h = raw["exact_health"]
    assert isinstance(h, Decimal)
    assert (h < 1) is flag, (h, reason, info)
    assert raw["liquidatable_mismatch"] is False
    assert account.venue_health == h  # no model drift against the stand-in, early returns included
    engine = engine_health(account)
    if abs(float(h) - 1) > 1e-9:
        assert (engine < 1) is flag
        assert engine == pytest.approx(float(h), rel=1e-9)


def test_empty_wallet_is_an_empty_ok_result(env: Env) -> None:
    assert read(env, [next(_wallets)]) == []


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("500", "HTTP 500"),
        ("garbage", "not JSON"),
        ("missing_field", "tickers.0.tokenAddress: Field required"),
    ],
)
def test_tickers_faults_make_every_wallet_unavailable_with_the_reason(
    env: Env, mode: str, reason: str
) -> None:
    wallet = next(_wallets)
    gmx.open_position(
        env.txs, env.deployment, wallet, "ETH/USD", is_long=True, size_in_usd=1000 * P30,
        size_in_tokens=10**18 // 3, collateral_token=env.deployment.tokens["USDC"], collateral_amount=200 * 10**6,
    )  # fmt: skip
    empty = next(_wallets)
    admin(env, "fault", {"venue": "gmx", "mode": mode})
    try:
        accounts = read(env, [wallet, empty])
    finally:
        admin(env, "fault", {"venue": "gmx", "mode": "none"})
    assert [a.wallet for a in accounts] == [wallet, empty]
    for account in accounts:
        assert account.status is AccountStatus.UNAVAILABLE
        assert account.status_reason is not None and reason in account.status_reason
        assert "tickers" in account.status_reason
    healthy = read(env, [wallet])
    assert len(healthy) == 1 and healthy[0].status is AccountStatus.OK


def test_token_without_ticker_makes_only_its_wallet_unavailable(env: Env) -> None:
    with_ticker, without = next(_wallets), next(_wallets)
    d = env.deployment
    gmx.open_position(
        env.txs, d, with_ticker, "ETH/USD", is_long=False, size_in_usd=1000 * P30, size_in_tokens=10**18 // 3,
        collateral_token=d.tokens["USDC"], collateral_amount=200 * 10**6,
    )  # fmt: skip
    orphan = Web3.to_checksum_address("0x" + "ab" * 20)  # a market whose index token has no ticker
    market_token = Web3.to_checksum_address("0x" + "cd" * 20)
    reader = gmx.reader_contract(env.txs, d)
    env.txs.transact(
        reader.functions.setMarket((market_token, orphan, d.tokens["WETH"], d.tokens["USDC"])), d.owner
    )
    gmx.open_position(
        env.txs, d, without, market_token, is_long=True, size_in_usd=1000 * P30, size_in_tokens=10**18,
        collateral_token=d.tokens["USDC"], collateral_amount=200 * 10**6,
    )  # fmt: skip
    by_wallet = {a.wallet: a for a in read(env, [with_ticker, without])}
    assert by_wallet[with_ticker].status is AccountStatus.OK
    assert by_wallet[without].status is AccountStatus.UNAVAILABLE
    assert f"no GMX ticker for token {orphan}" in str(by_wallet[without].status_reason)


def test_scan_only_gmx_on_the_devnet(devnet: Devnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert devnet.state.gmx is not None, "GMX stand-in missing: " + "; ".join(devnet.state.notes)
    config = write_user_config(devnet.state, tmp_path / "config.toml")
    fund = devnet.wallets["fund"]
    monkeypatch.setattr(
        sys,
        "argv",
        ["crossmargin", "scan", fund, "--config", str(config), "--only", "gmx_v2:devnet", "--json"],
    )
    code = run(app)
    doc = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert code == 0, doc
    accounts = [a for a in doc["accounts"] if a["deployment"] == "gmx_v2:devnet"]
    assert len(accounts) == 1 and accounts[0]["status"] == "ok"
    # GMX_BOOK: (3,000 USDC - 0.07 % x 30,000) / (1 % x 30,000) = 2,979 / 300
    assert Decimal(str(accounts[0]["health"])) == pytest.approx(Decimal("9.93"), rel=Decimal("1e-6"))
