"""One monitoring cycle for one portfolio: venues -> risk engine -> alert decisions -> database -> report.

``run_cycle(settings, portfolio=..., wallets=...)`` (used by ``crossmargin scan`` and by the ``watch``
service for every scheduled or block-driven cycle):

1. ``aggregator.scan.run_scan``: every selected deployment read once for the wallets (EVM chains
   pinned to one block each; a venue that cannot be read gives UNAVAILABLE accounts with the reason,
   never an empty list);
2. ``risk.model.Portfolio`` of every account, and the ``MarketState`` of
   ``aggregator.market_inputs.build_market`` (reference factor prices = median of the venues' prices;
   vols and correlations by EWMA over the factor prices stored in the database when there are at
   least ``[risk] min_history_days`` daily returns, else ``config/risk.toml``'s defaults);
3. ``risk.engine.assess``: per-account health for every margin model, drift against the venue's own
   figure, CHF, stress, p_liq, cross-margin views, distances and ladder, hedge breaks, greeks;
4. rebalancing advice from ``risk.rebalance.advise`` (``_rebalancing``; moves into
   ``Assessment.rebalancing`` and the report's ``composite.rebalancing``), with the wallets' idle
   balances on every chain the scan pinned (``adapters.wallet_balances``, read at the scan's blocks,
   priced at the cycle's factor prices: ``_read_idle``, ``_idle_price``; into the report's
   ``idle_balances``; a chain or token that cannot be read is a warning, never a zero);
5. ``aggregator.alerts.decide.decide_alerts`` with the previous alert states from the repository
   (skipped when ``[alerts]`` has no rule);
6. ``Repository.store_scan``: scan, snapshot, accounts, positions, assessment, factor prices, outbox
   rows and alert states in ONE transaction (skipped without a repository);
7. the ``scan --json`` document (``aggregator.report_scan.scan_report``).

Where the steps run: the venue reads (1, and the idle balances of 4) are awaited on the event loop;
the CPU-heavy and blocking steps run in a worker thread of a small bounded pool (:func:`cycle_executor`,
``crossmargin-cycle-*``) so that block watchers, the delivery worker and the other portfolios' cycles
keep running meanwhile: the market state (2: EWMA over stored prices, a database read), the engine and
the advisor (3-4: numpy releases the GIL in its kernels), the alert decisions (5: reads the stored alert
states) and the store and the report (6-7). The steps run in the same order with the same inputs, so
the same ``rng_seed`` gives the same figures. Cancellation (``watch`` at SIGTERM after its grace):
cancelling the awaiting task during 2-5 abandons the thread's result and stores nothing (the store has
not begun); once the store has begun it is not interruptible (a thread cannot be), so the task waits
for the transaction to commit or roll back and only then raises ``CancelledError``
(:func:`_run_to_completion`): a cancelled cycle has stored everything or nothing.

After ``run_cycle`` returns, the caller wakes the alert delivery worker (outbox rows are only written,
never sent, here). ``cycle_exit_code`` maps a result to the CLI's exit code; ``critical_chf`` says
which threshold exit code 4 uses.

Command-line names (addresses, ENS names, stored portfolio names) become ``(portfolio, wallets)``
groups in ``aggregator.targets.resolve_targets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

import httpx

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetMap
from adapters.base import VenueAdapter
from adapters.evm import EvmChainReader, ReaderOptions
from adapters.evm.redact import scrub
from adapters.registry import REGISTRY
from adapters.specs import ChainSpec
from adapters.wallet_balances import WalletBalance, chain_tokens, idle_balances, read_wallet_balances
from aggregator.alerts.decide import AlertOutcome, decide_alerts
from aggregator.alerts.rules import Metric
from aggregator.config import Settings
from aggregator.db.repository import Repository, ScanInfo
from aggregator.errors import ExitCode
from aggregator.market_inputs import MarketInputs, build_market
from aggregator.report import ScanReport
from aggregator.report_scan import scan_report
from aggregator.scan import ScanResult, asset_map, run_scan
from risk.assessment import Assessment, RebalanceMove
from risk.engine import assess
from risk.model import USD, AccountStatus, FactorId, MarketState, Portfolio
from risk.params import RiskParams
from risk.rebalance import IdleBalance, Movable, advise

__all__ = [
    "CycleResult",
    "critical_chf",
    "cycle_executor",
    "cycle_exit_code",
    "run_cycle",
]

ProgressCallback = Callable[[str, str], None]


@dataclass
class CycleResult:
    scan: ScanResult
    portfolio: Portfolio
    market: MarketState
    assessment: Assessment | None  # None only when there is no account at all
    report: ScanReport  # with ``composite`` filled when assessed
    snapshot_id: int | None  # None when no repository was given
    alerts: AlertOutcome | None  # None when [alerts] has no rules
    inputs: MarketInputs | None = None  # how the market state was built
    critical_chf: float = 1.0
    scan_id: str = ""


# ---------------------------------------------------------------------------------------------
# thresholds and exit codes


def critical_chf(settings: Settings, portfolio: str | None = None) -> tuple[float, str]:
    """The CHF below which ``crossmargin scan`` exits 4, and where it comes from:

    1. ``[risk] critical_chf`` when set;
    2. else the lowest ``critical`` of the enabled ``[[alerts.rules]]`` with ``metric = "chf"`` that
       apply to ``portfolio`` (``portfolio = "*"`` or its name);
    3. else 1.0 (the book can be liquidated somewhere)."""
    if settings.risk.critical_chf is not None:
        return settings.risk.critical_chf, "[risk] critical_chf"
    found = [
        (rule.critical, rule.name)
        for rule in settings.alerts.rules
        if rule.enabled
        and rule.metric is Metric.CHF
        and rule.critical is not None
        and (portfolio is None or rule.applies_to_portfolio(portfolio))
    ]
    if found:
        value, name = min(found)
        return value, f"alert rule {name!r} (critical)"
    return 1.0, "default (liquidatable)"


def cycle_exit_code(result: CycleResult) -> ExitCode:
    """4 when CHF < the critical threshold (a finding about the money: it wins over 3); 3 when some
    venue read was unavailable; else 0."""
    chf = result.assessment.chf if result.assessment is not None else None
    if chf is not None and chf < result.critical_chf:
        return ExitCode.CHF_CRITICAL
    if result.scan.any_unavailable:
        return ExitCode.VENUE_UNAVAILABLE
    return ExitCode.OK


# ---------------------------------------------------------------------------------------------
# idle balances and rebalancing advice


IDLE_READ_TIMEOUT_S = 30.0
"""How long the idle-balance read of one chain may take before it is a warning."""


async def _read_idle_chain(
    name: str, spec: ChainSpec, scan: ScanResult, client: httpx.AsyncClient
) -> tuple[list[WalletBalance], list[str]]:
    tokens, warnings = chain_tokens(name, spec, scan.accounts)
    try:
        async with asyncio.timeout(IDLE_READ_TIMEOUT_S):
            reader = EvmChainReader(chain=name, spec=spec, http=client, options=ReaderOptions())
            got = await read_wallet_balances(
                reader, scan.blocks[name], scan.wallets, tokens,
                multicall3=ChecksumAddress(spec.multicall3) if spec.multicall3 else None,
            )
    except TimeoutError:
        late = f"idle balances on {name} unknown: no answer within {IDLE_READ_TIMEOUT_S:.0f} s"
        return [], [*warnings, late]
    except Exception as exc:  # optional figures: a chain that fails is a warning, never a failed scan
        reason = f"{type(exc).__name__}: {exc}"
        for url in spec.rpc_urls:
            reason = scrub(reason, url)
        return [], [*warnings, f"idle balances on {name} unknown: {reason}"]
    return got.balances, [*warnings, *got.warnings]


async def _read_idle(
    settings: Settings, scan: ScanResult, http: httpx.AsyncClient | None
) -> tuple[list[WalletBalance], list[str]]:
    """The wallets' idle balances on every chain the scan pinned, at the scan's block
    (``adapters.wallet_balances``), and a warning per chain or token that could not be read."""
    chains = [c for c in sorted(scan.blocks) if c in settings.chains]
    if not chains or not scan.wallets:
        return [], []
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    try:
        results = await asyncio.gather(
            *(_read_idle_chain(c, settings.chains[c], scan, client) for c in chains)
        )
    finally:
        if http is None:
            await client.aclose()
    balances = [b for got, _ in results for b in got]
    warnings = [w for _, ws in results for w in ws]
    return balances, warnings


def _idle_price(assets: AssetMap, inputs: MarketInputs, symbol: str) -> float | None:
    """USD per ``symbol`` at the cycle's factor prices: ``price(factor) x price(basis)`` (the basis
    taken as 1 when the cycle has no price for it, as ``aggregator.market_inputs`` does); None when
    the factor has no price in this cycle (the advisor then uses the book's price of the token)."""
    info = assets.resolve(symbol)

    def quote(factor: FactorId) -> float | None:
        if factor == USD:
            return 1.0
        q = inputs.quotes.get(factor)
        return q.price if q is not None and q.price > 0 else None

    price = quote(info.factor)
    if price is None:
        return None
    basis = quote(info.basis) if info.basis is not None else None
    return price * basis if basis is not None else price


def _rebalancing(
    portfolio: Portfolio,
    market: MarketState,
    params: RiskParams,
    assessment: Assessment,
    rng_seed: int | None,
    *,
    idle: Sequence[IdleBalance] = (),
) -> tuple[tuple[RebalanceMove, ...], str | None]:
    """``risk.rebalance.advise`` (objective: maximize the stressed CHF; movable = what the accounts
    themselves allow plus the wallets' ``idle`` balances; ``reassess=False``: no second Monte Carlo).

    Returns (moves, a warning when the advisor failed). The advice is optional: a failure never sinks
    the cycle, the figures stand without advice and the warning says why."""
    try:
        advice = advise(
            portfolio, market, params, Movable(idle=tuple(idle)),
            before=assessment, reassess=False, rng_seed=rng_seed,
        )
    except Exception as exc:  # optional figure: report it, keep the cycle
        return (), f"rebalancing advice failed: {type(exc).__name__}: {exc}"
    return tuple(advice.moves), None


def _as_of_accounts(scan: ScanResult) -> bool:
    return any(a.status is not AccountStatus.UNAVAILABLE for a in scan.accounts)


# ---------------------------------------------------------------------------------------------
# off the event loop

_P = ParamSpec("_P")
_T = TypeVar("_T")

CYCLE_WORKERS = max(2, min(4, os.cpu_count() or 2))
"""Threads of :func:`cycle_executor`: cycles of different portfolios compute in parallel up to this
many steps at once (numpy releases the GIL); a separate pool so that a burst of cycles never queues
the loop's default executor (DNS lookups of the HTTP client, heartbeat, retention)."""

_pool: list[ThreadPoolExecutor] = []  # the one pool, once created
_pool_lock = threading.Lock()


def cycle_executor() -> ThreadPoolExecutor:
    """The process-wide pool the cycle's CPU-heavy and blocking steps run in (created on first use;
    its threads are joined at interpreter exit)."""
    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(CYCLE_WORKERS, thread_name_prefix="crossmargin-cycle"))
        return _pool[0]


