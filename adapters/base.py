"""The shape every venue adapter has, and what the composition root hands it.

One adapter instance reads one deployment (``aave_v3:arbitrum``, ``hyperliquid:main``) for many
wallets at once. Its only I/O is ``read_accounts``. It never raises for a venue failure: a wallet
whose accounts could not be read comes back as one ``UNAVAILABLE`` account whose ``account_id`` is
the wallet, with the reason. A wallet with nothing on the venue comes back with no accounts.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Literal, Protocol

import httpx
from pydantic import BaseModel

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetMap
from adapters.errors import VenueError
from risk.model import AsOf, MarginAccount, MarginModel

__all__ = [
    "AdapterContext",
    "BlockRef",
    "Call",
    "CallResult",
    "ChainReader",
    "VenueAdapter",
]


@dataclass(frozen=True, slots=True)
class BlockRef:
    """The block one scan cycle is pinned to on one chain."""

    chain: str
    number: int
    hash: str  # 0x-prefixed
    timestamp: datetime

    def as_of(self) -> AsOf:
        return AsOf(
            timestamp=self.timestamp, chain=self.chain, block_number=self.number, block_hash=self.hash
        )


@dataclass(frozen=True, slots=True)
class Call:
    """One ``eth_call``: ``target`` and ABI-encoded ``data`` (selector + arguments); ``gas`` is the
    caller's estimate of what the call costs, used to split Multicall3 batches under the gas cap."""

    target: ChecksumAddress
    data: bytes
    gas: int | None = None


@dataclass(frozen=True, slots=True)
class CallResult:
    """``success`` is False for a revert, and also for empty return data (a call to an address with
    no code succeeds with empty data in Multicall3)."""

    success: bool
    data: bytes


class ChainReader(Protocol):
    """Reads one chain (``adapters.evm``): a pool of RPC endpoints with failover, calls pinned to a block."""

    chain: str
    chain_id: int

    async def pin(self) -> BlockRef:
        """Read the head once (number, hash, timestamp): every call of the cycle uses it."""
        ...

    async def call_many(self, calls: Sequence[Call], block: BlockRef) -> list[CallResult]:
        """All calls at ``block``: batched through Multicall3 ``aggregate3`` (allowFailure per call,
        split under the gas cap), or JSON-RPC batches where the chain has no Multicall3. Raises
        ``VenueUnavailable`` only when the chain itself cannot be read."""
        ...

    async def get_logs(
        self, *, address: ChecksumAddress, topics: Sequence[str | Sequence[str] | None], from_block: int,
        to_block: int,
    ) -> list[Mapping[str, object]]:
        """``eth_getLogs`` split into chunks the node accepts."""
        ...


@dataclass(frozen=True)
class AdapterContext:
    """Everything an adapter may use for I/O, built once by the composition root (no globals)."""

    http: httpx.AsyncClient
    chains: Mapping[str, ChainReader]
    assets: AssetMap
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class VenueAdapter(ABC):
    """Base of every adapter. Subclasses set the class variables and implement ``read_accounts``."""

    family: ClassVar[str]  # registry key = module name = config family (``aave_v3``, ``hyperliquid``)
    kind: ClassVar[Literal["evm", "http"]]
    margin_model: ClassVar[MarginModel]
    capabilities: ClassVar[frozenset[str]]  # e.g. {"venue_health", "liquidation_price", "greeks"}

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        self.instance = instance
        self.spec = spec
        self.context = context

    @property
    def deployment(self) -> str:
        return f"{self.family}:{self.instance}"

    @property
    def chain(self) -> str | None:
        """The chain an EVM adapter reads (its block is pinned per cycle); None for HTTP venues."""
        return getattr(self.spec, "chain", None)

    @abstractmethod
    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        """Every margin account of ``wallets`` on this deployment (``block`` is set for EVM adapters)."""

    async def read_each_wallet(
        self,
        wallets: Sequence[ChecksumAddress],
        read_one: Callable[[ChecksumAddress], Awaitable[list[MarginAccount]]],
    ) -> list[MarginAccount]:
        """Read every wallet concurrently; a wallet whose read raised a ``VenueError`` becomes one
        UNAVAILABLE account with the reason (the others are unaffected). Bugs propagate."""
        results = await asyncio.gather(*(read_one(w) for w in wallets), return_exceptions=True)
        accounts: list[MarginAccount] = []
        for wallet, result in zip(wallets, results, strict=True):
            if isinstance(result, VenueError):
                accounts.append(self.unavailable(wallet, str(result), AsOf(timestamp=self.context.now())))
            elif isinstance(result, BaseException):
                raise result
            else:
                accounts.extend(result)
        return accounts

    def unavailable(self, wallet: ChecksumAddress, reason: str, as_of: AsOf) -> MarginAccount:
        """The account standing for "everything of ``wallet`` here", when it could not be read."""
        return MarginAccount.unavailable(
            venue=self.family,
            deployment=self.deployment,
            account_id=wallet,
            wallet=wallet,
            margin_model=self.margin_model,
            as_of=as_of,
            reason=reason,
        )
