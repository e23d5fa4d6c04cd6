"""``crossmargin demo``: the whole product offline, on the devnet, in one process.

1. a temporary directory holds everything: the SQLite database, the user config, the secrets file;
2. the devnet starts (``network.start_devnet``: anvil, Aave V3, Morpho, the Comet stand-in, the venue
   API server) and a local signed-webhook receiver (``webhook_receiver``) on 127.0.0.1;
3. the config is written the way a user writes theirs and loaded by ``aggregator.config.load_config``:
   the devnet's chain, deployments and venues (``user_config.render_user_config``), a ``webhook``
   channel to the receiver with ``allow_private = true`` (the SSRF guard refuses 127.0.0.1 otherwise),
   its URL and ``whsec_`` signing secret in the secrets file, and the rules of :data:`RULES`;
4. the demo wallets ``hedged`` and ``fund`` (``book.py``) are stored as the portfolio ``demo-book``;
5. the watch service (``aggregator.service.watch``) runs in-process with the delivery worker; its
   scheduler runs the first cycle, whose report is printed;
6. ETH moves down (:data:`DOWN`) until the Aave leg of the hedged book (10 WETH vs 15,000 USDC:
   HF = 10·P·0.825 / 15,000) is at risk, back, then up (:data:`UP`) until its Hyperliquid leg (short
   10 ETH with 6,000 USDC: HF = (36,000 − 10·P) / (0.02·10·P)) is; each move goes everywhere at once
   (``Devnet.set_price``: Aave price sources, Morpho/Comet oracles, venue marks), then one cycle runs
   through the scheduler's job function; the alerts the worker delivers are shown as the receiver got
   them, each signature verified by the receiver on its own;
7. everything it started stops (also on Ctrl-C): service, worker, receiver, venue server, anvil; the
   temporary directory is removed unless ``workdir`` was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adapters.addresses import parse_address
from aggregator.alerts.signing import generate_secret
from aggregator.config import Settings, load_config
from aggregator.db import Repository, open_database
from aggregator.devnet.network import Devnet, start_devnet
from aggregator.devnet.user_config import render_secrets, render_user_config
from aggregator.devnet.webhook_receiver import ReceivedWebhook, WebhookReceiver
from aggregator.errors import CrossmarginError
from aggregator.service.runner import WatchTarget
from aggregator.service.signals import stop_on_signals
from aggregator.service.watch import WatchService

if TYPE_CHECKING:
    from aggregator.pipeline import CycleResult

__all__ = ["DOWN", "PORTFOLIO", "RULES", "UP", "DemoFailed", "DemoOutcome", "demo_config", "run_demo"]

PORTFOLIO = "demo-book"
WALLETS = ("hedged", "fund")
DOWN: tuple[Decimal, ...] = (Decimal(2600), Decimal(2200), Decimal(1950))
UP: tuple[Decimal, ...] = (Decimal(3000), Decimal(3400), Decimal(3515), Decimal(3525))
CHANNEL = "demo-webhook"
DELIVERY_WAIT_S = 15.0

RULES = """
[[alerts.rules]]
name = "hedge-leg-health"          # each leg of the hedged book on its own
metric = "account_health"
wallet = "{hedged}"
warning = 1.3
critical = 1.1
channels = ["{channel}"]

