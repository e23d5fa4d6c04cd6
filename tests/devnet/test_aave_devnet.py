"""Aave V3 on the devnet: the seeded book matches what the seeding intended, to the last digit, and
liquidations behave as Aave v3.0.2 specifies after a price move.

Expected figures are computed here from the amounts, the prices and the reserve parameters written out
literally (not read from the devnet's own modules), with v3.0.x rounding (``../shared/protocols/
lending.md`` §1.2): ``coll_i = amount*price // unit``; ``avgLT = Σ coll_i*LT_i // Σ coll_i``;
``HF = wadDiv(percentMul(coll, avgLT), debt)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.aave_v3 import AaveV3Adapter
from adapters.addresses import ChecksumAddress as Address
from adapters.base import AdapterContext, BlockRef, Call, CallResult
from adapters.evm import EvmChainReader
from adapters.specs import AaveV3Deployment
from aggregator.devnet.aave import pool
from aggregator.devnet.artifacts import load_artifact
from aggregator.devnet.book import AAVE_BOOK
from aggregator.devnet.network import Devnet
from aggregator.devnet.tokens import approve, erc20, mint
from aggregator.devnet.txs import TxError
from risk.model import AccountStatus, MarginAccount
from tests.devnet.lending_support import ASSETS, CHAIN, chain_spec

pytestmark = pytest.mark.devnet

UINT_MAX = 2**256 - 1
# symbol: (decimals, USD price * 1e8, LTV, LT, bonus)
PARAMS = {
    "WETH": (18, 3000 * 10**8, 8000, 8250, 10500),
    "WBTC": (8, 60000 * 10**8, 7300, 7800, 10500),
    "wstETH": (18, 3540 * 10**8, 6900, 7950, 10700),
    "USDC": (6, 1 * 10**8, 7700, 8000, 10450),
    "DAI": (18, 1 * 10**8, 6300, 7700, 10500),
}
EMODE_1 = {"assets": {"WETH", "wstETH"}, "ltv": 9000, "lt": 9300, "bonus": 10100}


def percent_mul(value: int, pct: int) -> int:
    return (value * pct + 5000) // 10000


def percent_div(value: int, pct: int) -> int:
    return (value * 10000 + pct // 2) // pct


def wad_div(a: int, b: int) -> int:
    return (a * 10**18 + b // 2) // b


def expected_account_data(
    supply: dict[str, Decimal], borrow: dict[str, Decimal], emode: int
) -> tuple[int, int, int, int, int, int]:
    coll = debt = sum_lt = sum_ltv = 0
    for symbol, amount in supply.items():
        decimals, price, ltv, lt, _ = PARAMS[symbol]
        if emode == 1 and symbol in EMODE_1["assets"]:
            ltv, lt = EMODE_1["ltv"], EMODE_1["lt"]
        value = int(amount * 10**decimals) * price // 10**decimals
        coll += value
        sum_lt += value * lt
        sum_ltv += value * ltv
    for symbol, amount in borrow.items():
        decimals, price, *_ = PARAMS[symbol]
        debt += int(amount * 10**decimals) * price // 10**decimals
    if coll == 0 and debt == 0:
        return (0, 0, 0, 0, 0, UINT_MAX)
    avg_lt, avg_ltv = sum_lt // coll, sum_ltv // coll
    available = max(0, percent_mul(coll, avg_ltv) - debt)
    hf = wad_div(percent_mul(coll, avg_lt), debt) if debt else UINT_MAX
    return (coll, debt, available, avg_lt, avg_ltv, hf)


def test_pool_is_aave_v3_0(devnet: Devnet) -> None:
    p = pool(devnet.txs, devnet.aave)
    assert p.functions.POOL_REVISION().call() == 1
    provider = devnet.txs.contract(load_artifact("PoolAddressesProvider"), devnet.aave.pool_addresses_provider)
    assert provider.functions.getPool().call() == devnet.aave.pool
    assert provider.functions.getPriceOracle().call() == devnet.aave.oracle
    assert provider.functions.getPoolDataProvider().call() == devnet.aave.data_provider
    assert len(devnet.w3.eth.get_code(devnet.state.multicall3)) > 1000


def test_reserve_parameters_as_configured(devnet: Devnet) -> None:
    data = devnet.txs.contract(load_artifact("AaveProtocolDataProvider"), devnet.aave.data_provider)
    oracle = devnet.txs.contract(load_artifact("AaveOracle"), devnet.aave.oracle)
    for symbol, (decimals, price, ltv, lt, bonus) in PARAMS.items():
        token = devnet.tokens[symbol]
        cfg = data.functions.getReserveConfigurationData(token).call()
        assert tuple(cfg[:4]) == (decimals, ltv, lt, bonus), symbol
        assert cfg[5] is True and cfg[8] is True and cfg[9] is False  # collateral, active, not frozen
        assert oracle.functions.getAssetPrice(token).call() == price
    p = pool(devnet.txs, devnet.aave)
    ltv, lt, bonus, source, label = p.functions.getEModeCategoryData(1).call()
    assert (ltv, lt, bonus, int(source, 16), label) == (9000, 9300, 10100, 0, "ETH correlated")


@pytest.mark.parametrize("name", [*AAVE_BOOK, "empty", "liquidator"])
def test_seeded_account_data_is_exactly_as_intended(devnet: Devnet, name: str) -> None:
    intent = AAVE_BOOK.get(name)
    expected = expected_account_data(
        intent.supply if intent else {}, intent.borrow if intent else {}, intent.emode if intent else 0
    )
    p = pool(devnet.txs, devnet.aave)
    got = p.functions.getUserAccountData(devnet.wallets[name]).call(block_identifier=devnet.state.seed_block)
    assert tuple(got) == expected
    if intent and intent.emode:
        assert p.functions.getUserEMode(devnet.wallets[name]).call() == intent.emode


def test_near_liquidation_user_is_just_above_one(devnet: Devnet) -> None:
    p = pool(devnet.txs, devnet.aave)
    hf = p.functions.getUserAccountData(devnet.wallets["near_liquidation"]).call()[5]
    assert 1.04e18 < hf < 1.06e18


def test_ui_pool_data_provider_lists_the_reserves(devnet: Devnet) -> None:
    ui = devnet.txs.contract(load_artifact("UiPoolDataProviderV3"), devnet.aave.ui_pool_data_provider)
    reserves, base = ui.functions.getReservesData(devnet.aave.pool_addresses_provider).call()
    assert {r[0] for r in reserves} == set(devnet.tokens.values())
    assert base[0] == 10**8  # marketReferenceCurrencyUnit
    users, emode = ui.functions.getUserReservesData(
        devnet.aave.pool_addresses_provider, devnet.wallets["emode"]
    ).call()
    assert emode == 1
    by_asset = {u[0]: u for u in users}
    wsteth = by_asset[devnet.tokens["wstETH"]]
    assert wsteth[1] == 10 * 10**18 and wsteth[2] is True  # scaled aToken balance (index 1 ray), collateral


def test_price_move_makes_user_liquidatable_and_liquidation_pays_the_bonus(fresh_devnet: Devnet) -> None:
    net, txs = fresh_devnet, fresh_devnet.txs
    p = pool(txs, net.aave)
    victim, healthy, liquidator = (net.wallets[n] for n in ("near_liquidation", "hedged", "liquidator"))
    weth, usdc = net.tokens["WETH"], net.tokens["USDC"]

    moved = net.set_price("ETH", Decimal(2800))
    assert any("WETH" in m for m in moved)
    oracle = txs.contract(load_artifact("AaveOracle"), net.aave.oracle)
    assert oracle.functions.getAssetPrice(weth).call() == 2800 * 10**8
    assert oracle.functions.getAssetPrice(net.tokens["wstETH"]).call() == 3304 * 10**8  # 2800 * 1.18
    assert p.functions.getUserAccountData(victim).call()[5] < 10**18
    assert p.functions.getUserAccountData(healthy).call()[5] > 10**18

    debt_to_cover = 1_000 * 10**6
    mint(txs, usdc, liquidator, 2 * debt_to_cover)
    approve(txs, usdc, liquidator, net.aave.pool, 2 * debt_to_cover)
    with pytest.raises(TxError, match="45"):  # HEALTH_FACTOR_NOT_BELOW_THRESHOLD
        txs.transact(p.functions.liquidationCall(weth, usdc, healthy, debt_to_cover, False), liquidator)

    treasury_atoken = erc20(txs, net.aave.atokens["WETH"])
    treasury_before = treasury_atoken.functions.balanceOf(net.aave.treasury).call()
    txs.transact(p.functions.liquidationCall(weth, usdc, victim, debt_to_cover, False), liquidator)

    base = 10**8 * debt_to_cover * 10**18 // (2800 * 10**8 * 10**6)
    seized = percent_mul(base, 10500)
    fee = percent_mul(seized - percent_div(seized, 10500), 1000)
    assert erc20(txs, weth).functions.balanceOf(liquidator).call() == seized - fee
    assert erc20(txs, usdc).functions.balanceOf(liquidator).call() == debt_to_cover
    treasury_after = treasury_atoken.functions.balanceOf(net.aave.treasury).call()
    assert abs(treasury_after - treasury_before - fee) <= 1  # aToken balances round by the index


def test_prices_are_back_after_revert(fresh_devnet: Devnet) -> None:
    oracle = fresh_devnet.txs.contract(load_artifact("AaveOracle"), fresh_devnet.aave.oracle)
    assert oracle.functions.getAssetPrice(fresh_devnet.tokens["WETH"]).call() == 3000 * 10**8
    assert fresh_devnet.factor_prices["ETH"] == Decimal(3000)


def test_warp_accrues_interest(fresh_devnet: Devnet) -> None:
    p = pool(fresh_devnet.txs, fresh_devnet.aave)
    who = fresh_devnet.wallets["hedged"]
    debt_before = p.functions.getUserAccountData(who).call()[1]
    before = fresh_devnet.w3.eth.get_block("latest")["timestamp"]
    after = fresh_devnet.warp(86_400)
    assert after - before >= 86_400
    debt_after = p.functions.getUserAccountData(who).call()[1]
    assert debt_after > debt_before
    # USDC utilization is under 1 %: a day's interest on 15,000 USDC is cents, not dollars
    assert debt_after - debt_before < 1 * 10**8



class _WarpAfterRoundA:
    """A real reader that, right after the cycle's first multi-call ``call_many`` (round A:
    ``getUserAccountData`` and co.), warps the devnet a day ahead and mines a block: the
    block-landing-mid-cycle case, with interest accruing in the new block."""

    def __init__(self, inner: EvmChainReader, devnet: Devnet) -> None:
        self.inner = inner
        self.chain = inner.chain
        self.chain_id = inner.chain_id
        self.spec = inner.spec
        self.devnet = devnet
        self.warped_to: int | None = None

    async def pin(self) -> BlockRef:
        return await self.inner.pin()

    async def call_many(self, calls: Sequence[Call], block: BlockRef) -> list[CallResult]:
        results = await self.inner.call_many(calls, block)
        if self.warped_to is None and len(calls) > 1:
            self.warped_to = self.devnet.warp(86_400)
        return results

    async def get_logs(self, **kwargs: Any) -> list[Mapping[str, object]]:
        return await self.inner.get_logs(**kwargs)


def test_a_block_landing_mid_cycle_does_not_leak_into_the_cycle(fresh_devnet: Devnet) -> None:
    """Every figure of one cycle is of the pinned block, though a block a day later is mined between
    round A (getUserAccountData) and round B (balances, indices): the venue data we keep equals the
    Pool's ``getUserAccountData`` at the pinned block (read independently by web3), our exact
    reproduction equals it too, and the head's figures differ (interest accrued)."""
    net = fresh_devnet
    wallets = [net.wallets[n] for n in ("hedged", "fund", "near_liquidation", "emode", "lp")]
    spec = AaveV3Deployment(chain=CHAIN, pool_addresses_provider=net.aave.pool_addresses_provider)

    async def run() -> tuple[_WarpAfterRoundA, list[MarginAccount]]:
        async with httpx.AsyncClient() as http:
            reader = _WarpAfterRoundA(EvmChainReader(chain=CHAIN, spec=chain_spec(net.rpc_url), http=http), net)
            context = AdapterContext(http=http, chains={CHAIN: reader}, assets=ASSETS)
            adapter = AaveV3Adapter(instance="devnet", spec=spec, context=context)
            return reader, await adapter.read_accounts([Address(w) for w in wallets])

    reader, accounts = asyncio.run(run())
    assert reader.warped_to is not None
    blocks = {a.as_of.block_number for a in accounts}
    assert len(blocks) == 1
    (pinned,) = blocks
    assert pinned is not None and net.w3.eth.block_number > pinned
    p = pool(net.txs, net.aave)
    by_wallet = {a.wallet.lower(): a for a in accounts}
    moved = 0
    for w in wallets:
        account = by_wallet[w.lower()]
        assert account.status is AccountStatus.OK, account.status_reason
        at_pin = tuple(p.functions.getUserAccountData(w).call(block_identifier=pinned))
        at_head = tuple(p.functions.getUserAccountData(w).call(block_identifier="latest"))
        assert account.raw["venue_account_data"] == at_pin
        assert account.raw["exact_account_data"] == at_pin
        moved += at_head != at_pin
    assert moved >= 1  # the borrowers' debt grew at the head: the check above tells blocks apart
