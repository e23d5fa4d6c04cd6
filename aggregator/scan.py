"""The composition root of one scan: settings + wallets -> accounts of every selected deployment.

``run_scan(settings, wallets, only=...)``:

1. selects the targets: every enabled ``[deployments.<family>.<instance>]`` and ``[venues.<name>]``
   (instance ``main``) whose family has an adapter in ``adapters.registry.REGISTRY`` (family key =
   registry key), restricted by ``--only FAMILY[:INSTANCE],...`` (:func:`parse_only`; an unknown family
   or instance is an ``InputError`` with a did-you-mean; a target named explicitly runs even when
   ``enabled = false``);
2. builds the shared ``httpx.AsyncClient`` (explicit timeouts), one :class:`EvmChainReader` per chain
   the EVM targets need, the ``AssetMap`` from ``settings.assets`` and the ``AdapterContext``;
3. per chain pins one block, then runs every EVM adapter of that chain at it; HTTP venues run
   concurrently with the chains. A chain whose head cannot be read makes only its adapters'
   accounts UNAVAILABLE (reason: the reader's error);
4. turns an adapter exception (or a timeout) into one UNAVAILABLE account per wallet with the reason
   (never empty, RPC URLs redacted), and records one read status per (deployment, wallet).
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import httpx
from pydantic import BaseModel

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetInfo, AssetMap
from adapters.base import AdapterContext, BlockRef, ChainReader, VenueAdapter
from adapters.evm import EvmChainReader, ReaderOptions
from adapters.evm.redact import scrub
from adapters.evm.rpc import RpcOptions
from adapters.registry import REGISTRY
from adapters.specs import ChainSpec, DeploymentSpec
from aggregator.config import Deployments, Settings, Venues
from aggregator.errors import CrossmarginError, InputError
from risk.model import AccountStatus, AsOf, FactorId, LendingModel, MarginAccount

__all__ = ["HTTP_INSTANCE", "ReadStatus", "ScanResult", "Target", "parse_only", "run_scan", "select_targets"]

HTTP_INSTANCE = "main"
"""The instance name of an HTTP venue (``hyperliquid:main``)."""

ReaderFactory = Callable[[str, ChainSpec, httpx.AsyncClient], ChainReader]


@dataclass(frozen=True, slots=True)
class Target:
    """One adapter instance to run: ``family:instance`` with its config spec."""

    family: str
    instance: str
    spec: BaseModel

    @property
    def deployment(self) -> str:
        return f"{self.family}:{self.instance}"

    @property
    def chain(self) -> str | None:
        return self.spec.chain if isinstance(self.spec, DeploymentSpec) else None


@dataclass(frozen=True, slots=True)
class ReadStatus:
    """How reading one wallet on one deployment went."""

    deployment: str
    wallet: str
    status: Literal["ok", "unavailable", "not_configured"]  # not_configured: the venue needs credentials
    reason: str | None
    accounts: int


@dataclass
class ScanResult:
    wallets: tuple[ChecksumAddress, ...]
    accounts: list[MarginAccount] = field(default_factory=list)
    reads: list[ReadStatus] = field(default_factory=list)
    blocks: dict[str, BlockRef] = field(default_factory=dict)  # chain -> pinned block
    warnings: list[str] = field(default_factory=list)

    @property
    def any_unavailable(self) -> bool:
        return any(r.status == "unavailable" for r in self.reads)


# ---------------------------------------------------------------------------------------------
# target selection


def parse_only(text: str | None) -> list[tuple[str, str | None]]:
    """``"aave_v3:arbitrum,hyperliquid"`` -> ``[("aave_v3", "arbitrum"), ("hyperliquid", None)]``."""
    if text is None:
        return []
    out: list[tuple[str, str | None]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        family, _, instance = item.partition(":")
        if not family.strip() or (":" in item and not instance.strip()):
            raise InputError(f"--only {item!r}: expected FAMILY or FAMILY:INSTANCE")
        out.append((family.strip(), instance.strip() or None))
    if not out:
        raise InputError("--only needs at least one FAMILY[:INSTANCE]")
    return out


def configured(settings: Settings) -> dict[str, dict[str, BaseModel]]:
    """family -> instance -> spec, for every deployment and HTTP venue in the settings."""
    found: dict[str, dict[str, BaseModel]] = {}
    for family in Deployments.model_fields:
        instances: Mapping[str, BaseModel] = getattr(settings.deployments, family)
        found[family] = dict(instances)
    for name in Venues.model_fields:
        spec = getattr(settings.venues, name)
        found[name] = {HTTP_INSTANCE: spec} if spec is not None else {}
    return found


def _enabled(spec: BaseModel) -> bool:
    return bool(getattr(spec, "enabled", True))


def _hint(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def select_targets(
    settings: Settings, only: str | None, registry: Mapping[str, type[VenueAdapter]] = REGISTRY
) -> tuple[list[Target], list[str]]:
    """The targets to run, and warnings (configured families this build has no adapter for)."""
    config = configured(settings)
    families = set(config) | set(registry)
    selection = parse_only(only)
    warnings: list[str] = []
    if not selection:
        targets = [
            Target(family, instance, spec)
            for family, instances in config.items()
            if family in registry
            for instance, spec in instances.items()
            if _enabled(spec)
        ]
        return targets, warnings
    chosen: dict[str, Target] = {}
    for family, instance in selection:
        if family not in families:
            raise InputError(f"--only: unknown family {family!r}{_hint(family, families)}; "
                             f"known: {', '.join(sorted(families))}")
        instances = config.get(family, {})
        if instance is not None and instance not in instances:
            known = ", ".join(sorted(instances)) or "none"
            raise InputError(f"--only: {family} has no instance {instance!r}{_hint(instance, instances)}; "
                             f"configured: {known}")
        if family not in registry:
            raise InputError(f"--only: family {family!r} has no adapter in this build "
                             f"(available: {', '.join(sorted(registry)) or 'none'})")
        if instance is None:
            picked = [(i, s) for i, s in instances.items() if _enabled(s)]
            if not picked:
                raise InputError(f"--only: family {family!r} has no enabled deployment in the configuration")
        else:
            picked = [(instance, instances[instance])]
        for name, spec in picked:
            target = Target(family, name, spec)
            chosen[target.deployment] = target
    return list(chosen.values()), warnings


# ---------------------------------------------------------------------------------------------
# running


def asset_map(settings: Settings) -> AssetMap:
    return AssetMap({
        symbol: AssetInfo(factor=FactorId(spec.factor), basis=FactorId(spec.basis) if spec.basis else None)
        for symbol, spec in settings.assets.items()
    })


def _secret_urls(settings: Settings) -> list[str]:
    urls = [u for chain in settings.chains.values() for u in chain.rpc_urls]
    venues = (getattr(settings.venues, name) for name in Venues.model_fields)
    urls += [str(v.api_url) for v in venues if v is not None]
    return urls


def _default_reader(chain: str, spec: ChainSpec, http: httpx.AsyncClient) -> ChainReader:
    rpc = RpcOptions(
        hedge_after_s=spec.hedge_after_seconds or None, max_lag_blocks=spec.max_lag_blocks
    )
    return EvmChainReader(chain=chain, spec=spec, http=http, options=ReaderOptions(rpc=rpc))


def _reason(exc: BaseException, urls: Sequence[str]) -> str:
    """A one-line reason for ``exc``: a crossmargin error's own message, else ``Type: message``."""
    text = str(exc).strip()
    if isinstance(exc, CrossmarginError) and text:
        reason = text
    else:
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    for url in urls:
        reason = scrub(reason, url)
    return reason


