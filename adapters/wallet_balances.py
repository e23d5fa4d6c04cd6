"""Idle wallet balances: tokens sitting in a wallet on one chain, outside every margin account.

What is read (one ``ChainReader.call_many`` per chain, at the block the scan cycle pinned, so the
balances and the accounts are of the same block):

- the native token (``ChainSpec.native_token``, 18 decimals) through Multicall3's
  ``getEthBalance(wallet)`` at ``ChainSpec.multicall3`` (a chain without Multicall3 gets a warning:
  its native balance is not read);
- every ERC-20 of :func:`chain_tokens`: ``decimals()`` once per token and ``balanceOf(wallet)`` per
  wallet (``adapters/abi/lending_token.json``). The amount is ``balanceOf / 10**decimals`` exactly.

Which tokens (:func:`chain_tokens`): ``[chains.<name>.tokens]`` (SYMBOL = address) plus every token a
lending adapter saw on that chain in the cycle (``MarginAccount.raw["token_addresses"]``: symbol ->
address, written by the Aave, Compound and Morpho adapters). When both name the same address the
adapter's symbol wins, so the idle token carries the symbol the accounts' positions use (the advisor
only moves a token to a position of the same symbol).

Failures are never zeros: a token whose ``decimals`` or ``balanceOf`` reverts or returns garbage is
left out with a warning ``idle balances on <chain> unknown: <SYMBOL> (<address>): <reason>``; a chain
that cannot be read gives ``idle balances on <chain> unknown: <reason>``. Only non-zero balances
are returned.

:func:`idle_balances` turns the balances into the advisor's ``risk.rebalance.IdleBalance`` with a
USD price per token supplied by the caller (the pipeline: the cycle's factor prices).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from adapters.addresses import ChecksumAddress, InvalidAddress, parse_address
from adapters.base import BlockRef, CallResult, ChainReader
from adapters.errors import VenueError
from adapters.evm.abi import load_contract
from adapters.lending_common import Batch, CallFailed, decode_result, encode_call, units
from adapters.specs import ChainSpec
from risk.model import AccountStatus, MarginAccount
from risk.rebalance.inputs import IdleBalance

__all__ = [
    "NATIVE_DECIMALS",
    "TOKEN_ADDRESSES_KEY",
    "ChainBalances",
    "TokenRef",
    "WalletBalance",
    "chain_tokens",
    "idle_balances",
    "read_wallet_balances",
]

TOKEN = load_contract("lending_token")
MULTICALL3 = load_contract("multicall3")
NATIVE_DECIMALS = 18
MAX_DECIMALS = 36  # anything above is garbage, not a token
TOKEN_ADDRESSES_KEY = "token_addresses"
"""``MarginAccount.raw`` key of the lending adapters' ``{symbol: token address}``."""


@dataclass(frozen=True, slots=True)
class TokenRef:
    """One token to read on a chain; ``address`` None is the chain's native token."""

    symbol: str
    address: ChecksumAddress | None


@dataclass(frozen=True, slots=True)
class WalletBalance:
    """``amount`` whole tokens (``base_units / 10**decimals``) of ``token`` held by ``wallet``."""

    wallet: ChecksumAddress
    chain: str
    token: str
    address: ChecksumAddress | None
    amount: Decimal
    base_units: int
    decimals: int


@dataclass
class ChainBalances:
    """What one chain gave: non-zero balances, and a warning per token (or for the chain) not read."""

    chain: str
    block: BlockRef | None
    balances: list[WalletBalance] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _warning(chain: str, reason: str) -> str:
    return f"idle balances on {chain} unknown: {reason}"


def chain_tokens(
    chain: str, spec: ChainSpec, accounts: Iterable[MarginAccount]
) -> tuple[tuple[TokenRef, ...], list[str]]:
    """The tokens to read on ``chain`` (see the module docstring), native first, and warnings for
    adapter-reported addresses that are not addresses. Deduplicated by address."""
    by_address: dict[str, TokenRef] = {}
    warnings: list[str] = []
    for account in accounts:
        if account.status is AccountStatus.UNAVAILABLE or account.as_of.chain != chain:
            continue
        seen = account.raw.get(TOKEN_ADDRESSES_KEY)
        if not isinstance(seen, Mapping):
            continue
        for symbol, text in seen.items():
            try:
                address = parse_address(str(text))
            except InvalidAddress as exc:
                warnings.append(_warning(chain, f"{account.deployment} reported token {symbol}: {exc}"))
                continue
            by_address.setdefault(address, TokenRef(str(symbol), address))
    for symbol, text in spec.tokens.items():
        address = parse_address(text)  # validated by ChainSpec
        by_address.setdefault(address, TokenRef(symbol, address))
    native = TokenRef(spec.native_token, None)
    return (native, *sorted(by_address.values(), key=lambda t: (t.symbol, str(t.address)))), warnings


