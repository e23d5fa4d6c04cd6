"""A canary token inside every secret (bot token, Slack/Discord/webhook URLs, signing secret) never
appears in logs (DEBUG), error strings, results or the database, even when the provider echoes the
request URL back in its error body."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator.alerts.decide import decide_alerts
from aggregator.alerts.rules import AlertsSettings
from aggregator.alerts.worker import DeliveryWorker
from aggregator.db import Repository, create_engine, upgrade
from tests.support.local_server import serve
from tests.unit.alerts.builders import T0, account, assessment

CANARY = "CANARYq7Zx3"
SECRET_BYTES = (CANARY * 4).encode()
SIGNING = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
CANARIES = (CANARY, base64.b64encode(SECRET_BYTES).decode())


async def echo_error(request: Request) -> Response:
    """Every API fails and repeats the full request URL (with its secret) in the error."""
    url = str(request.url)
    path = request.url.path
    if path.startswith("/bot"):
        return JSONResponse({"ok": False, "error_code": 401, "description": f"Unauthorized {url}"}, 401)
    if path.startswith("/api/webhooks/"):
        return JSONResponse({"message": f"Unknown Webhook {url}", "code": 10015}, status_code=404)
    if path.startswith("/services/"):
        return PlainTextResponse(f"invalid_token {url}", status_code=403)
    return PlainTextResponse(f"server error at {url}", status_code=500)


@pytest.fixture
def api() -> Iterator[str]:
    with serve(Starlette(routes=[Route("/{p:path}", echo_error, methods=["POST"])])) as url:
        yield url


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(sa.make_url(f"sqlite:///{tmp_path / 'canary.db'}"))
    upgrade(eng)
    yield eng
    eng.dispose()


def settings(url: str) -> AlertsSettings:
    return AlertsSettings.model_validate(
        {
            "channels": {
                "tg": {
                    "type": "telegram",
                    "chat_id": "-1",
                    "api_base": url,
                    "bot_token": f"123456789:AA{CANARY}-{CANARY}xyz",
                    "allow_private": True,
                },
                "slack": {
                    "type": "slack",
                    "webhook_url": f"{url}/services/T/B/{CANARY}",
                    "allow_private": True,
                },
                "discord": {
                    "type": "discord",
                    "webhook_url": f"{url}/api/webhooks/42/{CANARY}",
                    "allow_private": True,
                },
                "hook": {
                    "type": "webhook",
                    "webhook_url": f"{url}/hook?auth={CANARY}",
                    "signing_secret": SIGNING,
                    "allow_private": True,
                },
                "gone": {
                    "type": "webhook",
                    "webhook_url": f"http://127.0.0.1:9/{CANARY}",
                    "allow_private": True,
                },
                "badsecret": {
                    "type": "webhook",
                    "webhook_url": f"{url}/hook2",
                    "signing_secret": f"whsec_{CANARY}!!",
                    "allow_private": True,
                },
            },
            "rules": [
                {
                    "name": "h",
                    "metric": "account_health",
                    "warning": 1.5,
                    "channels": ["tg", "slack", "discord", "hook", "gone", "badsecret"],
                }
            ],
        }
    )


def dump(engine: Engine) -> str:
    """Every row of every table as text (what a database dump would show)."""
    out = []
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            out += [repr(tuple(row)) for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))]
    with open(engine.url.database or "", "rb") as raw:  # and the raw file bytes
        out.append(raw.read().decode("latin-1"))
    return "\n".join(out)


def test_canary_never_leaks(
    api: str, engine: Engine, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    alerts = settings(api)
    acct = account()
    outcome = decide_alerts(
        alerts, portfolio="fund", accounts=[acct], assessment=assessment([acct], [1.1]), previous={}, now=T0
    )
    Repository(engine).store_alert_outcome("fund", outcome)
    errors: list[str] = []

    async def deliver() -> None:
        async with httpx.AsyncClient(timeout=3) as client:
            worker = DeliveryWorker(engine, alerts, client)
            try:
                assert await worker.run_once() == 6
            except Exception as exc:  # pragma: no cover - recorded for the scan below
                errors.append(repr(exc))
                raise
            finally:
                await worker.aclose()

    asyncio.run(deliver())
    with engine.connect() as conn:
        outcomes = sorted(conn.execute(sa.text("SELECT outcome FROM deliveries")).scalars())
    assert outcomes == ["permanent"] * 4 + ["retry"] * 2  # every channel really failed
    captured = capsys.readouterr()
    haystacks = {
        "logs": caplog.text + "".join(r.getMessage() for r in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "errors": "\n".join(errors),
        "database": dump(engine),
        "settings repr": repr(alerts) + str(alerts.model_dump()) + alerts.model_dump_json(),
        "outbox": repr(outcome),
    }
    for where, text in haystacks.items():
        for canary in CANARIES:
            assert canary not in text, f"canary found in {where}"
    assert "Unauthorized" in haystacks["database"]  # the errors themselves were kept, redacted
