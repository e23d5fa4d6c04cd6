"""``crossmargin scan WALLET_OR_ENS_OR_PORTFOLIO... [--portfolio NAME] [--only ...] [--json | --csv]
[--no-store] [--seed N] [--config FILE]``.

Runs the whole pipeline (``aggregator.pipeline.run_cycle``) once per portfolio: venues -> risk engine
-> alert decisions -> database (one transaction) -> report; then sends the alerts it decided with
``aggregator.alerts.worker.DeliveryWorker`` (rows it cannot send now stay in the outbox with their
retry time, for ``crossmargin watch``).

Targets (``aggregator.targets.resolve_targets``): addresses and ENS names (``*.eth``, resolved when an
Ethereum RPC is configured) form one portfolio named ``--portfolio`` (default ``default``); any other
argument is a stored portfolio (``crossmargin wallets add``); no argument with ``--portfolio NAME``
scans that stored portfolio.

Storage: by default every cycle is stored in the configured database (``[database] url``, else the
embedded SQLite file, created and upgraded on first use). ``--no-store`` writes nothing and opens no
database unless a stored portfolio must be looked up (then vols and correlations use the defaults,
and alert decisions start from "everything ok" and are shown but neither stored nor sent).

Output: Rich tables (``aggregator.cli.render_scan``), ``--json`` (the versioned document of
``docs/scan-json.md``, one portfolio per call), or ``--csv`` (one row per account,
``aggregator.cli.render_csv``). A progress display goes to stderr while venues are read, only when
stderr is a terminal.

Exit codes (the worst over the portfolios scanned): 0 ok; 2 bad input (an address, ENS name or
portfolio that does not resolve, an unknown ``--only`` item, a config error); 3 some venue read was
unavailable (everything else is still reported); 4 CHF below the critical threshold
(``aggregator.pipeline.critical_chf``: ``[risk] critical_chf``, else the ``critical`` of the ``chf``
alert rule, else 1.0) — 4 wins over 3; 5 the database could not be used.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from adapters.ens import looks_like_ens
from aggregator.alerts.worker import DeliveryWorker
from aggregator.cli.app import ConfigOption, err_console, out_console
from aggregator.cli.render_csv import to_csv
from aggregator.cli.render_scan import render_scan
from aggregator.config import Settings, load_config
from aggregator.db.migrate import open_database
from aggregator.db.repository import Repository
from aggregator.errors import ExitCode, InputError
from aggregator.pipeline import CycleResult, cycle_exit_code, run_cycle
from aggregator.report import ScanReport
from aggregator.scan import select_targets
from aggregator.targets import resolve_targets

__all__ = ["scan"]

_DELIVERY_SECONDS = 30.0


@contextmanager
def _progress(settings: Settings, only: str | None, label: str) -> Iterator[Any]:
    """A transient progress bar on stderr (only on a terminal); yields the pipeline's callback."""
    if not sys.stderr.isatty():
        yield None
        return
    targets, _ = select_targets(settings, only)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"{label}: reading venues", total=max(len(targets), 1))
        running: set[str] = set()

        def callback(deployment: str, event: str) -> None:
            if event == "start":
                running.add(deployment)
            else:
                running.discard(deployment)
                bar.advance(task)
                if event == "failed":
                    err_console.print(f"[red]unavailable:[/] {deployment}", highlight=False)
            shown = ", ".join(sorted(running)[:3]) or "assessing"
            bar.update(task, description=f"{label}: {shown}")

        yield callback


async def _deliver(repository: Repository, settings: Settings) -> int:
    """Send the outbox rows that are due now (``aggregator.alerts.worker.DeliveryWorker.run_once`` until
    nothing is due), for at most ``_DELIVERY_SECONDS``; returns the rows attempted. Rows that fail stay
    in the outbox with their retry time, for ``crossmargin watch``."""
    attempted = 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False) as http:
        worker = DeliveryWorker(repository.engine, settings.alerts, http)
        try:
            async with asyncio.timeout(_DELIVERY_SECONDS):
                while (n := await worker.run_once()) > 0:
                    attempted += n
        except TimeoutError:
            pass
        finally:
            await worker.aclose()
    return attempted


def _needs_database(names: list[str], portfolio: str | None) -> bool:
    stored = [n for n in names if not n.strip().lower().startswith("0x") and not looks_like_ens(n)]
    return bool(stored) or (not names and portfolio is not None)


def scan(  # noqa: PLR0917 (typer: one parameter per option)
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Wallet addresses (0x...), ENS names (*.eth) or stored portfolio names.",
            show_default=False,
        ),
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option(
            "--portfolio",
            "-p",
            help="Portfolio name for the given wallets, or the stored "
            "portfolio to scan when no wallet is given (default for wallets: 'default').",
        ),
    ] = None,
    config: ConfigOption = None,
    only: Annotated[
        str | None,
        typer.Option("--only", help="Restrict to FAMILY[:INSTANCE],... e.g. aave_v3:arbitrum,hyperliquid."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the versioned JSON document.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print one CSV row per account.")] = False,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Store nothing (no snapshot, no alert state, no outbox).")
    ] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Monte Carlo seed (default: risk.mc_seed).")
    ] = None,
) -> None:
    """Scan wallets or portfolios: venues -> risk engine -> alerts -> database -> report.

    Exit codes: 0 ok, 2 bad input, 3 some venue unavailable, 4 CHF below the critical threshold
    (risk.critical_chf, else the chf alert rule's critical, else 1.0), 5 database error.

    Examples:
      crossmargin scan 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
      crossmargin scan vitalik.eth --no-store
      crossmargin scan 0xabc... 0xdef... --portfolio fund --only aave_v3:arbitrum,hyperliquid --json
      crossmargin scan --portfolio fund --csv > fund.csv
      crossmargin scan fund treasury
    """
    if as_json and as_csv:
        raise InputError("--json and --csv cannot be combined")
    names = list(targets or [])
    settings = load_config(config).settings
    engine = None
    if not no_store or _needs_database(names, portfolio):
        engine = open_database(settings)
    repository = Repository(engine) if engine is not None else None
    groups = resolve_targets(settings, repository, names, portfolio=portfolio)
    if as_json and len(groups) > 1:
        raise InputError(
            f"--json prints one document: scan one portfolio at a time "
            f"(got {', '.join(g[0] for g in groups)})"
        )
    store = None if no_store else repository
    results: list[CycleResult] = []
    for name, wallets in groups:
        with _progress(settings, only, name) as callback:
            result = asyncio.run(
                run_cycle(
                    settings,
                    portfolio=name,
                    wallets=wallets,
                    only=only,
                    repository=store,
                    progress=callback,
                    rng_seed=seed,
                )
            )
        results.append(result)
        if store is not None and result.alerts is not None and result.alerts.outbox:
            asyncio.run(_deliver(store, settings))
    reports: list[ScanReport] = [r.report for r in results]
    if as_json:
        sys.stdout.write(reports[0].to_json() + "\n")
        sys.stdout.flush()
    elif as_csv:
        sys.stdout.write(to_csv(reports))
        sys.stdout.flush()
    else:
        for report in reports:
            render_scan(report, out_console, horizon_hours=settings.risk.horizon_hours)
    code = max((cycle_exit_code(r) for r in results), key=_severity, default=ExitCode.OK)
    if code is not ExitCode.OK:
        raise typer.Exit(int(code))


def _severity(code: ExitCode) -> int:
    return {ExitCode.OK: 0, ExitCode.VENUE_UNAVAILABLE: 1, ExitCode.CHF_CRITICAL: 2}.get(code, 3)