@dataclass
class _Run:
    settings: Settings
    wallets: tuple[ChecksumAddress, ...]
    result: ScanResult
    now: Callable[[], datetime]
    adapter_timeout_s: float
    urls: list[str]
    progress: Callable[[str, str], None] | None = None

    def notify(self, deployment: str, event: str) -> None:
        """Tell the progress callback (``(deployment, "start"|"done"|"failed")``); never raises."""
        if self.progress is not None:
            try:
                self.progress(deployment, event)
            except Exception:  # a display problem must not sink the scan
                self.progress = None

    def unavailable_all(self, target: Target, adapter: VenueAdapter | None, reason: str, as_of: AsOf) -> None:
        for wallet in self.wallets:
            if adapter is not None:
                account = adapter.unavailable(wallet, reason, as_of)
            else:
                account = MarginAccount.unavailable(
                    venue=target.family, deployment=target.deployment, account_id=wallet, wallet=wallet,
                    margin_model=LendingModel(), as_of=as_of, reason=reason,
                )
            self.result.accounts.append(account)
            self.result.reads.append(ReadStatus(target.deployment, wallet, "unavailable", reason, 0))

    def record(self, target: Target, accounts: Sequence[MarginAccount]) -> None:
        for account in accounts:
            if account.deployment != target.deployment:
                self.result.warnings.append(
                    f"{target.deployment}: adapter returned an account of {account.deployment}; kept as is"
                )
        for wallet in self.wallets:
            mine = [a for a in accounts if a.wallet == wallet]
            down = [a for a in mine if a.status is AccountStatus.UNAVAILABLE]
            if down:
                reason = "; ".join(sorted({a.status_reason or "unavailable" for a in down}))
                unset = all(a.raw.get("not_configured") is True for a in down)
                status: Literal["unavailable", "not_configured"] = (
                    "not_configured" if unset else "unavailable"
                )
                read = ReadStatus(target.deployment, wallet, status, reason, len(mine))
                self.result.reads.append(read)
            else:
                self.result.reads.append(ReadStatus(target.deployment, wallet, "ok", None, len(mine)))
        self.result.accounts.extend(accounts)

    async def run_adapter(self, target: Target, adapter: VenueAdapter, block: BlockRef | None) -> None:
        as_of = block.as_of() if block is not None else AsOf(timestamp=self.now(), chain=target.chain)
        self.notify(target.deployment, "start")
        try:
            async with asyncio.timeout(self.adapter_timeout_s):
                accounts = await adapter.read_accounts(self.wallets, block=block)
        except TimeoutError:
            reason = f"read did not finish within {self.adapter_timeout_s:.0f} s"
            self.unavailable_all(target, adapter, reason, as_of)
            self.notify(target.deployment, "failed")
            return
        except Exception as exc:  # an adapter bug or venue failure must not sink the scan
            self.unavailable_all(target, adapter, _reason(exc, self.urls), as_of)
            self.notify(target.deployment, "failed")
            return
        self.record(target, accounts)
        down = any(a.status is AccountStatus.UNAVAILABLE for a in accounts)
        self.notify(target.deployment, "failed" if down else "done")

    async def run_chain(
        self, chain: str, reader: ChainReader, group: list[tuple[Target, VenueAdapter]]
    ) -> None:
        try:
            block = await reader.pin()
        except Exception as exc:
            reason = f"cannot read chain {chain}: {_reason(exc, self.urls)}"
            for target, adapter in group:
                self.unavailable_all(target, adapter, reason, AsOf(timestamp=self.now(), chain=chain))
                self.notify(target.deployment, "failed")
            return
        self.result.blocks[chain] = block
        await asyncio.gather(*(self.run_adapter(t, a, block) for t, a in group))


