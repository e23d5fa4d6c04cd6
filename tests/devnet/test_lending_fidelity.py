"""Fidelity of the lending adapters on the devnet: our exact figures against the protocols' own.

Aave V3 (core 1.19, POOL_REVISION 1): for every seeded wallet and for hypothesis-generated wallets
(random supplies, borrows, e-mode, oracle price moves, time warps) the adapter's exact
``getUserAccountData`` reproduction equals the Pool's six fields to the wei. Morpho Blue: our health
< 1 exactly when a real ``liquidate`` succeeds. Comet stand-in: ours < 1 exactly when
``isLiquidatable`` is true. Faults: a reverting or garbage answer makes that wallet UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.contract.contract import ContractFunction

from adapters.aave_v3 import AaveV3Adapter
from adapters.addresses import ChecksumAddress
from adapters.base import AdapterContext, Call, CallResult
from adapters.specs import AaveV3Deployment
from aggregator.devnet import aave as devnet_aave
from aggregator.devnet.market import AAVE_RESERVES, TOKENS, token_spec
from aggregator.devnet.network import Devnet
from aggregator.devnet.tokens import erc20
from risk.exact.wadray import MAX_UINT256
from risk.model import AccountStatus, MarginAccount, PositionKind
from tests.devnet.lending_support import CHAIN, FaultyReader, fund_wallet, read
from tests.fixtures_devnet import restore_venue_prices

pytestmark = pytest.mark.devnet

DECIMALS = {t.symbol: t.decimals for t in TOKENS}


def aave_factory(devnet: Devnet):  # type: ignore[no-untyped-def]
    spec = AaveV3Deployment(chain=CHAIN, pool_addresses_provider=devnet.aave.pool_addresses_provider)

    def build(context: AdapterContext) -> AaveV3Adapter:
        return AaveV3Adapter(instance="devnet", spec=spec, context=context)

    return build


def venue_account_data(devnet: Devnet, wallet: str) -> tuple[int, ...]:
    pool = devnet_aave.pool(devnet.txs, devnet.aave)
    return tuple(pool.functions.getUserAccountData(Web3.to_checksum_address(wallet)).call())


def assert_exact(devnet: Devnet, account: MarginAccount) -> None:
    assert account.status is AccountStatus.OK, account.status_reason
    venue = venue_account_data(devnet, account.wallet)
    assert account.raw["venue_account_data"] == venue
    assert account.raw["exact_account_data"] == venue, (account.wallet, account.raw)
    assert account.raw["exact_health_wad"] == venue[5]
    assert account.raw["exact_matches_venue"] is True
    if venue[5] == MAX_UINT256:
        assert account.venue_health == Decimal("Infinity")
    else:
        assert account.venue_health == Decimal(venue[5]).scaleb(-18)


def test_every_seeded_aave_wallet_matches_the_pool_exactly(devnet: Devnet) -> None:
    wallets = devnet.wallets
    accounts = {a.wallet: a for a in read(devnet.rpc_url, aave_factory(devnet), list(wallets.values()))}
    assert wallets["empty"] not in accounts  # no positions -> no account
    for name in ("hedged", "fund", "near_liquidation", "emode", "lp"):
        account = accounts[wallets[name]]
        assert_exact(devnet, account)
        assert account.positions, name
    hedged = accounts[wallets["hedged"]]
    kinds = {(p.token, p.kind) for p in hedged.positions}
    assert kinds == {("WETH", PositionKind.COLLATERAL), ("USDC", PositionKind.DEBT)}
    weth = next(p for p in hedged.positions if p.token == "WETH")
    assert weth.quantity >= Decimal(10)
    assert weth.lending is not None and weth.lending.liquidation_threshold == Decimal("0.825")
    usdc = next(p for p in hedged.positions if p.token == "USDC")
    assert usdc.quantity <= Decimal(-15_000)
    emode = accounts[wallets["emode"]]
    wst = next(p for p in emode.positions if p.token == "wstETH")
    assert wst.lending is not None and wst.lending.liquidation_threshold == Decimal("0.93")
    assert wst.factor == "ETH" and wst.basis_factor == "wstETH/ETH"


# --- hypothesis-generated wallets ------------------------------------------------------------
SYMBOLS = [r.symbol for r in AAVE_RESERVES]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    supplies = draw(
        st.dictionaries(
            st.sampled_from(SYMBOLS),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal(50), places=2),
            min_size=1,
            max_size=3,
        )
    )
    return {
        "supplies": supplies,
        "emode": draw(st.booleans()),
        "borrow": draw(
            st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(5, 99)), min_size=1, max_size=2)
        ),
        "collateral_off": draw(st.sampled_from([None, *SYMBOLS])),
        "eth_move": draw(st.sampled_from([None, Decimal("0.8"), Decimal("0.95"), Decimal("1.1")])),
        "warp": draw(st.sampled_from([0, 1, 3_600, 86_400 * 30])),
    }


_WALLET_COUNTER = iter(range(1, 10**6))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_generated_aave_wallets_match_the_pool_exactly(devnet: Devnet, scenario: dict[str, object]) -> None:
    with scratch(devnet):
        wallet = new_wallet(devnet, 0xC0FFEE00000)
        _play(devnet, wallet, scenario)
        accounts = read(devnet.rpc_url, aave_factory(devnet), [wallet])
        assert len(accounts) == 1
        assert_exact(devnet, accounts[0])


@contextlib.contextmanager
def scratch(devnet: Devnet) -> Iterator[None]:
    """What ``fresh_devnet`` does, per hypothesis example: ``evm_snapshot`` before, ``evm_revert``
    after, moved factor prices put back on the venue servers, and ``devnet.state`` restored (also the
    token prices the Morpho deployment records, which ``set_price`` moves)."""
    saved = copy.deepcopy(devnet.state)
    snapshot = devnet.txs.rpc("evm_snapshot", [])
    try:
        yield
    finally:
        assert devnet.txs.rpc("evm_revert", [snapshot]) is True, f"evm_revert({snapshot}) failed"
        restore_venue_prices(devnet, dict(saved.factor_prices))
        devnet.state = saved


def new_wallet(devnet: Devnet, base: int) -> ChecksumAddress:
    """A fresh address (``base`` + a session-wide counter) with gas ETH, impersonated by anvil."""
    wallet = ChecksumAddress(Web3.to_checksum_address(f"0x{base + next(_WALLET_COUNTER):040x}"))
    fund_wallet(devnet.w3, wallet)
    return wallet


def drop_price(devnet: Devnet, symbol: str, drop: Decimal) -> None:
    """Move the factor of token ``symbol`` to ``drop`` times its current price (1 = no move)."""
    if drop != 1:
        factor = token_spec(symbol).factor
        devnet.set_price(factor, devnet.factor_prices[factor] * drop)


class TxFailed(Exception):
    pass


def _send(devnet: Devnet, fn: ContractFunction, sender: str) -> None:
    """Send with an explicit gas limit: after ``evm_revert`` anvil's time offset can make its own gas
    estimate (taken at another timestamp) too low for the interest-accruing path."""
    tx = {"from": sender, "to": fn.address, "data": fn._encode_transaction_data(), "gas": hex(5_000_000)}
    tx_hash = devnet.txs.rpc("eth_sendTransaction", [tx])
    receipt = devnet.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
    if receipt["status"] != 1:
        raise TxFailed(f"{fn.fn_name} reverted")


def _mint_and_approve(devnet: Devnet, token_address: str, wallet: str, spender: str, amount: int) -> None:
    """Mint ``amount`` raw units of the devnet token to ``wallet``, which approves ``spender`` for them."""
    token = erc20(devnet.txs, token_address)
    _send(devnet, token.get_function_by_signature("mint(address,uint256)")(wallet, amount), wallet)
    _send(devnet, token.functions.approve(spender, amount), wallet)


def _supply(devnet: Devnet, wallet: str, symbol: str, amount: int) -> None:
    _mint_and_approve(devnet, devnet.tokens[symbol], wallet, devnet.aave.pool, amount)
    pool = devnet_aave.pool(devnet.txs, devnet.aave)
    _send(devnet, pool.functions.supply(devnet.tokens[symbol], amount, wallet, 0), wallet)


def _play(devnet: Devnet, wallet: str, scenario: dict[str, object]) -> None:
    aave, tokens = devnet.aave, devnet.tokens
    pool = devnet_aave.pool(devnet.txs, aave)
    supplies = scenario["supplies"]
    assert isinstance(supplies, dict)
    for symbol, amount in supplies.items():
        _supply(devnet, wallet, symbol, int(amount * 10 ** DECIMALS[symbol]))
    if scenario["emode"]:
        with contextlib.suppress(TxFailed):  # not allowed with this book
            _send(devnet, pool.functions.setUserEMode(aave.emode_category), wallet)
    borrows = scenario["borrow"]
    assert isinstance(borrows, list)
    for symbol, percent in borrows:
        available = pool.functions.getUserAccountData(wallet).call()[2]  # base units (1e8 USD)
        price = (
            devnet.w3.eth.contract(
                address=Web3.to_checksum_address(aave.oracle),
                abi=[
                    {
                        "type": "function",
                        "name": "getAssetPrice",
                        "stateMutability": "view",
                        "inputs": [{"name": "a", "type": "address"}],
                        "outputs": [{"name": "", "type": "uint256"}],
                    }
                ],
            )
            .functions.getAssetPrice(tokens[symbol])
            .call()
        )
        amount = available * percent // 100 * 10 ** DECIMALS[symbol] // price
        if amount > 0:
            with contextlib.suppress(TxFailed):  # e.g. e-mode forbids this asset, or no liquidity
                _send(devnet, pool.functions.borrow(tokens[symbol], amount, 2, 0, wallet), wallet)
    off = scenario["collateral_off"]
    if isinstance(off, str) and off in supplies:
        with contextlib.suppress(TxFailed):  # would drop the health factor below 1
            _send(devnet, pool.functions.setUserUseReserveAsCollateral(tokens[off], False), wallet)
    move = scenario["eth_move"]
    if isinstance(move, Decimal):
        devnet.set_price("ETH", devnet.factor_prices["ETH"] * move)
    warp = scenario["warp"]
    if isinstance(warp, int) and warp:
        devnet.warp(warp)


# --- faults ----------------------------------------------------------------------------------
def _selector(name: str) -> bytes:
    return Web3.keccak(text=name)[:4]


def read_with_fault(
    devnet: Devnet, wallets: list[str], signature: str, answer: CallResult, victim: str | None = None
) -> list[MarginAccount]:
    """Read ``wallets`` through Aave with every call of ``signature`` (only those whose last argument
    is ``victim``, when given) answered ``answer`` instead of the node's result."""
    selector = _selector(signature)

    def corrupt(call: Call) -> CallResult | None:
        if call.data[:4] != selector:
            return None
        if victim is not None and call.data[-20:] != bytes.fromhex(victim[2:]):
            return None
        return answer

    return read(devnet.rpc_url, aave_factory(devnet), wallets, wrap=lambda r: FaultyReader(r, corrupt))


