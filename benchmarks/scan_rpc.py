"""JSON-RPC requests and wall time of the Aave V3 adapter against the plain web3.py way, same run.

Starts the devnet (``aggregator.devnet.network.start_devnet``), funds N wallets on Aave (the deployer
supplies WETH or USDC on their behalf; every fifth wallet also borrows, impersonated), then scans
them. Funding runs with anvil's automine off and is mined explicitly (``evm_mine`` until the pool is
empty, every receipt checked): with automine on, hundreds of unwaited ``eth_sendTransaction`` left
anvil mining a tail of empty blocks for seconds after the last transaction, so the chain head (and
its timestamp, hence accrued interest) moved during the measurement. The blocks read and how far
the head moved during the run are printed.

- ours: ``AaveV3Adapter`` over ``EvmChainReader`` (Multicall3 ``aggregate3``, one pinned block);
  requests counted by an httpx event hook on the client (every HTTP request, the endpoint's
  ``eth_chainId`` check included), cold cycle (first of the process: the discovery cache is emptied
  first; Pool discovery rides in the pin's request, reserves are discovered) and warm cycle (cached
  Pool and reserve statics) reported separately;
- baseline: web3.py ``HTTPProvider``, ``Pool.getUserAccountData`` plus
  ``AaveProtocolDataProvider.getUserReserveData`` per reserve per wallet, sequentially, every call
  at the block our warm cycle pinned (``block_identifier``); requests counted in ``make_request``.

Prints both figures and the ratios (targets: >= 100 wallets per request, >= 20x less wall time) and
two checks: every account's exact health equals the Pool's (same cycle, same block), and the
``getUserAccountData`` six-tuple we keep as the venue's figure equals the baseline's own read of it
at the same block, per wallet (a wallet without an OK account counts as a mismatch).

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


def _mine_pending(devnet: Devnet, sent: list[str]) -> None:
    """``evm_mine`` until anvil's pool is empty (a block holds what fits its gas limit), then check
    that every hash in ``sent`` has a successful receipt."""
    for _ in range(len(sent) + 1):
        pending = int(devnet.txs.rpc("txpool_status", [])["pending"], 16)
        if pending == 0:
            break
        devnet.txs.rpc("evm_mine", [])
    else:
        raise RuntimeError("anvil's pool did not drain")
    failed = [h for h in sent if int(devnet.txs.rpc("eth_getTransactionReceipt", [h])["status"], 16) != 1]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(sent)} funding transactions reverted, e.g. {failed[0]}")


def _send(devnet: Devnet, fn: Any, sender: str) -> str:
    tx = {
        "from": sender,
        "to": fn.address,
        "data": fn._encode_transaction_data(),
        "gas": hex(3_000_000),
    }
    return str(devnet.txs.rpc("eth_sendTransaction", [tx]))


def fund_wallets(devnet: Devnet, count: int) -> list[str]:
    """``count`` fresh wallets with Aave positions, sent with automine off and mined explicitly
    (supplies first, then borrows), so no block is mined after this returns."""
    aave, tokens = devnet.aave, devnet.tokens
    deployer = devnet.wallets["deployer"]
    pool = devnet_aave.pool(devnet.txs, aave)
    wallets: list[str] = [Web3.to_checksum_address(f"0x{0xBE4C0000 + i:040x}") for i in range(count)]
    big = 10**30
    for symbol in ("WETH", "USDC"):
        mint(devnet.txs, tokens[symbol], deployer, big)
        approve(devnet.txs, tokens[symbol], deployer, aave.pool, big)
    devnet.txs.rpc("evm_setAutomine", [False])
    try:
        supplies: list[str] = []
        for i, w in enumerate(wallets):
            symbol, amount = (
                ("WETH", 10**18 * (1 + i % 7)) if i % 2 == 0 else ("USDC", 10**6 * 5_000 * (1 + i % 5))
            )
            supplies.append(_send(devnet, pool.functions.supply(tokens[symbol], amount, w, 0), deployer))
        _mine_pending(devnet, supplies)
        borrows: list[str] = []
        for i, w in enumerate(wallets):
            if i % 5 == 0:
                devnet.txs.rpc("anvil_setBalance", [w, hex(10**20)])
                devnet.txs.rpc("anvil_impersonateAccount", [w])
                symbol, amount = ("USDC", 10**6 * 500) if i % 2 == 0 else ("DAI", 10**18 * 1_000)
                borrows.append(_send(devnet, pool.functions.borrow(tokens[symbol], amount, 2, 0, w), w))
        _mine_pending(devnet, borrows)
    finally:
        devnet.txs.rpc("evm_setAutomine", [True])
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


def baseline(devnet: Devnet, wallets: list[str], block: int) -> tuple[int, float, list[tuple[int, ...]]]:
    """The plain web3.py way, every call at ``block`` (the block our warm cycle pinned)."""
    CountingProvider.requests = 0
    w3 = Web3(CountingProvider(devnet.rpc_url))
    started = time.perf_counter()
    pool = w3.eth.contract(address=Web3.to_checksum_address(devnet.aave.pool), abi=load_artifact("Pool").abi)
    provider = w3.eth.contract(
        address=Web3.to_checksum_address(devnet.aave.data_provider),
        abi=load_artifact("AaveProtocolDataProvider").abi,
    )
    reserves = pool.functions.getReservesList().call(block_identifier=block)
    out = []
    for w in wallets:
        out.append(tuple(pool.functions.getUserAccountData(w).call(block_identifier=block)))
        for asset in reserves:
            provider.functions.getUserReserveData(asset, w).call(block_identifier=block)
    return CountingProvider.requests, time.perf_counter() - started, out


def venue_data_matches(accounts: list[Any], wallets: list[str], base_data: list[tuple[int, ...]]) -> int:
    """Wallets whose OK account's ``raw["venue_account_data"]`` equals the baseline's
    ``getUserAccountData`` tuple (matched by wallet, not by position in the list)."""
    ok = [a for a in accounts if a.status is AccountStatus.OK]
    ours = {a.wallet.lower(): a.raw.get("venue_account_data") for a in ok}
    return sum(1 for w, d in zip(wallets, base_data, strict=True) if ours.get(w.lower()) == d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wallets", type=int, default=500)
    args = parser.parse_args()
    devnet = start_devnet()
    try:
        started = time.perf_counter()
        wallets = fund_wallets(devnet, args.wallets)
        print(f"funded {len(wallets)} wallets in {time.perf_counter() - started:.1f} s")
        head = devnet.w3.eth.block_number
        (cold_req, cold_s, cold_accounts), (warm_req, warm_s, warm_accounts) = asyncio.run(
            ours(devnet, wallets)
        )
        pinned = {a.as_of.block_number for a in warm_accounts}
        if len(pinned) != 1 or None in pinned:
            raise RuntimeError(f"the warm cycle's accounts are not of one block: {pinned}")
        (block,) = pinned
        base_req, base_s, base_data = baseline(devnet, wallets, block)
        moved = devnet.w3.eth.block_number - head
        ok = [a for a in warm_accounts if a.status is AccountStatus.OK]
        exact = sum(1 for a in ok if a.raw["exact_matches_venue"])
        venue_equal = venue_data_matches(warm_accounts, wallets, base_data)
        n = len(wallets)
        cold_block = cold_accounts[0].as_of.block_number if cold_accounts else None
        print(
            f"blocks read: ours cold {cold_block}, warm {block}; baseline {block};"
            f" chain head moved {moved} blocks during the run"
        )
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
            f"venue data == baseline's (block {block}): {venue_equal}/{n}"
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
