"""JSON-RPC requests and wall time of the Aave V3 adapter against the plain web3.py way, same run.

Starts the devnet (``aggregator.devnet.network.start_devnet``), funds N wallets on Aave (the deployer
supplies WETH or USDC on their behalf; every fifth wallet also borrows, impersonated), then scans
them:

- ours: ``AaveV3Adapter`` over ``EvmChainReader`` (Multicall3 ``aggregate3``, one pinned block);
  requests counted by an httpx event hook on the client (every HTTP request, the endpoint's
  ``eth_chainId`` check included), cold cycle (first of the process: the discovery cache is emptied
  first; Pool discovery rides in the pin's request, reserves are discovered) and warm cycle (cached
  Pool and reserve statics) reported separately;
- baseline: web3.py ``HTTPProvider``, ``Pool.getUserAccountData`` plus
  ``AaveProtocolDataProvider.getUserReserveData`` per reserve per wallet, sequentially; requests
  counted in ``make_request``.

Prints both figures and the ratios (targets: >= 100 wallets per request, >= 20x less wall time) and
checks that every account's exact health equals the Pool's.

    .venv/bin/python benchmarks/scan_rpc.py [--wallets 500]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from adapters.aave_v3 import AaveV3Adapter
from adapters.addresses import ChecksumAddress
from adapters.assets import AssetInfo, AssetMap
from adapters.base import AdapterContext
from adapters.evm import EvmChainReader, ReaderOptions
from adapters.lending_common import DISCOVERY
from adapters.specs import AaveV3Deployment, ChainSpec
from aggregator.devnet import aave as devnet_aave
from aggregator.devnet.artifacts import load_artifact
from aggregator.devnet.network import Devnet, start_devnet
from aggregator.devnet.tokens import approve, mint
from risk.model import AccountStatus, FactorId

CHAIN = "devnet"


class CountingProvider(HTTPProvider):
    """web3's HTTP provider, counting the JSON-RPC requests it sends."""

    requests = 0

    def make_request(self, method: Any, params: Any) -> Any:
        CountingProvider.requests += 1
        return super().make_request(method, params)


def _send(devnet: Devnet, fn: Any, sender: str) -> None:
    tx = {
        "from": sender,
        "to": fn.address,
        "data": fn._encode_transaction_data(),
        "gas": hex(3_000_000),
    }
    devnet.txs.rpc("eth_sendTransaction", [tx])


def fund_wallets(devnet: Devnet, count: int) -> list[str]:
    """``count`` fresh wallets with Aave positions; sent without waiting per tx, then one mine."""
    aave, tokens = devnet.aave, devnet.tokens
    deployer = devnet.wallets["deployer"]
    pool = devnet_aave.pool(devnet.txs, aave)
    wallets = [Web3.to_checksum_address(f"0x{0xBE4C0000 + i:040x}") for i in range(count)]
    big = 10**30
    for symbol in ("WETH", "USDC"):
        mint(devnet.txs, tokens[symbol], deployer, big)
        approve(devnet.txs, tokens[symbol], deployer, aave.pool, big)
    for i, w in enumerate(wallets):
        symbol, amount = (
            ("WETH", 10**18 * (1 + i % 7)) if i % 2 == 0 else ("USDC", 10**6 * 5_000 * (1 + i % 5))
        )
        _send(devnet, pool.functions.supply(tokens[symbol], amount, w, 0), deployer)
    for i, w in enumerate(wallets):
        if i % 5 == 0:
            devnet.w3.provider.make_request("anvil_setBalance", [w, hex(10**20)])  # type: ignore[arg-type]
            devnet.w3.provider.make_request("anvil_impersonateAccount", [w])  # type: ignore[arg-type]
            symbol, amount = ("USDC", 10**6 * 500) if i % 2 == 0 else ("DAI", 10**18 * 1_000)
            _send(devnet, pool.functions.borrow(tokens[symbol], amount, 2, 0, w), w)
    devnet.txs.rpc("evm_mine", [])
    return wallets