@pytest.mark.parametrize(
    ("victim", "healthy", "signature", "answer", "reason"),
    [
        pytest.param(
            "hedged",
            "fund",
            "getUserAccountData(address)",
            CallResult(success=False, data=b""),
            "getUserAccountData reverted",
            id="reverting-account-data",
        ),
        pytest.param(
            "fund",
            "hedged",
            "scaledBalanceOf(address)",
            CallResult(success=True, data=b"\x01\x02\x03"),
            "not whole ABI words",
            id="garbage-balance",
        ),
    ],
)
def test_a_bad_wallet_read_makes_only_that_wallet_unavailable_with_the_reason(
    devnet: Devnet, victim: str, healthy: str, signature: str, answer: CallResult, reason: str
) -> None:
    victim_wallet, healthy_wallet = devnet.wallets[victim], devnet.wallets[healthy]
    accounts = read_with_fault(devnet, [victim_wallet, healthy_wallet], signature, answer, victim_wallet)
    by_wallet = {a.wallet: a for a in accounts}
    assert by_wallet[victim_wallet].status is AccountStatus.UNAVAILABLE
    assert reason in (by_wallet[victim_wallet].status_reason or "")
    assert by_wallet[healthy_wallet].status is AccountStatus.OK


def test_a_broken_pool_makes_every_wallet_unavailable(devnet: Devnet) -> None:
    wallets = [devnet.wallets["hedged"], devnet.wallets["empty"]]
    accounts = read_with_fault(devnet, wallets, "getReservesList()", CallResult(success=False, data=b""))
    assert [a.status for a in accounts] == [AccountStatus.UNAVAILABLE] * 2
    assert all("getReservesList" in (a.status_reason or "") for a in accounts)


