"""A what-if deposit gives the health the venue then reports: simulate, deposit for real, rescan, compare.

On the devnet's ``hedged`` wallet (Aave: 10 WETH collateral, 15,000 USDC debt): the Aave adapter reads
the account, ``aggregator.whatif.apply_changes`` simulates a deposit (WETH collateral) and a repayment
(USDC debt), and the engine gives the hypothetical health. Then the same transactions are sent to the
real Pool (mint, approve, ``supply`` / ``repay``), the account is read again, and the simulated health
must equal both our model's health on the rescanned account and the Pool's own ``healthFactor``. One
block passes between the reads, so interest accrues for about a second: the tolerance is 1e-6.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from web3 import Web3

from aggregator.config import AssetSpec
from aggregator.devnet import aave as devnet_aave
from aggregator.devnet.network import Devnet
from aggregator.devnet.tokens import erc20
from aggregator.whatif import apply_changes, parse_change
from risk.arrays import compile_book
from risk.health import current_state
from risk.market import estimate_market
from risk.model import FactorId, MarginAccount, Portfolio
from risk.params import RiskParams
from tests.devnet.lending_support import fund_wallet, read
from tests.devnet.test_lending_fidelity import _send, aave_factory, venue_account_data

pytestmark = pytest.mark.devnet

ASSETS = {
    "WETH": AssetSpec(factor="ETH"),
    "USDC": AssetSpec(factor="USD"),
    "WBTC": AssetSpec(factor="BTC"),
    "DAI": AssetSpec(factor="USD"),
    "wstETH": AssetSpec(factor="ETH", basis="wstETH/ETH"),
}


def _health(account: MarginAccount, devnet: Devnet) -> float:
    portfolio = Portfolio(name="devnet", accounts=(account,))
    prices = {FactorId(k): float(v) for k, v in devnet.factor_prices.items()}
    prices.setdefault(FactorId("wstETH/ETH"), 1.0)
    market = estimate_market(list(prices), prices, RiskParams(), as_of=account.as_of.timestamp).state
    return float(current_state(compile_book(portfolio, market)).health[0])


def _simulate(account: MarginAccount, devnet: Devnet, *changes: tuple[str, tuple[str, ...]]) -> float:
    portfolio = Portfolio(name="devnet", accounts=(account,))
    prices = {FactorId(k): float(v) for k, v in devnet.factor_prices.items()}
    prices.setdefault(FactorId("wstETH/ETH"), 1.0)
    market = estimate_market(list(prices), prices, RiskParams(), as_of=account.as_of.timestamp).state
    parsed = [parse_change(action, values) for action, values in changes]  # type: ignore[arg-type]
    moved = apply_changes(portfolio, market, parsed, assets=ASSETS)
    return _health(moved.accounts[0], devnet)


def _do(devnet: Devnet, wallet: str, symbol: str, amount: int, *, repay: bool = False) -> None:
    token = erc20(devnet.txs, devnet.tokens[symbol])
    pool = devnet_aave.pool(devnet.txs, devnet.aave)
    _send(devnet, token.get_function_by_signature("mint(address,uint256)")(wallet, amount), wallet)
    _send(devnet, token.functions.approve(devnet.aave.pool, amount), wallet)
    if repay:
        _send(devnet, pool.functions.repay(devnet.tokens[symbol], amount, 2, wallet), wallet)
    else:
        _send(devnet, pool.functions.supply(devnet.tokens[symbol], amount, wallet, 0), wallet)


@pytest.mark.parametrize(
    ("action", "symbol", "amount", "decimals"),
    [("deposit", "WETH", "3", 18), ("repay", "USDC", "4000", 6)],
)
def test_whatif_equals_doing_it_and_rescanning(
    fresh_devnet: Devnet, action: str, symbol: str, amount: str, decimals: int
) -> None:
    devnet = fresh_devnet
    wallet = Web3.to_checksum_address(devnet.wallets["hedged"])
    (account,) = read(devnet.rpc_url, aave_factory(devnet), [wallet])
    before = _health(account, devnet)
    assert before == pytest.approx(float(account.venue_health or 0), rel=1e-9)  # our model = the Pool, now

    simulated = _simulate(account, devnet, (action, (amount, symbol, account.key)))
    assert simulated != pytest.approx(before, rel=1e-3)  # the change matters

    fund_wallet(devnet.w3, wallet)
    _do(devnet, wallet, symbol, int(Decimal(amount) * 10**decimals), repay=action == "repay")
    (rescanned,) = read(devnet.rpc_url, aave_factory(devnet), [wallet])
    pool_hf = venue_account_data(devnet, wallet)[5] / 1e18
    assert _health(rescanned, devnet) == pytest.approx(simulated, rel=1e-6)
    assert pool_hf == pytest.approx(simulated, rel=1e-6)