async def ours(devnet: Devnet, wallets: list[str]) -> list[tuple[int, float, list[Any]]]:
    requests = 0

    async def count(_: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    spec = ChainSpec(chain_id=31337, rpc_urls=(devnet.rpc_url,), max_call_gas=900_000_000)
    options = ReaderOptions(gas_per_call=60_000, max_calls_per_batch=20_000, max_response_bytes=16_000_000)
    assets = AssetMap({"WETH": AssetInfo(FactorId("ETH")), "USDC": AssetInfo(FactorId("USD"))})
    cycles = []
    async with httpx.AsyncClient(event_hooks={"request": [count]}, timeout=60) as http:
        reader = EvmChainReader(chain=CHAIN, spec=spec, http=http, options=options)
        context = AdapterContext(http=http, chains={CHAIN: reader}, assets=assets)
        adapter = AaveV3Adapter(
            instance="devnet",
            spec=AaveV3Deployment(chain=CHAIN, pool_addresses_provider=devnet.aave.pool_addresses_provider),
            context=context,
        )
        DISCOVERY.clear()  # the first cycle discovers everything, as in a fresh process
        for _ in range(2):  # cold, then warm
            requests = 0
            started = time.perf_counter()
            accounts = await adapter.read_accounts([ChecksumAddress(w) for w in wallets])
            cycles.append((requests, time.perf_counter() - started, accounts))
    return cycles


def baseline(devnet: Devnet, wallets: list[str]) -> tuple[int, float, list[tuple[int, ...]]]:
    CountingProvider.requests = 0
    w3 = Web3(CountingProvider(devnet.rpc_url))
    started = time.perf_counter()
    pool = w3.eth.contract(address=Web3.to_checksum_address(devnet.aave.pool), abi=load_artifact("Pool").abi)
    provider = w3.eth.contract(
        address=Web3.to_checksum_address(devnet.aave.data_provider),
        abi=load_artifact("AaveProtocolDataProvider").abi,
    )
    block = w3.eth.block_number  # the same block as ours, so the figures are comparable
    reserves = pool.functions.getReservesList().call(block_identifier=block)
    out = []
    for w in wallets:
        out.append(tuple(pool.functions.getUserAccountData(w).call(block_identifier=block)))
        for asset in reserves:
            provider.functions.getUserReserveData(asset, w).call(block_identifier=block)
    return CountingProvider.requests, time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wallets", type=int, default=500)
    args = parser.parse_args()
    devnet = start_devnet()
    try:
        started = time.perf_counter()
        wallets = fund_wallets(devnet, args.wallets)
        print(f"funded {len(wallets)} wallets in {time.perf_counter() - started:.1f} s")
        (cold_req, cold_s, _cold_accounts), (warm_req, warm_s, warm_accounts) = asyncio.run(
            ours(devnet, wallets)
        )
        base_req, base_s, base_data = baseline(devnet, wallets)
        ok = [a for a in warm_accounts if a.status is AccountStatus.OK]
        exact = sum(1 for a in ok if a.raw["exact_matches_venue"])
        venue_equal = sum(
            1 for a, d in zip(warm_accounts, base_data, strict=True) if a.raw.get("venue_account_data") == d
        )
        n = len(wallets)
        print(f"{'':10}{'requests':>10}{'wallets/req':>13}{'wall s':>10}")
        print(f"{'ours cold':10}{cold_req:>10}{n / cold_req:>13.1f}{cold_s:>10.3f}")
        print(f"{'ours warm':10}{warm_req:>10}{n / warm_req:>13.1f}{warm_s:>10.3f}")
        print(f"{'baseline':10}{base_req:>10}{n / base_req:>13.2f}{base_s:>10.3f}")
        print(
            f"request ratio (baseline/ours, cold): {base_req / cold_req:.0f}x;"
            f" warm: {base_req / warm_req:.0f}x"
        )
        print(f"wall-time ratio (baseline/ours, cold): {base_s / cold_s:.1f}x; warm: {base_s / warm_s:.1f}x")
        print(
            f"accounts OK: {len(ok)}/{n}; exact health == Pool: {exact}/{len(ok)}; "
            f"venue data == baseline's: {venue_equal}/{n}"
        )
        per_request = "met" if n / warm_req >= 100 else "NOT met"
        per_request_cold = "met" if n / cold_req >= 100 else "NOT met"
        wall = "met" if base_s / cold_s >= 20 and base_s / warm_s >= 20 else "NOT met"
        print(f">= 100 wallets/request: steady-state (warm) {per_request}; first cycle {per_request_cold}")
        print(f">= 20x less wall time (cold and warm): {wall}")
    finally:
        devnet.stop()


if __name__ == "__main__":
    main()