# --- Compound V3 (the Comet stand-in) ---------------------------------------------------------
def comet_factory(devnet: Devnet):  # type: ignore[no-untyped-def]
    from adapters.compound_v3 import CompoundV3Adapter
    from adapters.specs import CompoundV3Deployment

    state = devnet.state.comet
    if state is None:
        pytest.skip("the devnet has no Comet stand-in")
    spec = CompoundV3Deployment(chain=CHAIN, comet=state["comet"], base_symbol=state["base"])

    def build(context: AdapterContext) -> CompoundV3Adapter:
        return CompoundV3Adapter(instance="devnet", spec=spec, context=context)

    return build


def _comet(devnet: Devnet):  # type: ignore[no-untyped-def]
    from aggregator.devnet import comet as devnet_comet

    assert devnet.state.comet is not None
    deployment = devnet_comet.CometDeployment.from_dict(devnet.state.comet)
    return deployment, devnet_comet.comet_contract(devnet.txs, deployment)


def assert_comet_agrees(devnet: Devnet, account: MarginAccount) -> None:
    _, contract = _comet(devnet)
    assert account.status is AccountStatus.OK, account.status_reason
    venue = contract.functions.isLiquidatable(account.wallet).call()
    assert account.raw["venue_is_liquidatable"] is venue
    assert account.raw["exact_is_liquidatable"] is venue
    assert account.raw["liquidatable_mismatch"] is False
    health = account.raw["exact_health"]
    assert isinstance(health, Decimal)
    assert (health < 1) is venue
    assert account.venue_health == health


