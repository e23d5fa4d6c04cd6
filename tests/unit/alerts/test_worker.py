"""The delivery worker against local servers that behave like Telegram, Slack, Discord and a signed
webhook receiver: retried or not per channel, 429 waits honoured, dead letters by age, every attempt
recorded, signatures valid for an independent verifier, the webhook-id stable across retries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from aggregator.alerts.decide import AlertOutcome, decide_alerts
from aggregator.alerts.rules import AlertsSettings
from aggregator.alerts.worker import DeliveryWorker, backoff_delay
from aggregator.db import Repository, create_engine, upgrade
from aggregator.db import outbox_store as ob
from tests.unit.alerts.builders import T0, account, assessment
from tests.unit.alerts.fake_apis import (
    FakeApis,
    channels_config,
    discord,
    fake_apis,
    slack,
    telegram_error,
    telegram_ok,
)

CHANNELS = ("tg", "slack", "discord", "hook")
RNG = random.Random(1)  # one stream across the workers of a test (a fresh seed per pass would repeat draws)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    with fake_apis() as a:
        yield a


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(sa.make_url(f"sqlite:///{tmp_path / 'alerts.db'}"))
    upgrade(eng)
    yield eng
    eng.dispose()


def alerts_for(apis: FakeApis, channels: tuple[str, ...], **delivery: Any) -> AlertsSettings:
    return AlertsSettings.model_validate(
        {
            "channels": channels_config(apis.url),
            "rules": [
                {"name": "health", "metric": "account_health", "warning": 1.5, "channels": list(channels)}
            ],
            "delivery": {"base_delay": "1s", "max_delay": "60s", **delivery},
        }
    )


def decide(alerts: AlertsSettings, wallets: int = 1) -> AlertOutcome:
    accounts = [account("0x" + f"{i + 1:040x}") for i in range(wallets)]
    return decide_alerts(
        alerts,
        portfolio="fund",
        accounts=accounts,
        assessment=assessment(accounts, [1.1] * wallets),
        previous={},
        now=T0,
    )


def enqueue(engine: Engine, alerts: AlertsSettings, clock: Clock, wallets: int = 1) -> AlertOutcome:
    outcome = decide(alerts, wallets)
    Repository(engine, clock=clock).store_alert_outcome("fund", outcome)
    return outcome


def run_once(engine: Engine, alerts: AlertsSettings, clock: Clock) -> int:
    async def go() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            worker = DeliveryWorker(engine, alerts, client, clock=clock, rng=RNG)
            try:
                return await worker.run_once()
            finally:
                await worker.aclose()

    return asyncio.run(go())


def rows(engine: Engine) -> list[dict[str, Any]]:
    return sorted(ob.outbox_rows(engine, limit=1000), key=lambda r: r["id"])


CASES = [
    # channel, response, expected status, minimum wait (s), requests made
    ("tg", telegram_ok, "sent", None, 1),
    ("tg", lambda: telegram_error(429, "Too Many Requests: retry after 7", retry_after=7), "pending", 7, 1),
    ("tg", lambda: telegram_error(400, "Bad Request: chat not found"), "failed", None, 1),
    ("tg", lambda: telegram_error(403, "Forbidden: bot was blocked by the user"), "failed", None, 1),
    ("tg", lambda: telegram_error(500, "Internal Server Error"), "pending", 0, 1),
    ("slack", lambda: slack(200, "ok"), "sent", None, 1),
    ("slack", lambda: slack(429, "rate_limited", **{"Retry-After": "3"}), "pending", 3, 1),
    ("slack", lambda: slack(400, "invalid_payload"), "failed", None, 1),
    ("slack", lambda: slack(404, "channel_not_found"), "failed", None, 1),
    ("slack", lambda: slack(410, "channel_is_archived"), "failed", None, 1),
    ("slack", lambda: slack(500, "rollup_error"), "pending", 0, 1),
    ("discord", lambda: discord(200), "sent", None, 1),
    (
        "discord",
        lambda: discord(429, {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}),
        "pending",
        1.5,
        1,
    ),
    ("discord", lambda: discord(404, {"message": "Unknown Webhook", "code": 10015}), "failed", None, 1),
    (
        "discord",
        lambda: discord(400, {"message": "Cannot send an empty message", "code": 50006}),
        "failed",
        None,
        1,
    ),
    ("discord", lambda: discord(500, {"message": "oops"}), "pending", 0, 1),
    ("hook", lambda: slack(204, ""), "sent", None, 1),
    ("hook", lambda: slack(429, "slow down", **{"Retry-After": "2"}), "pending", 2, 1),
    ("hook", lambda: slack(503, "unavailable"), "pending", 0, 1),
    ("hook", lambda: slack(410, "gone"), "failed", None, 1),
    ("hook", lambda: slack(400, "bad"), "failed", None, 1),
    ("hook", lambda: slack(302, "", location="http://169.254.169.254/"), "pending", 0, 1),
]


@pytest.mark.parametrize(("channel", "response", "status", "wait", "requests"), CASES)
def test_each_channel_error_is_retried_or_not_per_its_rules(
    apis: FakeApis,
    engine: Engine,
    channel: str,
    response: Any,
    status: str,
    wait: float | None,
    requests: int,
) -> None:
    kind = {"tg": "telegram", "hook": "webhook"}.get(channel, channel)
    apis.script(kind, response())
    alerts = alerts_for(apis, (channel,))
    clock = Clock(T0)
    enqueue(engine, alerts, clock)
    assert run_once(engine, alerts, clock) == 1
    [row] = rows(engine)
    assert row["status"] == status
    assert len(apis.of(kind)) == requests
    [attempt] = ob.deliveries(engine)
    expected_outcome = {"sent": "sent", "failed": "permanent", "pending": "retry"}[status]
    assert attempt["outcome"] == expected_outcome and attempt["attempt"] == 1
    assert attempt["status_code"] == response().status_code
    assert attempt["latency_ms"] is not None and attempt["latency_ms"] >= 0
    if wait is not None:
        assert row["next_attempt_at"] >= clock.now + timedelta(seconds=wait)
        assert attempt["error"]
        # not due yet: a second pass sends nothing
        assert run_once(engine, alerts, clock) == 0
        assert len(apis.of(kind)) == requests
    if channel == "hook":
        # follow_redirects is off: the 302's Location was never requested
        assert all(r["path"] == "/hook" for r in apis.of("webhook"))


def test_retries_until_delivered_with_a_stable_webhook_id(apis: FakeApis, engine: Engine) -> None:
    apis.script("webhook", slack(500, "a"), slack(502, "b"), slack(200, "ok"))
    alerts = alerts_for(apis, ("hook",))
    clock = Clock(T0)
    outcome = enqueue(engine, alerts, clock)
    for _ in range(3):
        run_once(engine, alerts, clock)
        clock.now = max(clock.now, rows(engine)[0]["next_attempt_at"]) + timedelta(milliseconds=1)
    [row] = rows(engine)
    assert row["status"] == "sent" and row["attempts"] == 3
    hooks = apis.of("webhook")
    assert len(hooks) == 3
    ids = {r["headers"]["webhook-id"] for r in hooks}
    assert ids == {outcome.outbox[0]["event_id"]}
    assert all(r["signature_ok"] for r in hooks)
    assert [d["outcome"] for d in reversed(ob.deliveries(engine))] == ["retry", "retry", "sent"]
    assert hooks[0]["json"]["alert"]["rule"] == "health"


def test_a_tampered_body_fails_the_independent_verifier(apis: FakeApis) -> None:
    from tests.unit.alerts.fake_apis import SECRET, independent_signature

    good = independent_signature(SECRET, "msg_1", "1700000000", b'{"a":1}')
    assert good != independent_signature(SECRET, "msg_1", "1700000000", b'{"a":2}')
    assert good != independent_signature(SECRET, "msg_2", "1700000000", b'{"a":1}')


def test_429_holds_the_route_and_other_channels_carry_on(apis: FakeApis, engine: Engine) -> None:
    apis.script("slack", slack(429, "rate_limited", **{"Retry-After": "30"}), slack(200, "ok"))
    apis.script("discord", discord(200))
    alerts = alerts_for(apis, ("slack", "discord"))
    clock = Clock(T0)
    enqueue(engine, alerts, clock, wallets=3)  # 3 alerts x 2 channels
    run_once(engine, alerts, clock)
    assert len(apis.of("slack")) == 1  # nothing else to slack inside the wait
    assert len(apis.of("discord")) == 3
    slack_rows = [r for r in rows(engine) if r["channel"] == "slack"]
    assert all(r["status"] == "pending" for r in slack_rows)
    assert all(r["next_attempt_at"] >= T0 + timedelta(seconds=30) for r in slack_rows)
    assert sorted(r["attempts"] for r in slack_rows) == [0, 0, 1]  # released rows were not attempted
    assert len([d for d in ob.deliveries(engine) if d["channel"] == "slack"]) == 1
    clock.advance(seconds=29)
    run_once(engine, alerts, clock)
    assert len(apis.of("slack")) == 1
    clock.advance(seconds=40)
    run_once(engine, alerts, clock)
    assert len(apis.of("slack")) == 4
    assert {r["status"] for r in rows(engine)} == {"sent"}


@pytest.mark.parametrize(("channel", "kind", "age_h"), [("slack", "slack", 24), ("hook", "webhook", 72)])
def test_dead_letter_after_the_channel_age(
    apis: FakeApis, engine: Engine, channel: str, kind: str, age_h: int
) -> None:
    apis.script(kind, slack(503, "down"))
    alerts = alerts_for(apis, (channel,), max_delay="4h")
    clock = Clock(T0)
    enqueue(engine, alerts, clock)
    attempts_before_deadline = 0
    while True:
        run_once(engine, alerts, clock)
        [row] = rows(engine)
        if row["status"] != "pending":
            break
        attempts_before_deadline += 1
        assert row["next_attempt_at"] <= T0 + timedelta(hours=age_h)
        clock.now = row["next_attempt_at"]
    assert row["status"] == "dead"
    assert clock.now >= T0 + timedelta(hours=age_h)  # never dead before the age
    assert attempts_before_deadline >= 10
    assert len(apis.of(kind)) == row["attempts"] == len(ob.deliveries(engine, limit=10_000))
    assert ob.deliveries(engine)[0]["outcome"] == "dead"
    assert row["attempts"] <= age_h // 2 + 20  # ~14 doublings, then a mean wait of 2 h: no retry storm


def test_formats_reach_each_api(apis: FakeApis, engine: Engine) -> None:
    apis.script("telegram", telegram_ok(77))
    alerts = alerts_for(apis, CHANNELS)
    clock = Clock(T0)
    enqueue(engine, alerts, clock)
    run_once(engine, alerts, clock)
    assert {r["status"] for r in rows(engine)} == {"sent"}
    [tg] = apis.of("telegram")
    assert tg["json"]["parse_mode"] == "HTML" and tg["json"]["chat_id"] == "-100"
    assert tg["json"]["text"].startswith("<b>WARNING")
    [sl] = apis.of("slack")
    assert sl["json"]["text"].startswith("WARNING") and sl["json"]["blocks"][0]["type"] == "header"
    [dc] = apis.of("discord")
    assert dc["query"] == {"wait": "true"} and dc["json"]["allowed_mentions"] == {"parse": []}
    assert len(dc["json"]["content"]) <= 2000
    tg_delivery = next(d for d in ob.deliveries(engine) if d["channel"] == "tg")
    assert tg_delivery["outcome"] == "sent"


@given(
    attempt=st.integers(min_value=1, max_value=40),
    retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=3600)),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_is_full_jitter_and_honours_retry_after(
    attempt: int, retry_after: float | None, seed: int
) -> None:
    delay = backoff_delay(attempt, base=2.0, cap=1800.0, retry_after=retry_after, rng=random.Random(seed))
    ceiling = min(1800.0, 2.0 * 2 ** (attempt - 1))
    assert delay >= (retry_after or 0.0)
    assert delay <= max(ceiling, retry_after or 0.0)


def test_backoff_spreads_over_the_whole_window() -> None:
    rng = random.Random(7)
    samples = [backoff_delay(6, base=2.0, cap=1800.0, retry_after=None, rng=rng) for _ in range(4000)]
    # uniform(0, 64): mean 32, a quarter below 16
    assert 30.5 < sum(samples) / len(samples) < 33.5
    assert 0.22 < sum(s < 16 for s in samples) / len(samples) < 0.28
