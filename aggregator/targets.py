"""Command-line targets -> ``(portfolio, wallets)`` groups: addresses, ENS names, stored portfolios.

``resolve_targets`` (used by ``crossmargin scan`` and the ``watch`` service's arguments): addresses
(``0x`` + 40 hex digits) and ENS names (``*.eth``, resolved by ``adapters.ens`` at one pinned block of
the chain :func:`ens_chain` picks) form one ad-hoc portfolio; any other name is a portfolio stored in
the database (``Repository.wallets``), an unknown one an ``InputError`` with a did-you-mean.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Sequence

import httpx

from adapters.addresses import ChecksumAddress, InvalidAddress, parse_address
from adapters.ens import MAINNET_REGISTRY, EnsError, looks_like_ens, resolve_names
from adapters.errors import VenueError, VenueUnavailable
from adapters.evm import EvmChainReader, ReaderOptions
from adapters.specs import ChainSpec
from aggregator.config import Settings
from aggregator.db.repository import Repository
from aggregator.errors import InputError

__all__ = ["DEFAULT_PORTFOLIO", "ens_chain", "resolve_ens", "resolve_targets", "resolve_targets_async"]

DEFAULT_PORTFOLIO = "default"
"""The portfolio name of wallets given on the command line without ``--portfolio``."""


def ens_chain(settings: Settings) -> tuple[str, ChainSpec, ChecksumAddress] | None:
    """The chain ENS names resolve on: the first chain (by name) with an explicit ``ens_registry``,
    else the chain with ``chain_id = 1`` and the mainnet registry; None when neither is configured."""
    for name in sorted(settings.chains):
        spec = settings.chains[name]
        if spec.ens_registry is not None:
            return name, spec, parse_address(spec.ens_registry)
    for name in sorted(settings.chains):
        spec = settings.chains[name]
        if spec.chain_id == 1:
            return name, spec, MAINNET_REGISTRY
    return None


async def resolve_ens(
    settings: Settings, names: Sequence[str], *, http: httpx.AsyncClient | None = None
) -> dict[str, ChecksumAddress]:
    """``{name as typed: address}`` for ENS names, read at one pinned block (``adapters.ens``)."""
    if not names:
        return {}
    chain = ens_chain(settings)
    if chain is None:
        raise InputError(
            f"cannot resolve {', '.join(names)}: no Ethereum RPC is configured "
            "(add [chains.ethereum] with rpc_urls, or ens_registry on a chain)"
        )
    name, spec, registry = chain
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    try:
        reader = EvmChainReader(chain=name, spec=spec, http=client, options=ReaderOptions())
        try:
            resolved = await resolve_names(reader, names, registry=registry)
        except EnsError as exc:
            raise InputError(str(exc)) from None
        except VenueError as exc:  # the chain could not be read: say what was being resolved
            raise VenueUnavailable(
                f"resolving ENS name(s) {', '.join(names)}: {exc}", venue="ens", chain=name
            ) from None
    finally:
        if http is None:
            await client.aclose()
    return {text: r.address for text, r in resolved.items()}


async def resolve_targets_async(
    settings: Settings,
    repository: Repository | None,
    names: Sequence[str],
    *,
    portfolio: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> list[tuple[str, tuple[ChecksumAddress, ...]]]:
    """``[(portfolio name, wallets)]`` for command-line ``names``:

    * addresses (``0x`` + 40 hex digits) and ENS names (``*.eth``) form one ad-hoc portfolio named
      ``portfolio`` (default :data:`DEFAULT_PORTFOLIO`), listed first;
    * any other name is a stored portfolio (``crossmargin wallets add --portfolio``); an unknown one
      is an ``InputError`` with a did-you-mean;
    * no names and a ``portfolio``: that stored portfolio.
    """
    addresses: list[ChecksumAddress] = []
    ens_names: list[str] = []
    stored: list[str] = []
    for raw in names:
        text = raw.strip()
        if looks_like_ens(text):
            ens_names.append(text)
        elif text.lower().startswith("0x"):
            try:
                addresses.append(parse_address(text))
            except InvalidAddress as exc:
                raise InputError(f"wallet address {exc}") from None
        elif text:
            stored.append(text)
        else:
            raise InputError("an empty wallet or portfolio name")
    if not names:
        if portfolio is None:
            raise InputError("give wallet addresses, ENS names or a portfolio name (or --portfolio NAME)")
        stored.append(portfolio)
    resolved = await resolve_ens(settings, ens_names, http=http)
    addresses += [resolved[n] for n in ens_names]
    out: list[tuple[str, tuple[ChecksumAddress, ...]]] = []
    if addresses:
        out.append((portfolio or DEFAULT_PORTFOLIO, tuple(dict.fromkeys(addresses))))
    if stored:
        if repository is None:
            raise InputError(
                f"{', '.join(stored)}: not an address or ENS name, and no database to look portfolios up in"
            )
        known = repository.portfolios()
        for name in dict.fromkeys(stored):
            wallets = tuple(parse_address(w.address) for w in repository.wallets(name))
            if not wallets:
                hint = difflib.get_close_matches(name, known, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                listed = ", ".join(known) or "none yet: `crossmargin wallets add ADDRESS --portfolio NAME`"
                raise InputError(
                    f"{name!r} is not an address, an ENS name or a portfolio with wallets"
                    f"{extra}; portfolios: {listed}"
                )
            out.append((name, wallets))
    return out


def resolve_targets(
    settings: Settings, repository: Repository | None, names: Sequence[str], *, portfolio: str | None = None
) -> list[tuple[str, tuple[ChecksumAddress, ...]]]:
    """Synchronous :func:`resolve_targets_async` (for the CLI; from async code use the async one)."""
    return asyncio.run(resolve_targets_async(settings, repository, names, portfolio=portfolio))