[[alerts.rules]]
name = "composite-health"          # the first liquidation anywhere in the book
metric = "chf"
warning = 1.1
critical = 1.0
channels = ["{channel}"]
"""


class DemoFailed(CrossmarginError):
    """A demo cycle failed (the message says why); everything started is stopped."""


@dataclass
class DemoOutcome:
    cycles: int
    delivered: list[ReceivedWebhook]
    rejected: int  # requests whose signature did not verify (should be 0)
    seconds: float


def _only(config_text: str) -> str:
    """``--only`` for every deployment and venue the devnet config defines (never the shipped mainnet
    ones: the demo is offline)."""
    data = tomllib.loads(config_text)
    parts = [f"{family}:{instance}" for family, instances in data.get("deployments", {}).items()
             for instance in instances]
    parts += sorted(data.get("venues", {}))
    return ",".join(parts)


def demo_config(net: Devnet, workdir: Path, receiver_url: str, secret: str) -> tuple[Path, Path, str]:
    """Write config.toml and secrets.toml for the demo; returns (config, secrets, only)."""
    base = render_user_config(net.state)
    hedged = net.wallets["hedged"]
    config = "\n".join([
        base,
        "[database]",
        f'url = "sqlite:///{workdir / "crossmargin.db"}"',
        "",
        f"[alerts.channels.{CHANNEL}]",
        'type = "webhook"',
        "allow_private = true               # the receiver is on 127.0.0.1",
        RULES.format(hedged=hedged, channel=CHANNEL),
        "[watch]",
        'interval = "1h"                    # the demo triggers each cycle itself after a price move',
        'heartbeat_interval = "1h"',
        "retention = false",
        'delivery_poll_interval = "0.2s"',
        "",
    ])
    secrets = "\n".join([
        render_secrets(net.state),  # the devnet's throwaway Aevo / Deribit credentials
        f"[alerts.channels.{CHANNEL}]",
        f'webhook_url = "{receiver_url}"',
        f'signing_secret = "{secret}"',
        "",
    ])
    config_path, secrets_path = workdir / "config.toml", workdir / "secrets.toml"
    config_path.write_text(config)
    secrets_path.write_text(secrets)
    secrets_path.chmod(0o600)
    return config_path, secrets_path, _only(base)


def _health(value: float | None) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "∞"
    style = "red" if value < 1.1 else ("yellow" if value < 1.3 else "green")
    return f"[{style}]{value:.3f}[/]"


def _accounts_table(result: CycleResult, title: str, names: dict[str, str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("wallet", "account", "health", "venue health"):
        table.add_column(column)
    assessed = {} if result.assessment is None else {a.account_key: a for a in result.assessment.accounts}
    for account in result.scan.accounts:
        if not account.positions:
            continue
        figures = assessed.get(account.key)
        venue = "-" if account.venue_health is None else f"{account.venue_health:.3f}"
        table.add_row(names.get(account.wallet, account.wallet[:10]), escape(account.key[:60]),
                      _health(None if figures is None else figures.health), venue)
    return table


def _print_report(console: Console, result: CycleResult) -> None:
    """The pipeline's Rich report when the CLI provides one (``aggregator.cli.render``), else nothing
    more than the accounts table printed by the caller."""
    try:
        import importlib

        render = importlib.import_module("aggregator.cli.render")
    except ImportError:
        return
    printer: Callable[..., Any] | None = getattr(render, "print_report", None)
    if printer is not None:
        printer(result.report, console=console)


def _summary(result: CycleResult) -> str:
    assessment = result.assessment
    if assessment is None:
        return "no accounts"
    return f"CHF {_health(assessment.chf)} set by {escape(str(assessment.chf_account))}"


def _show_alerts(console: Console, alerts: Sequence[ReceivedWebhook]) -> None:
    for alert in alerts:
        body = alert.body if isinstance(alert.body, dict) else {}
        title = body.get("title") or body.get("message") or str(body)[:160]
        console.print(f"  [bold magenta]webhook[/] {escape(str(alert.webhook_id))}  signature verified ✓  "
                      f"{escape(str(title))}")


class _Demo:
    def __init__(self, console: Console, net: Devnet, receiver: WebhookReceiver, settings: Settings,
                 only: str) -> None:
        self.console = console
        self.net = net
        self.receiver = receiver
        self.settings = settings
        self.only = only
        self.names: dict[str, str] = {str(address): name for name, address in net.wallets.items()}
        self.cycles: asyncio.Queue[CycleResult | Exception] = asyncio.Queue()
        self.seen = 0

    def on_cycle(self, _target: WatchTarget, result: CycleResult) -> None:
        self.cycles.put_nowait(result)

    def on_failure(self, _target: WatchTarget, error: Exception) -> None:
        self.cycles.put_nowait(error)

    async def next_cycle(self, limit_s: float) -> CycleResult:
        got = await asyncio.wait_for(self.cycles.get(), limit_s)
        if isinstance(got, Exception):
            raise DemoFailed(f"a cycle failed: {got}") from got
        return got

    async def deliveries(self, result: CycleResult) -> list[ReceivedWebhook]:
        expected = self.seen + (0 if result.alerts is None else len(result.alerts.outbox))
        got = await asyncio.to_thread(self.receiver.wait_for, expected, DELIVERY_WAIT_S)
        new, self.seen = got[self.seen:], len(got)
        return new

    async def step(self, service: WatchService, price: Decimal, why: str) -> CycleResult:
        moved = await asyncio.to_thread(self.net.set_price, "ETH", price)
        self.console.print(f"\n[bold]ETH → {price:,} USD[/] ({why}; moved {len(moved)} price sources)")
        await service.trigger(PORTFOLIO)
        result = await self.next_cycle(120)
        self.console.print(_accounts_table(result, _summary(result), self.names))
        _show_alerts(self.console, await self.deliveries(result))
        return result

    async def flow(self, service: WatchService) -> int:
        first = await self.next_cycle(180)
        self.console.print("\n[bold]First cycle (run by the scheduler) at the seeded prices[/]")
        _print_report(self.console, first)
        self.console.print(_accounts_table(first, _summary(first), self.names))
        _show_alerts(self.console, await self.deliveries(first))
        count = 1
        for price in DOWN:
            await self.step(service, price, "down until the Aave leg of the hedged book is at risk")
            count += 1
        for price in UP:
            await self.step(service, price, "up until the Hyperliquid leg is at risk")
            count += 1
        return count


async def _run(demo: _Demo, service: WatchService) -> int:
    stop, interrupted = asyncio.Event(), asyncio.Event()
    with stop_on_signals(interrupted):
        service_task = asyncio.create_task(service.run(stop), name="watch")
        flow = asyncio.create_task(demo.flow(service), name="demo")
        waiter = asyncio.create_task(interrupted.wait())
        try:
            await asyncio.wait({flow, waiter, service_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not flow.done():
                flow.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flow
            stop.set()
            await service_task
        if interrupted.is_set() and flow.cancelled():
            demo.console.print("\n[yellow]interrupted: stopping everything the demo started[/]")
            raise KeyboardInterrupt
        return flow.result()


def run_demo(console: Console, *, workdir: Path | None = None) -> DemoOutcome:
    """Run the demo (see the module docstring); everything started is stopped before returning."""
    started = time.monotonic()
    own_dir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="crossmargin-demo-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    secret = generate_secret()
    net: Devnet | None = None
    receiver = WebhookReceiver(secret)
    try:
        console.print("[bold]Starting the devnet[/] (anvil with Aave V3, Morpho Blue, Comet and GMX v2 "
                      "stand-ins; local Hyperliquid / dYdX / Derive / Aevo / Deribit APIs)…")
        net = start_devnet(log_dir=root / "logs")
        receiver.start()
        console.print(f"devnet RPC {net.rpc_url}, venue APIs {net.api_url or '-'}, "
                      f"webhook receiver {receiver.url}")
        config_path, secrets_path, only = demo_config(net, root, receiver.url, secret)
        environ = {"HOME": str(root), "CROSSMARGIN_SECRETS_FILE": str(secrets_path)}
        settings = load_config(config_path, environ=environ).settings
        engine = open_database(settings)
        try:
            repository = Repository(engine)
            wallets = tuple(parse_address(net.wallets[name]) for name in WALLETS)
            for name, address in zip(WALLETS, wallets, strict=True):
                repository.add_wallet(PORTFOLIO, address, label=name)
            console.print(f"portfolio [bold]{PORTFOLIO}[/]: {', '.join(WALLETS)} "
                          f"(database {escape(str(root / 'crossmargin.db'))})")
            target = WatchTarget(PORTFOLIO, wallets, interval=settings.watch.interval, only=only)
            demo = _Demo(console, net, receiver, settings, only)
            service = WatchService(settings, engine, [target], on_cycle=demo.on_cycle,
                                   on_failure=demo.on_failure)
            cycles = asyncio.run(_run(demo, service))
        finally:
            engine.dispose()
        delivered = receiver.valid()
        rejected = sum(1 for r in receiver.received() if not r.valid)
        console.print(f"\n[bold green]Demo done[/]: {cycles} cycles, {len(delivered)} alerts delivered "
                      f"and verified, {rejected} rejected, {time.monotonic() - started:.0f} s.")
        return DemoOutcome(cycles=cycles, delivered=delivered, rejected=rejected,
                           seconds=time.monotonic() - started)
    finally:
        receiver.stop()
        if net is not None:
            net.stop()
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)
