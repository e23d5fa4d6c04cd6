"""The Comet stand-in on anvil: Comet's read interface, and its liquidation rule checked against an
independent Python implementation of ``lending.md`` §2.2 (stored borrow index, truncation toward zero)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from aggregator.devnet import comet as cm
from aggregator.devnet.market import INITIAL_FACTOR_PRICES
from aggregator.devnet.tokens import deploy_tokens
from aggregator.devnet.txs import TxError, Txs
from tests.fixtures_devnet import AnvilChain

BASE_INDEX_SCALE = 10**15
FACTOR = 10**18


@pytest.fixture(scope="module")
def comet_env(anvil: AnvilChain) -> Iterator[tuple[Txs, cm.CometDeployment]]:
    """Tokens + the stand-in deployed once for this module; the chain is reverted afterwards."""
    snapshot = anvil.snapshot()
    txs = Txs(anvil.w3)
    tokens = deploy_tokens(txs, anvil.accounts[0])
    deployment = cm.deploy_comet(
        txs, anvil.accounts[0], tokens, INITIAL_FACTOR_PRICES, supplier=anvil.accounts[9]
    )
    yield txs, deployment
    anvil.revert(snapshot)


def _trunc_div(n: int, d: int) -> int:
    """Solidity's signed division: truncation toward zero."""
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def _liquidity(comet: Contract, account: str, factor_field: int, prices: dict[str, int]) -> int:
    """lending.md §2.2 from raw reads (no early exit: it does not change the sign of the result).
    ``factor_field`` 4 = borrowCollateralFactor, 5 = liquidateCollateralFactor; ``prices`` maps feed
    address -> 8-decimal price to use instead of the feed."""
    principal, _, _, assets_in, _ = comet.functions.userBasic(account).call()
    borrow_index = comet.functions.totalsBasic().call()[1]  # the STORED index
    base_scale = comet.functions.baseScale().call()
    base_price = prices[comet.functions.baseTokenPriceFeed().call()]
    present = -((-principal) * borrow_index // BASE_INDEX_SCALE)
    liquidity = _trunc_div(present * base_price, base_scale)
    for i in range(comet.functions.numAssets().call()):
        if assets_in & (1 << i):
            info = comet.functions.getAssetInfo(i).call()
            balance = comet.functions.userCollateral(account, info[1]).call()[0]
            value = balance * prices[info[2]] // info[3]
            liquidity += value * info[factor_field] // FACTOR
    return liquidity


def _lowest_safe_price(liquidity_at: Callable[[int], int]) -> int:
    """The lowest 8-decimal price at which liquidity >= 0 (liquidity grows with the price)."""
    lo, hi = 1, 10**16
    assert liquidity_at(hi) >= 0 > liquidity_at(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if liquidity_at(mid) >= 0:
            hi = mid
        else:
            lo = mid
    return hi


def _feed_prices(txs: Txs, dep: cm.CometDeployment) -> dict[str, int]:
    comet = cm.comet_contract(txs, dep)
    return {Web3.to_checksum_address(f): comet.functions.getPrice(f).call() for f in dep.price_feeds.values()}


def _set_feed(txs: Txs, dep: cm.CometDeployment, symbol: str, answer: int) -> None:
    feed = txs.contract(
        cm.compile_devnet_contracts().get("SettablePriceFeed").deployable, dep.price_feeds[symbol]
    )
    txs.transact(feed.functions.setAnswer(answer), dep.governor, precheck=True)


def _warp(chain: AnvilChain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def test_read_interface_matches_comet(
    fresh_anvil: AnvilChain, comet_env: tuple[Txs, cm.CometDeployment]
) -> None:
    txs, dep = comet_env
    comet = cm.comet_contract(txs, dep)
    assert comet.functions.baseToken().call() == dep.base_token
    assert comet.functions.baseScale().call() == 10**6
    assert comet.functions.numAssets().call() == 3
    for i, spec in enumerate(cm.COMET_COLLATERALS):
        info = comet.functions.getAssetInfo(i).call()
        assert info == comet.functions.getAssetInfoByAddress(dep.tokens[spec.symbol]).call()
        offset, asset, feed, scale, bcf, lcf, lf, cap = info
        assert (offset, asset, feed) == (i, dep.tokens[spec.symbol], dep.price_feeds[spec.symbol])
        assert (bcf, lcf, lf) == (
            spec.borrow_collateral_factor,
            spec.liquidate_collateral_factor,
            spec.liquidation_factor,
        )
        assert cap == spec.supply_cap * scale
    assert comet.functions.getPrice(dep.price_feeds["WETH"]).call() == 3000 * 10**8
    assert comet.functions.getPrice(dep.price_feeds["USDC"]).call() == 10**8
    totals = comet.functions.totalsBasic().call()
    assert tuple(totals[:2]) == (BASE_INDEX_SCALE, BASE_INDEX_SCALE)
    assert totals[4] == 5_000_000 * 10**6  # totalSupplyBase
    # the selectors a Comet reader uses (lending.md §2.1)
    selectors = {
        "userBasic(address)": "0xdc4abafd",
        "userCollateral(address,address)": "0x2b92a07d",
        "totalsBasic()": "0xb9f0baf7",
        "isLiquidatable(address)": "0x042e02cf",
        "isBorrowCollateralized(address)": "0x38aa813f",
        "getAssetInfo(uint8)": "0xc8c7fe6b",
        "getAssetInfoByAddress(address)": "0x3b3bec2e",
        "getPrice(address)": "0x41976e09",
        "numAssets()": "0xa46fe83b",
        "borrowBalanceOf(address)": "0x374c49b4",
        "collateralBalanceOf(address,address)": "0x5c2549ee",
        "baseScale()": "0x44c1e5eb",
        "accrueAccount(address)": "0xbfe69c8d",
    }
    for signature, selector in selectors.items():
        assert "0x" + Web3.keccak(text=signature).hex().removeprefix("0x")[:8] == selector
        assert comet.get_function_by_signature(signature)  # present in the stand-in's ABI


def test_get_price_reverts_on_a_non_positive_answer(
    fresh_anvil: AnvilChain, comet_env: tuple[Txs, cm.CometDeployment]
) -> None:
    txs, dep = comet_env
    comet = cm.comet_contract(txs, dep)
    _set_feed(txs, dep, "WBTC", 0)
    with pytest.raises(ContractLogicError):
        comet.functions.getPrice(dep.price_feeds["WBTC"]).call()


def test_is_liquidatable_flips_exactly_at_the_python_threshold(
    fresh_anvil: AnvilChain, comet_env: tuple[Txs, cm.CometDeployment]
) -> None:
    txs, dep = comet_env
    comet = cm.comet_contract(txs, dep)
    user = fresh_anvil.accounts[1]
    cm.supply_collateral(txs, dep, user, "WETH", 2 * 10**18 + 123_456_789)
    cm.supply_collateral(txs, dep, user, "WBTC", 3_141_593)  # 0.0314 WBTC
    cm.borrow(txs, dep, user, 4_000 * 10**6 + 17)
    # Let interest move the stored index, then warp again WITHOUT accruing: the stored index
    # (used by isLiquidatable) now lags the accrued one (used by borrowBalanceOf).
    _warp(fresh_anvil, 90 * 86_400)
    cm.accrue(txs, dep)
    _warp(fresh_anvil, 30 * 86_400)
    stored_index = comet.functions.totalsBasic().call()[1]
    assert stored_index > BASE_INDEX_SCALE
    principal = comet.functions.userBasic(user).call()[0]
    assert comet.functions.borrowBalanceOf(user).call() > -principal * stored_index // BASE_INDEX_SCALE

    prices = _feed_prices(txs, dep)
    weth_feed = Web3.to_checksum_address(dep.price_feeds["WETH"])

    def liquidity_at(field: int) -> Callable[[int], int]:
        return lambda p: _liquidity(comet, user, field, {**prices, weth_feed: p})

    threshold = _lowest_safe_price(liquidity_at(5))
    _set_feed(txs, dep, "WETH", threshold)
    assert comet.functions.isLiquidatable(user).call() is False
    _set_feed(txs, dep, "WETH", threshold - 1)
    assert comet.functions.isLiquidatable(user).call() is True

    collateralized = _lowest_safe_price(liquidity_at(4))
    assert collateralized > threshold
    _set_feed(txs, dep, "WETH", collateralized)
    assert comet.functions.isBorrowCollateralized(user).call() is True
    _set_feed(txs, dep, "WETH", collateralized - 1)
    assert comet.functions.isBorrowCollateralized(user).call() is False
    assert comet.functions.isLiquidatable(user).call() is False


def test_absorb_reverts_when_healthy_and_seizes_everything_when_liquidatable(
    fresh_anvil: AnvilChain, comet_env: tuple[Txs, cm.CometDeployment]
) -> None:
    txs, dep = comet_env
    comet = cm.comet_contract(txs, dep)
    user, absorber = fresh_anvil.accounts[2], fresh_anvil.accounts[3]
    cm.supply_collateral(txs, dep, user, "WETH", 10**18)
    cm.borrow(txs, dep, user, 2_400 * 10**6)  # WETH at 3000, borrow CF 0.83 -> max 2490
    with pytest.raises(TxError, match="NotCollateralized"):
        cm.borrow(txs, dep, user, 100 * 10**6)
    with pytest.raises(TxError, match="NotLiquidatable"):
        cm.absorb(txs, dep, absorber, [user])

    cm.set_comet_prices(txs, dep, {"WETH": Decimal(2600)})  # 2600 * 0.90 = 2340 < 2400
    assert comet.functions.isLiquidatable(user).call() is True
    old_principal = comet.functions.userBasic(user).call()[0]
    cm.absorb(txs, dep, absorber, [user])
    # absorb accrues first, then credits sum(value * liquidationFactor) converted to base units,
    # and stores the new balance as a principal at the (just accrued, now stored) indices.
    principal, _, _, assets_in, _ = comet.functions.userBasic(user).call()
    supply_index, borrow_index = comet.functions.totalsBasic().call()[:2]
    value = 10**18 * 2600 * 10**8 // 10**18
    credited_base = value * cm.COMET_COLLATERALS[0].liquidation_factor // FACTOR * 10**6 // 10**8
    old_balance = -((-old_principal) * borrow_index // BASE_INDEX_SCALE)
    new_balance = old_balance + credited_base  # 2470 USDC credited > ~2400 owed: a supply balance
    assert new_balance > 0
    assert principal == new_balance * BASE_INDEX_SCALE // supply_index
    assert assets_in == 0
    assert tuple(comet.functions.userCollateral(user, dep.tokens["WETH"]).call()) == (0, 0)


def test_accrue_moves_the_stored_borrow_index_by_the_comet_formula(
    fresh_anvil: AnvilChain, comet_env: tuple[Txs, cm.CometDeployment]
) -> None:
    txs, dep = comet_env
    comet = cm.comet_contract(txs, dep)
    before = comet.functions.totalsBasic().call()
    _warp(fresh_anvil, 86_400)
    cm.accrue(txs, dep)
    after = comet.functions.totalsBasic().call()
    dt = after[6] - before[6]
    assert dt >= 86_400
    rate = comet.functions.borrowRatePerSecond().call()
    assert rate == int(Decimal("0.05") * FACTOR) // cm.SECONDS_PER_YEAR
    assert after[1] == before[1] + before[1] * (rate * dt) // FACTOR


def test_factors_keep_four_decimals(
    fresh_anvil: AnvilChain, comet_env: tuple[Txs, cm.CometDeployment]
) -> None:
    txs, dep = comet_env
    odd = (
        cm.CometAssetSpec(
            "WETH", 812_345_678_900_000_000, 876_543_210_000_000_000, 950_000_000_000_000_001, 10
        ),
    )
    second = cm.deploy_comet(
        txs,
        dep.governor,
        {k: Web3.to_checksum_address(v) for k, v in dep.tokens.items()},
        INITIAL_FACTOR_PRICES,
        liquidity=0,
        collaterals=odd,
    )
    info = cm.comet_contract(txs, second).functions.getAssetInfo(0).call()
    assert tuple(info[4:7]) == (812_300_000_000_000_000, 876_500_000_000_000_000, 950_000_000_000_000_000)


def test_deployment_round_trips_through_a_dict(comet_env: tuple[Txs, cm.CometDeployment]) -> None:
    _, dep = comet_env
    assert cm.CometDeployment.from_dict(dep.to_dict()) == dep
