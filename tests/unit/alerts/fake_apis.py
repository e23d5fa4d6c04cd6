"""One local HTTP server that answers like the Telegram Bot API, Slack and Discord incoming webhooks
and a Standard Webhooks receiver, with scripted responses (including their documented errors).

Paths: ``/bot<token>/sendMessage`` (Telegram), ``/services/...`` (Slack), ``/api/webhooks/<id>/<token>``
(Discord, ``?wait=true``), ``/hook`` (signed webhook). Every request is recorded. The webhook receiver
verifies signatures with its own HMAC code (not ``aggregator.alerts.signing``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.local_server import serve

TOKEN = "123456789:AAcanaryTOKENcanaryTOKENcanary00"
SECRET = "whsec_" + base64.b64encode(b"s3cret-signing-key-for-tests-32b").decode()


def independent_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_") :])
    mac = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def telegram_ok(message_id: int = 42) -> Response:
    return JSONResponse({"ok": True, "result": {"message_id": message_id, "chat": {"id": -100}}})


def telegram_error(code: int, description: str, **parameters: Any) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


def slack(code: int, text: str, **headers: str) -> Response:
    return PlainTextResponse(text, status_code=code, headers=headers)


def discord(code: int, body: dict[str, Any] | None = None, **headers: str) -> Response:
    if code == 204:
        return Response(status_code=204)
    return JSONResponse(body if body is not None else {"id": "1234567890"}, status_code=code, headers=headers)


@dataclass
class FakeApis:
    url: str = ""
    scripts: dict[str, list[Response]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, kind: str, *responses: Response) -> None:
        """Responses for ``kind`` (telegram/slack/discord/webhook) in order; the last one repeats."""
        self.scripts[kind] = list(responses)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == kind]

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        kind = (
            "telegram"
            if path.startswith("/bot")
            else "slack"
            if path.startswith("/services/")
            else "discord"
            if path.startswith("/api/webhooks/")
            else "webhook"
        )
        body = await request.body()
        record: dict[str, Any] = {
            "kind": kind,
            "path": path,
            "query": dict(request.query_params),
            "headers": dict(request.headers),
            "body": body,
            "json": json.loads(body) if body else None,
        }
        if kind == "webhook":
            h = request.headers
            record["signature_ok"] = any(
                hmac.compare_digest(
                    independent_signature(
                        SECRET, h.get("webhook-id", ""), h.get("webhook-timestamp", ""), body
                    ),
                    candidate,
                )
                for candidate in h.get("webhook-signature", "").split()
            )
        with self.lock:
            self.requests.append(record)
            queue = self.scripts.get(kind) or [Response(status_code=200)]
            response = queue.pop(0) if len(queue) > 1 else queue[0]
        return response


@contextmanager
def fake_apis() -> Iterator[FakeApis]:
    apis = FakeApis()
    app = Starlette(routes=[Route("/{path:path}", apis.handle, methods=["POST"])])
    with serve(app) as url:
        apis.url = url
        yield apis


def channels_config(url: str) -> dict[str, Any]:
    return {
        "tg": {
            "type": "telegram",
            "chat_id": "-100",
            "api_base": url,
            "bot_token": TOKEN,
            "allow_private": True,
        },
        "slack": {"type": "slack", "webhook_url": f"{url}/services/T0/B0/canarySLACK", "allow_private": True},
        "discord": {
            "type": "discord",
            "webhook_url": f"{url}/api/webhooks/111/canaryDISCORD",
            "allow_private": True,
        },
        "hook": {
            "type": "webhook",
            "webhook_url": f"{url}/hook",
            "signing_secret": SECRET,
            "allow_private": True,
        },
    }