def _build_http() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        follow_redirects=False,
        headers={"user-agent": "crossmargin"},
    )


async def run_scan(
    settings: Settings,
    wallets: Sequence[ChecksumAddress],
    *,
    only: str | None = None,
    registry: Mapping[str, type[VenueAdapter]] = REGISTRY,
    http: httpx.AsyncClient | None = None,
    reader_factory: ReaderFactory = _default_reader,
    adapter_timeout_s: float = 120.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Callable[[str, str], None] | None = None,
) -> ScanResult:
    """One scan of ``wallets`` over the selected deployments (see the module docstring).

    ``progress(deployment, event)`` is called with ``"start"`` when a deployment's read begins and
    ``"done"`` / ``"failed"`` (some wallet unavailable) when it ends (for a progress display)."""
    targets, warnings = select_targets(settings, only, registry)
    unique_wallets = tuple(dict.fromkeys(wallets))
    result = ScanResult(wallets=unique_wallets, warnings=list(warnings))
    client = http or _build_http()
    try:
        readers: dict[str, ChainReader] = {}
        for target in targets:
            chain = target.chain
            if chain is not None and chain not in readers:
                readers[chain] = reader_factory(chain, settings.chains[chain], client)
        context = AdapterContext(http=client, chains=readers, assets=asset_map(settings), now=now)
        run = _Run(settings, unique_wallets, result, now, adapter_timeout_s, _secret_urls(settings), progress)
        by_chain: dict[str, list[tuple[Target, VenueAdapter]]] = {}
        http_adapters: list[tuple[Target, VenueAdapter]] = []
        for target in targets:
            try:
                adapter = registry[target.family](instance=target.instance, spec=target.spec, context=context)
            except Exception as exc:
                reason = f"adapter could not start: {_reason(exc, run.urls)}"
                run.unavailable_all(target, None, reason, AsOf(timestamp=now(), chain=target.chain))
                run.notify(target.deployment, "failed")
                continue
            if target.chain is not None:
                by_chain.setdefault(target.chain, []).append((target, adapter))
            else:
                http_adapters.append((target, adapter))
        await asyncio.gather(
            *(run.run_chain(chain, readers[chain], group) for chain, group in by_chain.items()),
            *(run.run_adapter(t, a, None) for t, a in http_adapters),
        )
    finally:
        if http is None:
            await client.aclose()
    result.reads.sort(key=lambda r: (r.deployment, r.wallet))
    return result
