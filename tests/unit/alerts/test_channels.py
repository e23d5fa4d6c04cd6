"""Channels over real HTTP against local servers that answer like Telegram, Slack, Discord and a
webhook receiver, including their documented errors; each retried or not as the channel's rules say."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator.alerts.channels import AlertMessage, send
from aggregator.alerts.rules import AlertChannel
from tests.support.local_server import serve

TOKEN = "123456789:AAcanaryTOKENcanaryTOKENcanary00"
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
MESSAGE = AlertMessage(
    message_id="dlv_1",
    severity="critical",
    title="CRITICAL: CHF 0.97 <aave_v3:devnet> & co",
    body=("Account aave_v3:devnet/0xabc health 0.97", "@everyone <!channel> _*[]"),
    data={"rule": "chf", "value": 0.97},
)


class Script:
    """Responses to hand out in order (the last one repeats) and the requests received."""

    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            {
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


@pytest.fixture
def script() -> Iterator[tuple[Script, str]]:
    s = Script()
    app = Starlette(routes=[Route("/{path:path}", s.handle, methods=["POST"])])
    with serve(app) as url:
        yield s, url


def telegram(url: str) -> AlertChannel:
    return AlertChannel(
        type="telegram", chat_id="-100", api_base=url, bot_token=SecretStr(TOKEN), allow_private=True
    )


def hook(kind: str, url: str, **extra: Any) -> AlertChannel:
    return AlertChannel(type=kind, webhook_url=SecretStr(url), allow_private=True, **extra)  # type: ignore[arg-type]


async def deliver(channel: AlertChannel) -> Any:
    async with httpx.AsyncClient(timeout=5) as client:
        return await send(client, channel, MESSAGE)


async def test_telegram_html_escaped_and_message_id(script: tuple[Script, str]) -> None:
    s, url = script
    s.responses = [JSONResponse({"ok": True, "result": {"message_id": 42}})]
    result = await deliver(telegram(url))
    assert result.outcome == "sent" and result.provider_message_id == "42"
    sent = json.loads(s.requests[0]["body"])
    assert s.requests[0]["path"] == f"/bot{TOKEN}/sendMessage"
    assert sent["parse_mode"] == "HTML"
    assert "&lt;aave_v3:devnet&gt; &amp; co" in sent["text"]
    assert "<aave" not in sent["text"]
    assert sent["text"].startswith("<b>CRITICAL")
    assert TOKEN not in repr(result)


async def test_telegram_429_retry_after_then_permanent_403(script: tuple[Script, str]) -> None:
    s, url = script
    s.responses = [
        JSONResponse(
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests",
                "parameters": {"retry_after": 17},
            },
            status_code=429,
        )
    ]
    result = await deliver(telegram(url))
    assert (result.outcome, result.retry_after_seconds) == ("retry", 17.0)
    s.responses = [
        JSONResponse(
            {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"}, status_code=403
        )
    ]
    result = await deliver(telegram(url))
    assert result.outcome == "permanent" and "blocked" in result.detail


async def test_telegram_migrated_chat_and_parse_error_fallback(script: tuple[Script, str]) -> None:
    s, url = script
    s.responses = [
        JSONResponse(
            {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded",
                "parameters": {"migrate_to_chat_id": -1009},
            },
            status_code=400,
        ),
        JSONResponse(
            {"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities"},
            status_code=400,
        ),
        JSONResponse({"ok": True, "result": {"message_id": 7}}),
    ]
    result = await deliver(telegram(url))
    assert result.outcome == "sent" and result.new_chat_id == "-1009"
    last = json.loads(s.requests[-1]["body"])
    assert last["chat_id"] == "-1009" and "parse_mode" not in last


async def test_telegram_5xx_retries(script: tuple[Script, str]) -> None:
    s, url = script
    s.responses = [PlainTextResponse("bad gateway", status_code=502)]
    assert (await deliver(telegram(url))).outcome == "retry"


async def test_slack_text_escaped_and_errors(script: tuple[Script, str]) -> None:
    s, url = script
    s.responses = [PlainTextResponse("ok")]
    assert (await deliver(hook("slack", url + "/services/T/B/x"))).outcome == "sent"
    sent = json.loads(s.requests[0]["body"])
    assert "<!channel>" not in sent["text"] and "&lt;!channel&gt;" in sent["text"]
    assert sent["blocks"][0]["type"] == "header"
    s.responses = [PlainTextResponse("invalid_payload", status_code=400)]
    assert (await deliver(hook("slack", url))).outcome == "permanent"
    s.responses = [PlainTextResponse("rate limited", status_code=429, headers={"Retry-After": "3"})]
    result = await deliver(hook("slack", url))
    assert (result.outcome, result.retry_after_seconds) == ("retry", 3.0)
    s.responses = [PlainTextResponse("rollup_error", status_code=500)]
    assert (await deliver(hook("slack", url))).outcome == "retry"


async def test_discord_wait_true_no_mentions_limits_and_errors(script: tuple[Script, str]) -> None:
    s, url = script
    s.responses = [JSONResponse({"id": "111"})]
    result = await deliver(hook("discord", url + "/api/webhooks/1/tok"))
    assert result.outcome == "sent" and result.provider_message_id == "111"
    req = s.requests[0]
    assert req["query"] == {"wait": "true"}
    sent = json.loads(req["body"])
    assert sent["allowed_mentions"] == {"parse": []}
    assert len(sent["content"]) <= 2000
    s.responses = [
        JSONResponse(
            {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}, status_code=429
        )
    ]
    result = await deliver(hook("discord", url))
    assert (result.outcome, result.retry_after_seconds) == ("retry", 1.5)
    s.responses = [JSONResponse({"message": "Unknown Webhook", "code": 10015}, status_code=404)]
    assert (await deliver(hook("discord", url))).outcome == "permanent"


async def test_webhook_signed_verifiable_and_status_rules(script: tuple[Script, str]) -> None:
    s, url = script
    s.responses = [Response(status_code=204)]
    assert (await deliver(hook("webhook", url, signing_secret=SecretStr(SECRET)))).outcome == "sent"
    req = s.requests[0]
    headers = req["headers"]
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + req["body"]
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == expected
    assert headers["webhook-id"] == "dlv_1"
    for status, outcome in [
        (410, "permanent"),
        (400, "permanent"),
        (302, "retry"),
        (503, "retry"),
        (429, "retry"),
    ]:
        s.responses = [Response(status_code=status, headers={"location": "http://127.0.0.1:1/"})]
        assert (await deliver(hook("webhook", url))).outcome == outcome, status


async def test_loopback_refused_unless_allowed(script: tuple[Script, str]) -> None:
    _, url = script
    channel = AlertChannel(type="webhook", webhook_url=SecretStr(url))
    result = await deliver(channel)
    assert result.outcome == "permanent" and "refused" in result.detail


async def test_dead_endpoint_is_retryable_and_secret_free() -> None:
    result = await deliver(hook("slack", "http://127.0.0.1:9/services/T/B/canarysecret"))
    assert result.outcome == "retry"
    assert "canarysecret" not in repr(result)