def _decimals(result: CallResult, token: TokenRef) -> int:
    value = int(decode_result(TOKEN.function("decimals"), result, f"{token.symbol} ({token.address})")[0])
    if value > MAX_DECIMALS:
        raise CallFailed(f"{token.symbol} ({token.address}): decimals() returned {value}")
    return value


async def read_wallet_balances(
    reader: ChainReader,
    block: BlockRef,
    wallets: Sequence[ChecksumAddress],
    tokens: Sequence[TokenRef],
    *,
    multicall3: ChecksumAddress | None,
) -> ChainBalances:
    """Every wallet's balance of every token at ``block``, in one batch (see the module docstring).

    Never raises for the chain or a token: a failure is a warning in the result. Bugs propagate."""
    chain = reader.chain
    out = ChainBalances(chain=chain, block=block)
    unique = list(dict.fromkeys(wallets))
    if not unique or not tokens:
        return out
    batch = Batch()
    native = [t for t in tokens if t.address is None]
    if native and multicall3 is None:
        out.warnings.append(
            _warning(chain, f"{native[0].symbol}: the chain has no Multicall3 (getEthBalance), not read")
        )
        native = []
    for t in native:
        for w in unique:
            call = encode_call(MULTICALL3.function("getEthBalance"), ChecksumAddress(str(multicall3)), w)
            batch.add((t, w), call)
    erc20 = [t for t in tokens if t.address is not None]
    for t in erc20:
        address = ChecksumAddress(str(t.address))
        batch.add((t, "decimals"), encode_call(TOKEN.function("decimals"), address))
        for w in unique:
            batch.add((t, w), encode_call(TOKEN.function("balanceOf"), address, w))
    try:
        results: dict[Hashable, CallResult] = await batch.run(reader, block)
    except (VenueError, CallFailed) as exc:
        out.warnings.append(_warning(chain, str(exc)))
        return out

    for t in (*native, *erc20):
        what = f"{t.symbol} ({t.address})" if t.address is not None else f"{t.symbol} (native)"
        try:
            decimals = NATIVE_DECIMALS if t.address is None else _decimals(results[(t, "decimals")], t)
        except CallFailed as exc:
            out.warnings.append(_warning(chain, str(exc)))
            continue
        fn = MULTICALL3.function("getEthBalance") if t.address is None else TOKEN.function("balanceOf")
        failed: list[str] = []
        found: list[WalletBalance] = []
        for w in unique:
            try:
                amount = int(decode_result(fn, results[(t, w)], what)[0])
            except CallFailed as exc:
                failed.append(f"{w}: {exc}")
                continue
            if amount:
                held = units(amount, decimals)
                found.append(WalletBalance(w, chain, t.symbol, t.address, held, amount, decimals))
        if failed:  # the wallets read are kept; the others are named, never taken as zero
            others = len(failed) - 1
            more = f" (and {others} more wallet{'s' if others > 1 else ''})" if others else ""
            out.warnings.append(_warning(chain, f"{failed[0]}{more}"))
        out.balances.extend(found)
    return out


def idle_balances(
    balances: Iterable[WalletBalance], price_usd: Callable[[str], float | None]
) -> tuple[IdleBalance, ...]:
    """The advisor's ``IdleBalance`` per non-zero balance: ``location`` = the chain's name, ``token`` =
    the symbol, ``price_usd`` = ``price_usd(symbol)`` (None or a non-positive price: unknown, the
    advisor then uses the book's price of the same token)."""
    out: list[IdleBalance] = []
    for b in balances:
        if b.amount <= 0:
            continue
        price = price_usd(b.token)
        out.append(
            IdleBalance(
                wallet=b.wallet,
                location=b.chain,
                token=b.token,
                amount=b.amount,
                price_usd=price if price is not None and price > 0 else None,
            )
        )
    return tuple(out)
