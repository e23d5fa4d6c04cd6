"""Helpers for the lending fidelity tests: build the real adapters over the real EVM reader against the
devnet node, read accounts synchronously, fund and impersonate fresh wallets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from eth_typing import ChecksumAddress
from web3 import Web3

from adapters.addresses import ChecksumAddress as Address
from adapters.assets import AssetInfo, AssetMap
from adapters.base import AdapterContext, BlockRef, Call, CallResult, ChainReader, VenueAdapter
from adapters.evm import EvmChainReader, ReaderOptions
from adapters.specs import ChainSpec
from risk.model import FactorId, MarginAccount

CHAIN = "devnet"

ASSETS = AssetMap(
    {
        "WETH": AssetInfo(FactorId("ETH")),
        "WBTC": AssetInfo(FactorId("BTC")),
        "wstETH": AssetInfo(FactorId("ETH"), FactorId("wstETH/ETH")),
        "USDC": AssetInfo(FactorId("USD")),
        "DAI": AssetInfo(FactorId("USD")),
    }
)

AdapterFactory = Callable[[AdapterContext], VenueAdapter]


def chain_spec(rpc_url: str, *, max_call_gas: int = 500_000_000) -> ChainSpec:
    return ChainSpec(chain_id=31337, rpc_urls=(rpc_url,), max_call_gas=max_call_gas, block_time_seconds=1.0)


def read(
    rpc_url: str,
    factory: AdapterFactory,
    wallets: Sequence[str],
    *,
    wrap: Callable[[ChainReader], ChainReader] | None = None,
    options: ReaderOptions | None = None,
) -> list[MarginAccount]:
    """One scan cycle of one adapter over the real reader (fresh event loop and HTTP client)."""

    async def run() -> list[MarginAccount]:
        async with httpx.AsyncClient() as http:
            reader: ChainReader = EvmChainReader(
                chain=CHAIN, spec=chain_spec(rpc_url), http=http, options=options
            )
            if wrap is not None:
                reader = wrap(reader)
            context = AdapterContext(http=http, chains={CHAIN: reader}, assets=ASSETS)
            adapter = factory(context)
            return await adapter.read_accounts([Address(Web3.to_checksum_address(w)) for w in wallets])

    return asyncio.run(run())


class FaultyReader:
    """Wraps a real reader and replaces the answer of the calls ``corrupt`` selects (transport fault)."""

    def __init__(self, inner: ChainReader, corrupt: Callable[[Call], CallResult | None]) -> None:
        self.inner = inner
        self.chain = inner.chain
        self.chain_id = inner.chain_id
        self.corrupt = corrupt

    async def pin(self) -> BlockRef:
        return await self.inner.pin()

    async def call_many(self, calls: Sequence[Call], block: BlockRef) -> list[CallResult]:
        results = await self.inner.call_many(calls, block)
        out = []
        for call, result in zip(calls, results, strict=True):
            replacement = self.corrupt(call)
            out.append(result if replacement is None else replacement)
        return out

    async def get_logs(self, **kwargs: Any) -> list[Any]:
        return await self.inner.get_logs(**kwargs)


def fund_wallet(w3: Web3, wallet: ChecksumAddress) -> None:
    """Give ``wallet`` ETH for gas and let anvil sign for it (``anvil_impersonateAccount``)."""
    w3.provider.make_request("anvil_setBalance", [wallet, hex(10**21)])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_impersonateAccount", [wallet])  # type: ignore[arg-type]
