"""Devnet fixtures, registered suite-wide from ``tests/conftest.py`` (``pytest_plugins``).

Mark tests that use them ``@pytest.mark.devnet``. Nothing here assumes a fixed port.

``anvil`` (session) -> :class:`AnvilChain`
    A bare anvil node (chain id 31337, default mnemonic, ten dev accounts with 10,000 ETH each) with
    the real Multicall3 at 0xcA11bde05977b3631167028862bE2a173976CA11. Attributes: ``w3`` (sync
    web3), ``rpc_url``, ``multicall3`` (address), ``accounts`` (the unlocked dev accounts),
    ``process`` (:class:`aggregator.devnet.anvil.AnvilProcess`), ``snapshot()`` / ``revert(id)``.
    Shared by the whole session: a test that changes chain state should use ``fresh_anvil``.

``fresh_anvil`` (function) -> :class:`AnvilChain`
    The same chain, with ``evm_snapshot`` taken before the test and ``evm_revert`` after it.

``devnet`` (session) -> :class:`aggregator.devnet.network.Devnet`
    A separate anvil node with everything deployed and seeded (``aggregator.devnet.network.
    start_devnet``), plus the venue API server when ``aggregator.devnet.venues`` exists. Exposes:

    - ``w3`` (sync web3), ``rpc_url``, ``api_url`` (venue server base URL or None), ``txs``
      (:class:`aggregator.devnet.txs.Txs`: ``transact(fn, sender)``, ``deploy``, ``rpc(method, params)``)
    - ``tokens``: symbol -> address (WETH, WBTC, wstETH, USDC, DAI; ``MintableERC20``, anyone can
      ``mint(address,uint256)``); decimals and factors in ``aggregator.devnet.market.TOKENS``
    - ``aave``: :class:`aggregator.devnet.aave.AaveDeployment` (pool_addresses_provider, pool, oracle,
      data_provider, ui_pool_data_provider, acl_manager, pool_configurator, price_sources per token,
      atokens / variable_debt_tokens per token, libraries, ...); reserve parameters in
      ``market.AAVE_RESERVES``, e-mode in ``market.EMODE_ETH``
    - ``wallets``: name -> address (``aggregator.devnet.book.WALLET_INDEX``: deployer, lp, hedged, fund,
      near_liquidation, emode, empty, liquidator, treasury); intended Aave positions in
      ``book.AAVE_BOOK`` (whole tokens); seeded at frozen block time, so at
      ``block_identifier=devnet.state.seed_block`` the figures are exact (no interest accrued)
    - ``state``: :class:`aggregator.devnet.state.DevnetState` (everything above as JSON-able data;
      ``notes`` on skipped parts). ``state.morpho`` = ``MorphoDeployment.to_dict()`` (markets
      WETH/USDC, wstETH/USDC, WBTC/USDC; rebuild with ``aggregator.devnet.morpho.MorphoDeployment.
      from_dict``), ``state.comet`` = ``CometDeployment.to_dict()`` (USDC base stand-in), the fund's
      positions in ``book.MORPHO_BOOK`` / ``book.COMET_BOOK``; ``state.venues`` = what
      ``aggregator.devnet.venue_client.seed`` seeded (``api_urls`` per venue, the fund's dYdX
      ``dydx1...`` address, its Derive subaccount 1001 and option instrument; ``hedged`` is short
      10 ETH on Hyperliquid)
    - ``factor_prices`` (factor -> USD Decimal: ETH 3000, BTC 60000, USD 1 at start);
      ``set_price(factor, Decimal)`` moves it everywhere (Aave sources, Morpho/Comet oracles, venue
      servers) and mines a block; ``warp(seconds)`` = evm_increaseTime + evm_mine.

``fresh_devnet`` (function) -> the same :class:`Devnet`
    ``evm_snapshot`` before the test, ``evm_revert`` after; ``devnet.state`` is restored from a copy
    and factor prices the test moved are put back on the venue server (``set_price``). Seeding
    accounts on the venue server in a test is not undone: use wallets the demo book does not use.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from eth_typing import ChecksumAddress
from web3 import Web3

from aggregator.devnet import venue_client
from aggregator.devnet.anvil import AnvilProcess, install_multicall3, start_anvil
from aggregator.devnet.network import Devnet, start_devnet


@dataclass
class AnvilChain:
    """A running anvil node with Multicall3 installed."""

    process: AnvilProcess
    w3: Web3
    multicall3: ChecksumAddress
    accounts: list[ChecksumAddress] = field(default_factory=list)

    @property
    def rpc_url(self) -> str:
        return self.process.rpc_url

    def snapshot(self) -> str:
        return str(_rpc(self.w3, "evm_snapshot", []))

    def revert(self, snapshot_id: str) -> None:
        if _rpc(self.w3, "evm_revert", [snapshot_id]) is not True:
            raise RuntimeError(f"evm_revert({snapshot_id}) failed")


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilChain]:
    process = start_anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(process.rpc_url, request_kwargs={"timeout": 30}))
        chain = AnvilChain(
            process=process,
            w3=w3,
            multicall3=install_multicall3(w3),
            accounts=[Web3.to_checksum_address(a) for a in w3.eth.accounts],
        )
        yield chain
    finally:
        process.stop()


@pytest.fixture
def fresh_anvil(anvil: AnvilChain) -> Iterator[AnvilChain]:
    snapshot_id = anvil.snapshot()
    yield anvil
    anvil.revert(snapshot_id)


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = start_devnet(log_dir=tmp_path_factory.mktemp("devnet-logs"))
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def fresh_devnet(devnet: Devnet) -> Iterator[Devnet]:
    saved = copy.deepcopy(devnet.state)
    prices = dict(saved.factor_prices)
    snapshot_id = str(_rpc(devnet.w3, "evm_snapshot", []))
    yield devnet
    if _rpc(devnet.w3, "evm_revert", [snapshot_id]) is not True:
        raise RuntimeError(f"evm_revert({snapshot_id}) failed")
    restore_venue_prices(devnet, prices)
    devnet.state = saved  # also the prices the Morpho deployment records


def restore_venue_prices(devnet: Devnet, prices: Mapping[str, object]) -> None:
    """Put the factor prices a test moved back on both venue servers (``evm_revert`` restores the
    chain only) and in the devnet state."""
    moved = [k for k, v in devnet.state.factor_prices.items() if str(prices.get(k)) != str(v)]
    for url in (devnet.state.api_url, devnet.state.cred_api_url):
        if url:
            for factor in moved:
                venue_client.set_price(url, factor, Decimal(str(prices[factor])))
    devnet.state.factor_prices = {k: str(v) for k, v in prices.items()}