def _submit(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> asyncio.Future[_T]:
    """``fn(*args, **kwargs)`` in :func:`cycle_executor`, with the caller's context variables."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return asyncio.get_running_loop().run_in_executor(cycle_executor(), call)


async def _off_loop(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Await ``fn`` in a worker thread. A cancelled caller stops waiting at once; the thread finishes
    on its own and its result is dropped (only for steps with no side effect)."""
    return await _submit(fn, *args, **kwargs)


async def _run_to_completion(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Await ``fn`` in a worker thread to its end even when the caller is cancelled meanwhile (the
    store transaction: it commits or rolls back as a unit); a cancellation that arrived is raised
    once ``fn`` has returned or failed (a failure then only shows as the cancellation's cause)."""
    future = _submit(fn, *args, **kwargs)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError as cancelled:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({future})
        if not future.cancelled() and future.exception() is not None:
            cancelled.__cause__ = future.exception()
        raise


# ---------------------------------------------------------------------------------------------
# the steps that run in a worker thread


def _assess_and_advise(
    book: Portfolio,
    market: MarketState,
    params: RiskParams,
    rng_seed: int | None,
    *,
    advise_moves: bool,
    idle: Sequence[IdleBalance],
) -> tuple[Assessment, str | None]:
    """``risk.engine.assess`` then, when ``advise_moves``, the rebalancing advice folded into the
    assessment (steps 3-4); returns the assessment and the advisor's warning, if any."""
    assessment = assess(book, market, params, rng_seed=rng_seed)
    if not advise_moves:
        return assessment, None
    moves, note = _rebalancing(book, market, params, assessment, rng_seed, idle=idle)
    if moves:
        assessment = replace(assessment, rebalancing=moves)
    return assessment, note


def _decide(
    settings: Settings,
    repository: Repository | None,
    book: Portfolio,
    *,
    assessment: Assessment | None,
    now: datetime,
) -> AlertOutcome:
    """Step 5: the alert decisions against the stored states of ``book.name`` (a database read)."""
    previous = repository.load_alert_states(book.name) if repository is not None else {}
    return decide_alerts(
        settings.alerts,
        portfolio=book.name,
        accounts=book.accounts,
        assessment=assessment,
        previous=previous,
        now=now,
    )


def _store_and_report(
    repository: Repository | None,
    scan: ScanResult,
    book: Portfolio,
    *,
    cycle_id: str,
    started: datetime,
    assessment: Assessment | None,
    inputs: MarketInputs,
    outcome: AlertOutcome | None,
    threshold: float,
    extra: tuple[str, ...],
    idle: Sequence[IdleBalance],
) -> tuple[int | None, ScanReport]:
    """Steps 6-7: the one store transaction (without a repository: none) and the report document."""
    snapshot_id: int | None = None
    if repository is not None:
        status = "partial" if scan.any_unavailable else "ok"
        stored = repository.store_scan(
            ScanInfo(id=cycle_id, started_at=started, finished_at=datetime.now(UTC), status=status),
            book.name,
            book.accounts,
            assessment,
            factor_prices=inputs.prices,
            outbox=outcome.outbox if outcome is not None else (),
            alert_states=outcome.states if outcome is not None else {},
            taken_at=started,
        )
        snapshot_id = stored.snapshot_id
    report = scan_report(
        scan,
        portfolio=book.name,
        assessment=assessment,
        inputs=inputs,
        alerts=outcome,
        critical_chf=threshold,
        snapshot_id=snapshot_id,
        extra_warnings=extra,
        generated_at=started,
        idle_balances=idle,
    )
    return snapshot_id, report


# ---------------------------------------------------------------------------------------------
# the cycle


async def run_cycle(
    settings: Settings,
    *,
    portfolio: str,
    wallets: Sequence[ChecksumAddress],
    only: str | None = None,
    repository: Repository | None = None,
    http: httpx.AsyncClient | None = None,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
    rng_seed: int | None = None,
    registry: Mapping[str, type[VenueAdapter]] = REGISTRY,
    scan_id: str | None = None,
) -> CycleResult:
    """One cycle for one portfolio (see the module docstring: the steps, and which run in a worker
    thread). ``now`` is the cycle time (the market state's ``as_of``, the alert clock); ``scan_id``
    makes a retried store a no-op (default: new)."""
    started = now or datetime.now(UTC)
    cycle_id = scan_id or uuid.uuid4().hex
    scan = await run_scan(settings, wallets, only=only, http=http, progress=progress, registry=registry)
    book = Portfolio(name=portfolio, accounts=tuple(scan.accounts))
    params = settings.risk.to_params()
    engine = repository.engine if repository is not None else None
    inputs = await _off_loop(build_market, book, params, as_of=started, engine=engine)
    market = inputs.estimate.state
    balances, idle_warnings = await _read_idle(settings, scan, http)
    assets = asset_map(settings)
    idle = idle_balances(balances, lambda symbol: _idle_price(assets, inputs, symbol))

    assessment: Assessment | None = None
    extra: list[str] = list(idle_warnings)
    if book.accounts:
        assessment, note = await _off_loop(
            _assess_and_advise, book, market, params, rng_seed, advise_moves=_as_of_accounts(scan), idle=idle
        )
        if note:
            extra.append(note)

    outcome: AlertOutcome | None = None
    if settings.alerts.rules:
        outcome = await _off_loop(_decide, settings, repository, book, assessment=assessment, now=started)

    threshold, _source = critical_chf(settings, portfolio)
    snapshot_id, report = await _run_to_completion(
        _store_and_report, repository, scan, book, cycle_id=cycle_id, started=started,
        assessment=assessment, inputs=inputs, outcome=outcome, threshold=threshold, extra=tuple(extra),
        idle=idle,
    )
    return CycleResult(
        scan=scan,
        portfolio=book,
        market=market,
        assessment=assessment,
        report=report,
        snapshot_id=snapshot_id,
        alerts=outcome,
        inputs=inputs,
        critical_chf=threshold,
        scan_id=cycle_id,
    )