def test_seeded_comet_wallets_agree_with_is_liquidatable(devnet: Devnet) -> None:
    factory = comet_factory(devnet)
    accounts = read(devnet.rpc_url, factory, list(devnet.wallets.values()))
    assert accounts, "the stand-in has seeded borrowers"
    assert devnet.wallets["empty"] not in {a.wallet for a in accounts}
    for account in accounts:
        assert_comet_agrees(devnet, account)
        assert account.quote == "USD"


COMET_COLLATERAL = ["WETH", "WBTC", "wstETH"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    symbol=st.sampled_from(COMET_COLLATERAL),
    amount=st.decimals(min_value=Decimal("0.05"), max_value=Decimal(20), places=2),
    percent=st.integers(50, 100),
    drop=st.sampled_from([Decimal(1), Decimal("0.97"), Decimal("0.94"), Decimal("0.9"), Decimal("0.7")]),
    warp=st.sampled_from([0, 86_400 * 365]),
    accrue=st.booleans(),
)
def test_generated_comet_wallets_agree_with_is_liquidatable(
    devnet: Devnet, symbol: str, amount: Decimal, percent: int, drop: Decimal, warp: int, accrue: bool
) -> None:
    factory = comet_factory(devnet)
    deployment, contract = _comet(devnet)
    with scratch(devnet):
        wallet = new_wallet(devnet, 0xC0E7000000)
        raw = int(amount * 10 ** DECIMALS[symbol])
        _mint_and_approve(devnet, deployment.tokens[symbol], wallet, deployment.comet, raw)
        _send(devnet, contract.functions.supply(deployment.tokens[symbol], raw), wallet)
        info = contract.functions.getAssetInfoByAddress(deployment.tokens[symbol]).call()
        price = contract.functions.getPrice(info[2]).call()
        capacity = raw * price // info[3] * info[4] // 10**18  # 8-decimal USD at borrowCF
        base_amount = capacity * percent // 100 * 10 ** DECIMALS[deployment.base] // 10**8
        with contextlib.suppress(TxFailed):  # below the minimum borrow
            _send(devnet, contract.functions.withdraw(deployment.base_token, base_amount), wallet)
        if warp:
            devnet.warp(warp)
            if accrue:
                _send(devnet, contract.functions.accrue(), deployment.governor)
        drop_price(devnet, symbol, drop)
        accounts = read(devnet.rpc_url, factory, [wallet])
        assert len(accounts) == 1
        assert_comet_agrees(devnet, accounts[0])


