"""The watch service's parts that need no chain: [watch] config, structured logs and their redaction,
the per-portfolio runner (one cycle in flight, debounce, coalescing, clean stop), the block watcher's
fallback to polling on an HTTP-only endpoint, the webhook receiver's own signature check against
the project's signer, and the cycle's engine and store steps off the event loop (the loop keeps
serving while a store waits on a locked SQLite database; cancellation mid-store and mid-engine; same
seed, same figures)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.addresses import ChecksumAddress
from adapters.base import BlockRef
from adapters.specs import ChainSpec
from aggregator import pipeline
from aggregator.alerts.signing import SignatureError, generate_secret, signature_headers, verify
from aggregator.config import Settings, load_config
from aggregator.db.migrate import open_database
from aggregator.db.models import AccountSnapshot, Snapshot
from aggregator.db.repository import Repository
from aggregator.devnet.webhook_receiver import WebhookReceiver, verify_standard_webhook
from aggregator.errors import ConfigError
from aggregator.pipeline import CycleResult, run_cycle
from aggregator.service.blocks import BlockWatcher, NewBlock, ws_url_for
from aggregator.service.logs import configure_logging, log_event
from aggregator.service.runner import CycleDone, PortfolioRunner, WatchTarget
from aggregator.service.settings import WatchSettings
from aggregator.service.watch import WatchService
from risk.assessment import Assessment
from risk.engine import assess
from risk.model import (
    AsOf,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    MarginModel,
    Position,
    PositionKind,
)
from tests.support.cli import FakeHttpAdapter, register
from tests.support.local_server import serve

# ----------------------------------------------------------------------------------------------
# [watch]


def test_watch_section_parses_durations_and_per_portfolio_overrides(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[watch]\ninterval = "2m"\nblock_driven = true\nmisfire_grace = 45\n'
        '[watch.portfolios.fund]\ninterval = "15s"\nblock_driven = false\nonly = "aave_v3"\n'
        '[watch.chains.devnet]\nws_url = "ws://127.0.0.1:1/"\n'
    )
    watch = load_config(path, environ={"HOME": str(tmp_path)}).settings.watch
    assert watch.interval == 120.0
    assert watch.misfire_grace == 45.0
    assert watch.for_portfolio("fund") == (15.0, False, "aave_v3", True)
    assert watch.for_portfolio("other") == (120.0, True, None, True)
    env = load_config(path, environ={"HOME": str(tmp_path), "CROSSMARGIN__WATCH__INTERVAL": "1h"})
    assert env.settings.watch.interval == 3600.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[watch]\nintervall = "1m"\n', "did you mean 'interval'"),
        ('[watch]\ninterval = "soon"\n', "watch.interval"),
        ("[watch]\ninterval = 0\n", "watch.interval"),
        ('[watch]\nblock_source = "carrier-pigeon"\n', "watch.block_source"),
    ],
)
def test_watch_section_rejects_bad_values(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_config(path, environ={"HOME": str(tmp_path)})


def test_ws_url_comes_from_config_then_rpc_urls_then_the_http_url() -> None:
    spec = ChainSpec(chain_id=1, rpc_urls=("https://rpc.example/v2/KEY",))
    assert ws_url_for("c", spec, WatchSettings()) == "wss://rpc.example/v2/KEY"
    assert ws_url_for("c", spec, WatchSettings(block_source="poll")) is None
    both = ChainSpec(chain_id=1, rpc_urls=("http://a:1", "wss://b/ws"))
    assert ws_url_for("c", both, WatchSettings()) == "wss://b/ws"
    own = WatchSettings.model_validate({"chains": {"c": {"ws_url": "ws://own"}}})
    assert ws_url_for("c", both, own) == "ws://own"


# ----------------------------------------------------------------------------------------------
# logs

CANARY_TOKEN = "bot123456789:AAH-canary-token-do-not-log-xxxxxxxxx"
CANARY_RPC = "https://eth.example/v2/canaryKey0123456789abcdef"


@pytest.fixture
def captured() -> Any:
    stream = io.StringIO()
    handlers: list[logging.Handler] = []

    def make(fmt: str) -> io.StringIO:
        handlers.append(configure_logging(fmt, secrets=(CANARY_RPC,), stream=stream))  # type: ignore[arg-type]
        return stream

    yield make
    for handler in handlers:
        for name in ("crossmargin", "apscheduler", "aggregator", "adapters"):
            logging.getLogger(name).removeHandler(handler)


def test_json_logs_are_one_object_per_line_with_secrets_redacted(captured: Any) -> None:
    stream = captured("json")
    logger = logging.getLogger("crossmargin.test")
    log_event(logger, logging.INFO, "cycle.done", f"sent via {CANARY_TOKEN}", portfolio="p", rpc=CANARY_RPC,
              nested={"url": CANARY_RPC, "n": [1, 2]})
    logger.warning("plain %s", CANARY_RPC)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "cycle.done" and first["level"] == "info" and first["portfolio"] == "p"
    assert first["nested"]["n"] == [1, 2]
    assert datetime.fromisoformat(first["ts"]).tzinfo is not None
    assert second["event"] == "log" and second["level"] == "warning"
    text = stream.getvalue()
    assert "canary" not in text.lower()


def test_human_logs_carry_the_event_and_fields(captured: Any) -> None:
    stream = captured("human")
    log_event(logging.getLogger("crossmargin.test"), logging.INFO, "cycle.start", "go", portfolio="p",
              secret_url=CANARY_RPC)
    line = stream.getvalue().strip()
    assert "cycle.start" in line and "portfolio=p" in line and "canary" not in line.lower()


# ----------------------------------------------------------------------------------------------
# runner


class FakeCycles:
    """Records cycle starts; each cycle lasts ``duration`` seconds (or until released)."""

    def __init__(self, duration: float = 0.05, chains: frozenset[str] = frozenset({"devnet"})) -> None:
        self.duration = duration
        self.chains = chains
        self.reasons: list[str] = []
        self.running = 0
        self.max_running = 0
        self.completed = 0

    async def __call__(self, target: WatchTarget, reason: str) -> CycleDone:
        self.reasons.append(reason)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.duration)
        finally:
            self.running -= 1
        self.completed += 1
        return CycleDone(completed_at=datetime.now(UTC), chains=self.chains)


def _runner(cycles: FakeCycles, debounce: float = 0.05) -> PortfolioRunner:
    target = WatchTarget("p", (), interval=60, block_driven=True)
    return PortfolioRunner(target, cycles, debounce=debounce)


def _block(n: int, chain: str = "devnet") -> NewBlock:
    return NewBlock(chain, n, time.monotonic(), "ws")


async def test_blocks_within_the_debounce_window_share_one_rescan() -> None:
    cycles = FakeCycles()
    runner = _runner(cycles)
    await runner.scheduled()  # the first cycle learns the chains
    for n in range(5):
        runner.on_block(_block(n))
    await asyncio.sleep(0.3)
    assert cycles.reasons == ["interval", "block devnet:4"]


async def test_blocks_during_a_cycle_give_exactly_one_follow_up_and_never_two_in_flight() -> None:
    cycles = FakeCycles(duration=0.2)
    runner = _runner(cycles, debounce=0.0)
    await runner.scheduled()
    runner.on_block(_block(1))
    await asyncio.sleep(0.05)  # the block's cycle is in flight now
    for n in range(2, 8):
        runner.on_block(_block(n))
    await runner.scheduled()  # an interval tick while in flight is skipped, not queued
    await asyncio.sleep(0.7)
    assert cycles.reasons == ["interval", "block devnet:1", "block devnet:7"]
    assert cycles.max_running == 1


async def test_blocks_of_other_chains_or_before_the_first_cycle_are_ignored() -> None:
    cycles = FakeCycles()
    runner = _runner(cycles, debounce=0.0)
    runner.on_block(_block(1))  # no cycle yet: positions unknown
    await asyncio.sleep(0.05)
    await runner.scheduled()
    runner.on_block(_block(2, chain="arbitrum"))
    await asyncio.sleep(0.1)
    assert cycles.reasons == ["interval"]


async def test_stop_lets_a_short_cycle_finish_and_cancels_a_hung_one() -> None:
    quick = FakeCycles(duration=0.1)
    runner = _runner(quick)
    task = asyncio.create_task(runner.scheduled())
    await asyncio.sleep(0.02)
    assert await runner.stop(grace=2.0) is False
    await task
    assert quick.completed == 1

    hung = FakeCycles(duration=30)
    runner = _runner(hung)
    task = asyncio.create_task(runner.scheduled())
    await asyncio.sleep(0.02)
    started = time.monotonic()
    assert await runner.stop(grace=0.2) is True
    assert time.monotonic() - started < 2
    assert hung.completed == 0 and hung.running == 0
    runner.on_block(_block(9))  # stopped: nothing starts any more
    await runner.scheduled()
    assert hung.reasons == ["interval"]
    task.cancel()


# ----------------------------------------------------------------------------------------------
# block watcher: an endpoint without WebSocket falls back to polling


def _rpc_app(head: list[int]) -> Starlette:
    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body["id"], "result": hex(head[0])})

    return Starlette(routes=[Route("/", rpc, methods=["POST"])])


async def test_block_watcher_polls_when_the_endpoint_has_no_websocket() -> None:
    head = [100]
    seen: list[NewBlock] = []
    with serve(_rpc_app(head)) as url:
        spec = ChainSpec(chain_id=1, rpc_urls=(url + "/",), block_time_seconds=1)
        async with httpx.AsyncClient() as http:
            watcher = BlockWatcher("c", spec, WatchSettings(block_poll_interval=0.05), http, seen.append)
            task = asyncio.create_task(watcher.run())
            for _ in range(250):
                if watcher.mode == "poll":
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            head[0] = 103  # three blocks at once: one notification for the newest
            await asyncio.sleep(0.3)
            head[0] = 104
            await asyncio.sleep(0.3)
            task.cancel()
    assert watcher.mode == "poll"
    assert [(b.number, b.source) for b in seen] == [(103, "poll"), (104, "poll")]


# ----------------------------------------------------------------------------------------------
# webhook receiver: its own verification agrees with the project's signer


def test_receiver_accepts_signed_posts_and_rejects_forgeries() -> None:
    secret, other = generate_secret(), generate_secret()
    with WebhookReceiver(secret) as receiver:
        body = json.dumps({"title": "CHF 1.05"}).encode()
        now = int(time.time())

        def post(headers: dict[str, str], content: bytes = body) -> int:
            return httpx.post(receiver.url, content=content, headers=headers, timeout=5).status_code

        good = signature_headers([secret], "msg_1", now, body)
        assert post(good) == 200
        assert post(good) == 200  # a resend: recorded as a duplicate
        assert post(good, body + b" ") == 401  # tampered body
        assert post(signature_headers([other], "msg_2", now, body)) == 401  # wrong secret
        assert post(signature_headers([secret], "msg_3", now - 3600, body)) == 401  # replay
        assert post(signature_headers([other, secret], "msg_4", now, body)) == 200  # rotation
        assert post({"content-type": "application/json"}) == 401  # unsigned
        received = receiver.received()
    assert [r.webhook_id for r in receiver.valid()] == ["msg_1", "msg_4"]
    assert [r.duplicate for r in received[:2]] == [False, True]
    assert sum(not r.valid for r in received) == 4
    assert receiver.valid()[0].body == {"title": "CHF 1.05"}


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=200),
    message_id=st.text(alphabet="abcdefghij_0123456789", min_size=1, max_size=20),
    skew=st.integers(min_value=-400, max_value=400),
    flip=st.integers(min_value=-1, max_value=199),
)
def test_receiver_verification_agrees_with_the_signer(body: bytes, message_id: str, skew: int, flip: int) -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes of base64
    now = 1_800_000_000
    headers = signature_headers([secret], message_id, now + skew, body)
    sent = body
    if 0 <= flip < len(body):
        sent = body[:flip] + bytes([body[flip] ^ 1]) + body[flip + 1:]
    ours = verify_standard_webhook(secret, headers, sent, now=now) is None
    try:
        verify(secret, headers, sent, now=now)
        theirs = True
    except SignatureError:
        theirs = False
    assert ours == theirs
    assert ours == (abs(skew) <= 300 and sent == body)


# ----------------------------------------------------------------------------------------------
# the cycle's engine and store steps run off the event loop
#
# One test-double lending venue (``derive`` family, nothing leaves the machine): 10 WETH at 3,000 with
# LT 0.825 against 23,500 USDC, so h = 8.25 P / 23,500 = 1.0532 at 3,000 (near enough to 1 for a
# non-zero 24 h p_liq). The database is a real SQLite file; a second connection in its own thread holds
# SQLite's write lock (``BEGIN IMMEDIATE``) for a fixed time, so the cycle's store transaction waits
# for it (busy_timeout 5 s) deterministically.

WALLET = ChecksumAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
DEBT = 23_500
LT = LendingParams(ltv=Decimal("0.8"), liquidation_threshold=Decimal("0.825"), liquidation_bonus=Decimal("0.05"))
HOLD_S = 1.5


class Lender(FakeHttpAdapter):
    family = "derive"
    margin_model: ClassVar[MarginModel] = LendingModel()

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        positions = (
            Position(token="WETH", factor=FactorId("ETH"), kind=PositionKind.COLLATERAL, quantity=Decimal(10),
                     price=Decimal(3000), lending=LT),
            Position(token="USDC", factor=FactorId("USD"), kind=PositionKind.DEBT, quantity=Decimal(-DEBT),
                     price=Decimal(1)),
        )
        return [MarginAccount(venue=self.family, deployment=self.deployment, account_id="lend", wallet=w,
                              margin_model=self.margin_model, positions=positions,
                              as_of=AsOf(timestamp=datetime.now(UTC)))
                for w in wallets if w == WALLET]


@pytest.fixture
def book_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    register(monkeypatch, Lender)
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "watch.db"}"\n[risk]\nmc_paths = 4000\n')
    return load_config(path, environ={"HOME": str(tmp_path)}).settings


class WriteLock:
    """SQLite's write lock on ``path``, held by another connection in its own thread for ``seconds``
    (released by that thread's clock, never by the event loop under test)."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path, self.seconds = path, seconds
        self.locked = threading.Event()
        self.released_at = math.inf
        self._thread = threading.Thread(target=self._hold, name="write-lock", daemon=True)

    def _hold(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("BEGIN IMMEDIATE")
            self.locked.set()
            time.sleep(self.seconds)
            self.released_at = time.monotonic()
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    def __enter__(self) -> WriteLock:
        self._thread.start()
        assert self.locked.wait(10), "could not take the write lock"
        return self

    def __exit__(self, *_: object) -> None:
        self._thread.join(self.seconds + 10)


async def _tick(ticks: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        ticks.append(time.monotonic())
        await asyncio.sleep(0.02)


def _longest_gap(ticks: Sequence[float], start: float, end: float) -> float:
    """The longest time in [start, end] without a tick."""
    inside = [start, *(t for t in ticks if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


def _stored(engine: Engine) -> tuple[int, list[float]]:
    with engine.connect() as conn:
        snapshots = conn.execute(sa.select(sa.func.count()).select_from(Snapshot)).scalar_one()
        healths = [float(h) for h in conn.execute(sa.select(AccountSnapshot.health)).scalars() if h is not None]
    return snapshots, healths


async def test_the_loop_keeps_serving_while_a_cycle_waits_on_a_locked_database(
    book_settings: Settings, tmp_path: Path
) -> None:
    """A watch cycle whose store waits 1.5 s for SQLite's write lock: meanwhile an asyncio ticker (every
    20 ms) and a block watcher polling a local RPC server (every 50 ms, a new head per poll) keep
    running. Before the steps moved off the loop, the loop froze for the whole wait."""
    engine = open_database(book_settings)
    head = [100]

    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        head[0] += 1
        return JSONResponse({"jsonrpc": "2.0", "id": body["id"], "result": hex(head[0])})

    cycle_started: list[float] = []

    async def cycle(
        settings: Settings, *, portfolio: str, wallets: Sequence[ChecksumAddress], only: str | None = None,
        repository: Repository | None = None, http: httpx.AsyncClient | None = None,
    ) -> CycleResult:
        cycle_started.append(time.monotonic())
        return await run_cycle(settings, portfolio=portfolio, wallets=wallets, only=only,
                               repository=repository, http=http, rng_seed=7)

    done: asyncio.Queue[tuple[float, CycleResult | Exception]] = asyncio.Queue()
    target = WatchTarget("book", (WALLET,), interval=3600, only="derive")
    service = WatchService(book_settings, engine, [target], cycle_fn=cycle,
                           on_cycle=lambda _t, r: done.put_nowait((time.monotonic(), r)),
                           on_failure=lambda _t, e: done.put_nowait((time.monotonic(), e)))
    ticks: list[float] = []
    blocks: list[NewBlock] = []
    stop, ticker_stop = asyncio.Event(), asyncio.Event()
    with serve(Starlette(routes=[Route("/", rpc, methods=["POST"])])) as url:
        spec = ChainSpec(chain_id=1, rpc_urls=(url + "/",), block_time_seconds=1)
        async with httpx.AsyncClient() as http:
            watcher = BlockWatcher("c", spec, WatchSettings(block_source="poll", block_poll_interval=0.05),
                                   http, blocks.append)
            watcher_task = asyncio.create_task(watcher.run())
            ticker = asyncio.create_task(_tick(ticks, ticker_stop))
            try:
                with WriteLock(tmp_path / "watch.db", HOLD_S) as lock:
                    service_task = asyncio.create_task(service.run(stop))
                    finished_at, result = await asyncio.wait_for(done.get(), 60)
                stop.set()
                await service_task
            finally:
                ticker_stop.set()
                watcher_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher_task
                await ticker
                engine.dispose()
    assert not isinstance(result, Exception), result
    start = cycle_started[0]
    assert finished_at >= lock.released_at > start  # the store really waited for the lock
    gap = _longest_gap(ticks, start, finished_at)
    assert gap < 0.5, f"the event loop was frozen for {gap:.2f} s during the cycle"
    during = [b for b in blocks if start < b.seen_at < lock.released_at]
    assert len(during) >= 3, f"only {len(during)} new block(s) seen while the store waited"
    # and the cycle is whole: stored once, with the closed-form health
    snapshots, healths = _stored(engine)
    assert snapshots == 1 and result.snapshot_id is not None
    assert healths == pytest.approx([8.25 * 3000 / DEBT], rel=1e-9)


async def test_a_cycle_cancelled_inside_its_store_waits_for_the_transaction_then_cancels(
    book_settings: Settings, tmp_path: Path
) -> None:
    """Cancelling the cycle's task while its store waits for the write lock: the transaction still runs
    to its end (a thread cannot be interrupted), the task raises CancelledError only after it, and the
    snapshot is stored whole, exactly once."""
    engine = open_database(book_settings)
    entered = threading.Event()

    class Probed(Repository):
        def store_scan(self, *args: Any, **kwargs: Any) -> Any:
            entered.set()
            return super().store_scan(*args, **kwargs)

    try:
        with WriteLock(tmp_path / "watch.db", HOLD_S) as lock:
            task = asyncio.create_task(run_cycle(book_settings, portfolio="book", wallets=[WALLET],
                                                 only="derive", repository=Probed(engine), rng_seed=7))
            assert await asyncio.to_thread(entered.wait, 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            ended = time.monotonic()
        assert ended >= lock.released_at  # it waited for the store instead of leaving it half done
        snapshots, healths = _stored(engine)
    finally:
        engine.dispose()
    assert snapshots == 1 and healths == pytest.approx([8.25 * 3000 / DEBT], rel=1e-9)


async def test_a_cycle_cancelled_inside_the_engine_stores_nothing(
    book_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling while the engine computes (in its worker thread): the task ends at once, the
    computation's result is dropped, and nothing is stored."""
    engine = open_database(book_settings)
    entered, finished = threading.Event(), threading.Event()
    real = pipeline.assess

    def probed(*args: Any, **kwargs: Any) -> Assessment:
        entered.set()
        try:
            time.sleep(1.0)  # a slower engine: the cancellation lands while it runs
            return real(*args, **kwargs)
        finally:
            finished.set()

    monkeypatch.setattr(pipeline, "assess", probed)
    try:
        task = asyncio.create_task(run_cycle(book_settings, portfolio="book", wallets=[WALLET], only="derive",
                                             repository=Repository(engine), rng_seed=7))
        assert await asyncio.to_thread(entered.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not finished.is_set()  # the task did not wait for the engine
        assert await asyncio.to_thread(finished.wait, 30)
        await asyncio.sleep(0.2)
        assert _stored(engine) == (0, [])
    finally:
        engine.dispose()


async def test_same_seed_same_figures_off_the_loop(book_settings: Settings) -> None:
    """Two cycles with one seed give the same p_liq, and the same as ``risk.engine.assess`` called
    directly on this thread with the cycle's own inputs (the worker thread changes nothing)."""
    first = await run_cycle(book_settings, portfolio="book", wallets=[WALLET], only="derive", rng_seed=11)
    second = await run_cycle(book_settings, portfolio="book", wallets=[WALLET], only="derive", rng_seed=11)
    assert first.assessment is not None and second.assessment is not None
    direct = assess(first.portfolio, first.market, book_settings.risk.to_params(), rng_seed=11)
    p_liq = first.assessment.p_liq
    assert p_liq is not None and 0 < p_liq < 1
    assert second.assessment.p_liq == p_liq == direct.p_liq
    assert first.assessment.chf == pytest.approx(8.25 * 3000 / DEBT, rel=1e-9)
