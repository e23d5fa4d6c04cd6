"""Real Morpho Blue bytecode (compiled here from the npm sources) on anvil: markets, oracle scale,
and the liquidation rule checked against an independent Python computation of ``_isHealthy``."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from aggregator.devnet import morpho as mb
from aggregator.devnet.market import INITIAL_FACTOR_PRICES
from aggregator.devnet.tokens import deploy_tokens
from aggregator.devnet.txs import TxError, Txs
from tests.fixtures_devnet import AnvilChain

WAD = 10**18


@pytest.fixture(scope="module")
def morpho_env(anvil: AnvilChain) -> Iterator[tuple[Txs, mb.MorphoDeployment]]:
    """Tokens + Morpho deployed once for this module; the chain is reverted when the module ends."""
    snapshot = anvil.snapshot()
    txs = Txs(anvil.w3)
    owner = anvil.accounts[0]
    tokens = deploy_tokens(txs, owner)
    deployment = mb.deploy_morpho(txs, owner, tokens, INITIAL_FACTOR_PRICES, supplier=anvil.accounts[9])
    yield txs, deployment
    anvil.revert(snapshot)


def _borrowed(txs: Txs, dep: mb.MorphoDeployment, market: str, user: str) -> int:
    """``toAssetsUp(borrowShares, totalBorrowAssets, totalBorrowShares)`` from on-chain totals."""
    totals = mb.morpho_contract(txs, dep).functions.market(dep.markets[market].id).call()
    shares = mb.position(txs, dep, market, user).borrow_shares
    return (shares * (totals[2] + 1) + totals[3] + 10**6 - 1) // (totals[3] + 10**6)


def test_markets_exist_with_their_ids_and_liquidity(
    fresh_anvil: AnvilChain, morpho_env: tuple[Txs, mb.MorphoDeployment]
) -> None:
    txs, dep = morpho_env
    morpho = mb.morpho_contract(txs, dep)
    assert set(dep.markets) == {"WETH/USDC", "wstETH/USDC", "WBTC/USDC"}
    for market in dep.markets.values():
        words = encode(["address"] * 4 + ["uint256"], list(market.params))
        assert market.id == "0x" + Web3.keccak(words).hex().removeprefix("0x")
        params = morpho.functions.idToMarketParams(market.id).call()
        assert [Web3.to_checksum_address(a) for a in params[:4]] == list(market.params[:4])
        assert params[4] == market.lltv
        total_supply_assets, _, total_borrow_assets, _, last_update, fee = morpho.functions.market(
            market.id
        ).call()
        assert total_supply_assets == 5_000_000 * 10**6
        assert (total_borrow_assets, fee) == (0, 0)
        assert last_update > 0
    assert morpho.functions.owner().call() == fresh_anvil.accounts[0]
    assert morpho.functions.isIrmEnabled(dep.irm).call()
    assert morpho.functions.isLltvEnabled(77 * 10**16).call()


def test_deployed_code_is_the_compiled_morpho(
    fresh_anvil: AnvilChain, morpho_env: tuple[Txs, mb.MorphoDeployment]
) -> None:
    _, dep = morpho_env
    runtime = mb.compile_morpho().get("Morpho").deployed_bytecode
    code = fresh_anvil.w3.eth.get_code(Web3.to_checksum_address(dep.morpho))
    # Immutables (DOMAIN_SEPARATOR) are filled in place, so the length is exactly the artifact's.
    assert len(code) == (len(runtime) - 2) // 2
    assert len(code) < 24_576


def test_oracle_prices_use_the_1e36_scale(
    fresh_anvil: AnvilChain, morpho_env: tuple[Txs, mb.MorphoDeployment]
) -> None:
    txs, dep = morpho_env
    oracle_abi = mb.compile_morpho().get("OracleMock").deployable
    price = {
        name: txs.contract(oracle_abi, m.oracle).functions.price().call() for name, m in dep.markets.items()
    }
    # 1 wei of WETH (18 dec) = 3000e-18 USD = 3000e-12 raw USDC units (6 dec); times 1e36
    assert price["WETH/USDC"] == 3000 * 10**24
    assert price["WBTC/USDC"] == 60000 * 10**34
    assert price["wstETH/USDC"] == 3540 * 10**24  # 1.18 ETH per wstETH


def test_set_prices_moves_only_the_affected_markets(
    fresh_anvil: AnvilChain, morpho_env: tuple[Txs, mb.MorphoDeployment]
) -> None:
    txs, dep = morpho_env
    oracle_abi = mb.compile_morpho().get("OracleMock").deployable

    def prices() -> dict[str, int]:
        return {
            n: txs.contract(oracle_abi, m.oracle).functions.price().call() for n, m in dep.markets.items()
        }

    before = prices()
    mb.set_morpho_prices(txs, dep, {"WBTC": Decimal("55000.5")})
    after = prices()
    assert after["WBTC/USDC"] == 550005 * 10**33
    assert {k: v for k, v in after.items() if k != "WBTC/USDC"} == {
        k: v for k, v in before.items() if k != "WBTC/USDC"
    }
    mb.set_morpho_prices(txs, dep, {"WBTC": Decimal(60000)})  # module state is shared


def test_liquidate_reverts_when_healthy_and_succeeds_after_the_price_move(
    fresh_anvil: AnvilChain, morpho_env: tuple[Txs, mb.MorphoDeployment]
) -> None:
    txs, dep = morpho_env
    borrower, liquidator = fresh_anvil.accounts[1], fresh_anvil.accounts[2]
    market = dep.markets["WETH/USDC"]
    mb.seed_borrower(txs, dep, "WETH/USDC", borrower, collateral=10**18, borrow=2000 * 10**6)
    assert mb.position(txs, dep, "WETH/USDC", borrower) == mb.MorphoPosition(0, 2000 * 10**12, 10**18)

    with pytest.raises(TxError, match="position is healthy"):
        mb.liquidate(txs, dep, "WETH/USDC", liquidator, borrower)

    # The exact boundary from Morpho._isHealthy, computed independently:
    # healthy <=> wMulDown(collateral * price / 1e36, lltv) >= borrowed; with 1e18 collateral the
    # inner term is price // 1e18, so the lowest healthy price is ceil(borrowed * 1e18 / lltv) * 1e18.
    borrowed = _borrowed(txs, dep, "WETH/USDC", borrower)
    lowest_healthy = -(-borrowed * WAD // market.lltv) * WAD
    mb.set_oracle_price(txs, dep, "WETH/USDC", lowest_healthy)
    with pytest.raises(TxError, match="position is healthy"):
        mb.liquidate(txs, dep, "WETH/USDC", liquidator, borrower, repaid_shares=10**12)

    price = lowest_healthy - 1
    mb.set_oracle_price(txs, dep, "WETH/USDC", price)
    totals = mb.morpho_contract(txs, dep).functions.market(market.id).call()
    repaid_shares = 10**15
    result = mb.liquidate(txs, dep, "WETH/USDC", liquidator, borrower, repaid_shares=repaid_shares)
    repaid_assets = (repaid_shares * (totals[2] + 1) + totals[3] + 10**6 - 1) // (totals[3] + 10**6)
    lif = mb.liquidation_incentive_factor(market.lltv)
    assert result.repaid_shares == repaid_shares
    assert result.repaid_assets == repaid_assets
    assert result.seized_assets == repaid_assets * lif // WAD * 10**36 // price
    assert (result.bad_debt_assets, result.bad_debt_shares) == (0, 0)
    assert mb.position(txs, dep, "WETH/USDC", borrower) == mb.MorphoPosition(
        0, 2000 * 10**12 - repaid_shares, 10**18 - result.seized_assets
    )


def test_default_liquidation_after_a_crash_seizes_everything_and_books_bad_debt(
    fresh_anvil: AnvilChain, morpho_env: tuple[Txs, mb.MorphoDeployment]
) -> None:
    txs, dep = morpho_env
    borrower, liquidator = fresh_anvil.accounts[3], fresh_anvil.accounts[4]
    mb.seed_borrower(
        txs, dep, "WBTC/USDC", borrower, collateral=10**8, borrow=40_000 * 10**6
    )  # 1 WBTC at 60k, lltv 0.77
    mb.set_morpho_prices(txs, dep, {"WBTC": Decimal(20000)})
    result = mb.liquidate(txs, dep, "WBTC/USDC", liquidator, borrower)
    assert result.seized_assets == 10**8
    assert result.bad_debt_assets > 0
    assert mb.position(txs, dep, "WBTC/USDC", borrower) == mb.MorphoPosition(0, 0, 0)
    mb.set_morpho_prices(txs, dep, {"WBTC": Decimal(60000)})


def test_deployment_round_trips_through_a_dict(morpho_env: tuple[Txs, mb.MorphoDeployment]) -> None:
    _, dep = morpho_env
    again = mb.MorphoDeployment.from_dict(dep.to_dict())
    assert again == dep
    assert again.markets["WETH/USDC"].params == dep.markets["WETH/USDC"].params


@pytest.mark.parametrize(
    ("lltv", "expected"),
    [("0.86", "1.04384"), ("0.945", "1.01678"), ("0.77", "1.07411"), ("0.385", "1.15")],
)
def test_liquidation_incentive_factor_matches_the_documented_examples(lltv: str, expected: str) -> None:
    lif = mb.liquidation_incentive_factor(int(Decimal(lltv) * WAD))
    assert round(Decimal(lif) / WAD, 5) == Decimal(expected)


@given(
    usd=st.integers(min_value=1, max_value=10**9),
    coll_dec=st.integers(min_value=0, max_value=24),
    loan_dec=st.integers(min_value=0, max_value=24),
)
def test_oracle_price_is_exact_for_whole_dollar_prices(usd: int, coll_dec: int, loan_dec: int) -> None:
    # price * 10**(36 + loan - coll) is an integer whenever the exponent is >= 0
    assert mb.oracle_price(Decimal(usd), Decimal(1), coll_dec, loan_dec) == usd * 10 ** (
        36 + loan_dec - coll_dec
    )
    # and a collateral worth exactly k loan units per raw unit gives k * 1e36
    assert mb.oracle_price(Decimal(usd), Decimal(usd), coll_dec, coll_dec) == 10**36