# --- Morpho Blue ------------------------------------------------------------------------------
def morpho_factory(devnet: Devnet, markets: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    from adapters.morpho_blue import MorphoBlueAdapter
    from adapters.specs import MorphoBlueDeployment

    state = devnet.state.morpho
    if state is None:
        pytest.skip("the devnet has no Morpho Blue")
    spec = MorphoBlueDeployment(chain=CHAIN, morpho=state["morpho"], markets=markets, log_chunk_blocks=1000)

    def build(context: AdapterContext) -> MorphoBlueAdapter:
        return MorphoBlueAdapter(instance="devnet", spec=spec, context=context)

    return build


def _morpho(devnet: Devnet):  # type: ignore[no-untyped-def]
    from aggregator.devnet import morpho as devnet_morpho

    assert devnet.state.morpho is not None
    deployment = devnet_morpho.MorphoDeployment.from_dict(devnet.state.morpho)
    return deployment, devnet_morpho.morpho_contract(devnet.txs, deployment)


def test_seeded_morpho_wallets_are_discovered_from_logs(devnet: Devnet) -> None:
    factory = morpho_factory(devnet)
    deployment, contract = _morpho(devnet)
    accounts = read(devnet.rpc_url, factory, list(devnet.wallets.values()))
    assert accounts, "the devnet seeds Morpho borrowers"
    ids = {m.id.lower() for m in deployment.markets.values()}
    for account in accounts:
        assert account.status is AccountStatus.OK, account.status_reason
        wallet, market_id = account.account_id.split("/")
        assert market_id in ids
        shares = contract.functions.position(bytes.fromhex(market_id[2:]), wallet).call()
        assert any(shares)
    assert devnet.wallets["empty"] not in {a.wallet for a in accounts}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    market_name=st.sampled_from(["WETH/USDC", "wstETH/USDC", "WBTC/USDC"]),
    amount=st.decimals(min_value=Decimal("0.1"), max_value=Decimal(10), places=2),
    percent=st.integers(80, 100),
    drop=st.sampled_from([Decimal(1), Decimal("0.99"), Decimal("0.98"), Decimal("0.95"), Decimal("0.8")]),
    warp=st.sampled_from([0, 86_400 * 30, 86_400 * 365]),
)
def test_morpho_health_below_one_iff_liquidate_succeeds(
    devnet: Devnet, market_name: str, amount: Decimal, percent: int, drop: Decimal, warp: int
) -> None:
    factory = morpho_factory(devnet)
    deployment, contract = _morpho(devnet)
    market = deployment.markets[market_name]
    with scratch(devnet):
        wallet = new_wallet(devnet, 0xB1E0000000)
        raw = int(amount * 10 ** DECIMALS[market.collateral])
        _mint_and_approve(devnet, market.collateral_token, wallet, deployment.morpho, raw)
        _send(devnet, contract.functions.supplyCollateral(market.params, raw, wallet, b""), wallet)
        oracle_price = (
            devnet.w3.eth.contract(
                address=Web3.to_checksum_address(market.oracle),
                abi=[
                    {
                        "type": "function",
                        "name": "price",
                        "stateMutability": "view",
                        "inputs": [],
                        "outputs": [{"name": "", "type": "uint256"}],
                    }
                ],
            )
            .functions.price()
            .call()
        )
        max_borrow = raw * oracle_price // 10**36 * market.lltv // 10**18
        # Morpho books the borrow as shares rounded up and checks the shares' assets rounded up: that
        # can be 1 wei above the amount asked, so asking for exactly the maximum may revert
        borrow = min(max_borrow * percent // 100, max_borrow - 1)
        if borrow > 0:
            _send(devnet, contract.functions.borrow(market.params, borrow, 0, wallet, wallet), wallet)
        if warp:
            devnet.warp(warp)
        drop_price(devnet, market.collateral, drop)
        # the liquidator's budget, before the read so that no block comes between read and liquidate
        liquidator = devnet.wallets["liquidator"]
        _mint_and_approve(devnet, market.loan_token, liquidator, deployment.morpho, 10**30)
        accounts = read(devnet.rpc_url, factory, [wallet])
        assert len(accounts) == 1
        account = accounts[0]
        assert account.status is AccountStatus.OK, account.status_reason
        assert account.account_id == f"{wallet}/{market.id.lower()}"
        health = account.raw["exact_health"]
        assert isinstance(health, Decimal)
        # liquidate in a block with the SAME timestamp as the block we read (same accrual)
        read_ts = devnet.w3.eth.get_block("latest")["timestamp"]
        devnet.txs.rpc("evm_setNextBlockTimestamp", [read_ts])
        position = contract.functions.position(market.id, wallet).call()
        seize = position[2] // 10  # a tenth of the collateral
        try:
            _send(devnet, contract.functions.liquidate(market.params, wallet, seize, 0, b""), liquidator)
            liquidated = True
        except TxFailed:
            liquidated = False
        assert devnet.w3.eth.get_block("latest")["timestamp"] == read_ts
        assert (health < 1) is liquidated, (health, account.raw)
