"""Send one alert message to one channel and classify the outcome (retry or not) per the channel's rules.

- Telegram Bot API ``sendMessage``: HTML parse mode (``& < >`` escaped), 4096 characters; 429 carries
  ``parameters.retry_after``; 400 "can't parse entities" is resent once as plain text; 400 with
  ``migrate_to_chat_id`` is resent to the new chat; 401/403/404 are permanent; 5xx/network retry.
- Slack incoming webhook: top-level ``text`` (mobile notifications use only it) plus blocks; 429 with
  ``Retry-After``; 400/403/404/410 with a reason string are permanent; 5xx retry.
- Discord webhook with ``?wait=true`` (otherwise a dropped message returns no error), content <= 2000
  characters, one embed, ``allowed_mentions`` empty (no @everyone); 429 body ``retry_after``; 404 and
  other 4xx permanent.
- Generic webhook: JSON body signed per Standard Webhooks; 2xx success; 3xx failure (redirects are
  never followed); 410 permanent (disable); 429/502/503/504 throttle honoring ``Retry-After``; other
  4xx permanent except 408/425; 5xx retry.

Every URL that carries a secret (the Telegram token, Slack/Discord/webhook URLs) is checked against
the SSRF guard unless the channel allows private destinations, and never appears in a result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx

from aggregator.alerts.message import AlertMessage
from aggregator.alerts.render import (
    DISCORD_CONTENT_LIMIT,
    TELEGRAM_LIMIT,
    discord_payload,
    plain_text,
    slack_payload,
    telegram_html,
    webhook_payload,
)
from aggregator.alerts.rules import AlertChannel
from aggregator.alerts.signing import signature_headers
from aggregator.alerts.ssrf import BlockedDestination, check_url
from aggregator.redaction import redact

__all__ = ["AlertMessage", "SendResult", "secret_fragments", "send"]

DISCORD_LIMIT = DISCORD_CONTENT_LIMIT
DEFAULT_TELEGRAM_API = "https://api.telegram.org"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Literal["sent", "retry", "permanent"]
    status_code: int | None = None
    retry_after_seconds: float | None = None
    detail: str = ""
    provider_message_id: str | None = None
    new_chat_id: str | None = None  # Telegram group migrated to a supergroup


def secret_fragments(channel: AlertChannel) -> tuple[str, ...]:
    """Strings to redact for ``channel``: each secret whole, and the token-like parts of a secret URL
    or bot token (path segments, query values and the part after ``:`` with a digit or capital letter,
    at least 8 characters) in case a provider echoes only part of it. Longest first."""
    whole = [
        s.get_secret_value() for s in (channel.bot_token, channel.webhook_url, channel.signing_secret) if s
    ]
    parts: set[str] = set(whole)
    for secret in whole:
        split = urlsplit(secret)
        pieces = [*split.path.split("/"), *(v for _, v in parse_qsl(split.query)), *secret.split(":")]
        for piece in pieces:
            if len(piece) >= 8 and any(c.isdigit() or c.isupper() for c in piece):
                parts.add(piece)
    return tuple(sorted(parts, key=len, reverse=True))


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(response: httpx.Response, body_value: object = None) -> float | None:
    if isinstance(body_value, int | float) and body_value >= 0:
        return float(body_value)
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            return None
    return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def send(
    client: httpx.AsyncClient, channel: AlertChannel, message: AlertMessage, *, chat_id: str | None = None
) -> SendResult:
    """Deliver ``message`` once; the caller (delivery worker) schedules retries from the result.
    ``chat_id`` overrides a Telegram channel's chat (a rule's own chat)."""
    secrets = secret_fragments(channel)
    try:
        if channel.type == "telegram":
            return await _send_telegram(client, channel, message, chat_id)
        if channel.type == "slack":
            return await _send_slack(client, channel, message)
        if channel.type == "discord":
            return await _send_discord(client, channel, message)
        return await _send_webhook(client, channel, message)
    except BlockedDestination as exc:
        return SendResult("permanent", detail=f"destination refused: {exc}")
    except httpx.TimeoutException:
        return SendResult("retry", detail="timed out")
    except httpx.TransportError as exc:
        return SendResult("retry", detail=redact(f"network error: {type(exc).__name__}", secrets))


def _secret_url(channel: AlertChannel) -> str:
    if channel.webhook_url is None:
        raise BlockedDestination(f"{channel.type} channel has no webhook_url configured")
    url = channel.webhook_url.get_secret_value()
    check_url(url, allow_private=channel.allow_private)
    return url


async def _send_telegram(
    client: httpx.AsyncClient, channel: AlertChannel, message: AlertMessage, chat_override: str | None
) -> SendResult:
    chat_id = chat_override or channel.chat_id
    if channel.bot_token is None or chat_id is None:
        return SendResult("permanent", detail="telegram channel needs bot_token and chat_id")
    base = (channel.api_base or DEFAULT_TELEGRAM_API).rstrip("/")
    check_url(base, allow_private=channel.allow_private)
    url = f"{base}/bot{channel.bot_token.get_secret_value()}/sendMessage"
    payload: dict[str, Any] = {
        "chat_id": chat_id,
        "text": telegram_html(message),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    migrated: str | None = None
    for _ in range(3):
        response = await client.post(url, json=payload, follow_redirects=False)
        body = _json(response)
        if response.status_code == 200 and body.get("ok") is True:
            result = body.get("result") or {}
            msg_id = result.get("message_id") if isinstance(result, dict) else None
            return SendResult(
                "sent", 200, provider_message_id=None if msg_id is None else str(msg_id), new_chat_id=migrated
            )
        description = str(body.get("description", ""))[:200]
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        assert isinstance(parameters, dict)
        if response.status_code == 429:
            return SendResult(
                "retry", 429, _retry_after(response, parameters.get("retry_after")), description
            )
        if response.status_code == 400 and "migrate_to_chat_id" in parameters:
            migrated = str(parameters["migrate_to_chat_id"])
            payload["chat_id"] = migrated
            continue
        if response.status_code == 400 and "parse entities" in description and "parse_mode" in payload:
            payload = {"chat_id": payload["chat_id"], "text": _truncate(plain_text(message), TELEGRAM_LIMIT)}
            continue
        if response.status_code >= 500:
            return SendResult("retry", response.status_code, _retry_after(response), description)
        return SendResult("permanent", response.status_code, detail=description or "rejected")
    return SendResult("permanent", detail="telegram kept rejecting the message")


async def _send_slack(client: httpx.AsyncClient, channel: AlertChannel, message: AlertMessage) -> SendResult:
    url = _secret_url(channel)
    payload = slack_payload(message)
    response = await client.post(url, json=payload, follow_redirects=False)
    detail = response.text[:200]
    if response.status_code == 200:
        return SendResult("sent", 200)
    if response.status_code == 429:
        return SendResult("retry", 429, _retry_after(response), detail)
    if response.status_code >= 500:
        return SendResult("retry", response.status_code, _retry_after(response), detail)
    return SendResult("permanent", response.status_code, detail=detail)


async def _send_discord(
    client: httpx.AsyncClient, channel: AlertChannel, message: AlertMessage
) -> SendResult:
    url = _secret_url(channel)
    payload = discord_payload(message)
    response = await client.post(url, params={"wait": "true"}, json=payload, follow_redirects=False)
    body = _json(response)
    if response.status_code in (200, 204):
        return SendResult(
            "sent", response.status_code, provider_message_id=str(body.get("id")) if body else None
        )
    if response.status_code == 429:
        return SendResult(
            "retry", 429, _retry_after(response, body.get("retry_after")), str(body.get("message", ""))
        )
    if response.status_code >= 500:
        return SendResult("retry", response.status_code, _retry_after(response))
    return SendResult("permanent", response.status_code, detail=str(body.get("message", response.text[:200])))


async def _send_webhook(
    client: httpx.AsyncClient, channel: AlertChannel, message: AlertMessage
) -> SendResult:
    url = _secret_url(channel)
    body = json.dumps(webhook_payload(message), sort_keys=True, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    if channel.signing_secret is not None:
        headers |= signature_headers(
            [channel.signing_secret.get_secret_value()], message.message_id, int(time.time()), body
        )
    else:
        headers["webhook-id"] = message.message_id
    response = await client.post(url, content=body, headers=headers, follow_redirects=False)
    code = response.status_code
    if 200 <= code < 300:
        return SendResult("sent", code)
    if code == 410:
        return SendResult("permanent", code, detail="endpoint gone (410): disabled")
    if code in (408, 425, 429, 502, 503, 504) or code >= 500 or 300 <= code < 400:
        return SendResult("retry", code, _retry_after(response), f"HTTP {code}")
    return SendResult("permanent", code, detail=f"HTTP {code}")
