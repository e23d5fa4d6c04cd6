"""A local receiver for crossmargin's signed webhooks (Starlette + uvicorn on 127.0.0.1, in a thread),
used by ``crossmargin demo``, the devnet tests and the alert-latency benchmark.

It verifies every request on its own, from the Standard Webhooks specification rather than from
``aggregator.alerts.signing`` (so a bug there cannot hide itself): the secret is ``whsec_`` + base64;
the signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``; the expected signature is
``v1,`` + base64(HMAC-SHA256(key, content)); ``webhook-signature`` may list several space-separated
signatures (rotation), one match suffices; the timestamp must be within ``tolerance`` seconds of now.

Every POST to ``path`` is recorded as a :class:`ReceivedWebhook` (valid or not, with the reason) and
answered 200 when valid, 401 when not. A ``webhook-id`` seen before is recorded with
``duplicate=True`` (at-least-once delivery may resend) and still answered 200.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["ReceivedWebhook", "WebhookReceiver", "verify_standard_webhook"]

_HOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    webhook_id: str | None
    timestamp: int | None  # the webhook-timestamp header (the sender's attempt time)
    received_at: float  # time.time() on arrival
    received_monotonic: float  # time.monotonic() on arrival
    body: Any  # parsed JSON (None when the body is not JSON)
    valid: bool
    error: str | None
    duplicate: bool


def _key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("secret must start with whsec_")
    try:
        return base64.b64decode(secret[len("whsec_"):], validate=True)
    except binascii.Error as exc:
        raise ValueError("secret is not base64 after whsec_") from exc


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float = 300.0
) -> str | None:
    """None when the request is authentic and fresh, else the reason it is not."""
    webhook_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    offered = headers.get("webhook-signature")
    if not webhook_id or not stamp or not offered:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        timestamp = int(stamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    if abs(now - timestamp) > tolerance:
        return f"webhook-timestamp {timestamp} is more than {tolerance:.0f} s from now"
    content = webhook_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()
    for candidate in offered.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected.encode()):
            return None
    return "no signature matches"


class WebhookReceiver:
    """``with WebhookReceiver(secret) as receiver: receiver.url ... receiver.wait_for(2)``."""

    def __init__(
        self, secret: str, *, path: str = "/hooks/crossmargin", port: int | None = None,
        tolerance: float = 300.0,
    ) -> None:
        _key(secret)  # refuse a malformed secret up front
        self.secret = secret
        self.path = path
        self.port = port
        self.tolerance = tolerance
        self._lock = threading.Condition()
        self._received: list[ReceivedWebhook] = []
        self._seen: set[str] = set()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the receiver is not started")
        return f"http://{_HOST}:{self.port}{self.path}"

    def _app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            arrived, arrived_mono = time.time(), time.monotonic()
            headers = {k.lower(): v for k, v in request.headers.items()}
            error = verify_standard_webhook(self.secret, headers, body, now=arrived, tolerance=self.tolerance)
            try:
                parsed: Any = json.loads(body)
            except ValueError:
                parsed = None
            webhook_id = headers.get("webhook-id")
            stamp = headers.get("webhook-timestamp", "")
            with self._lock:
                duplicate = error is None and webhook_id in self._seen
                if error is None and webhook_id is not None:
                    self._seen.add(webhook_id)
                self._received.append(ReceivedWebhook(
                    webhook_id=webhook_id, timestamp=int(stamp) if stamp.isdigit() else None,
                    received_at=arrived, received_monotonic=arrived_mono, body=parsed,
                    valid=error is None, error=error, duplicate=duplicate,
                ))
                self._lock.notify_all()
            if error is not None:
                return JSONResponse({"error": error}, status_code=401)
            return JSONResponse({"ok": True, "duplicate": duplicate})

        return Starlette(routes=[Route(self.path, receive, methods=["POST"])])

    def start(self) -> WebhookReceiver:
        if self.port is None:
            with socket.socket() as sock:
                sock.bind((_HOST, 0))
                self.port = int(sock.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(self._app(), host=_HOST, port=self.port, log_level="error",
                                               lifespan="off", access_log=False))
        thread = threading.Thread(target=server.run, name="webhook-receiver", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"the webhook receiver did not start on {_HOST}:{self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def received(self) -> list[ReceivedWebhook]:
        """Everything received so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def valid(self) -> list[ReceivedWebhook]:
        """Authentic, first-time deliveries (duplicates and forgeries left out)."""
        return [r for r in self.received() if r.valid and not r.duplicate]

    def wait_for(self, count: int, timeout: float) -> list[ReceivedWebhook]:
        """Block until ``count`` valid first-time deliveries arrived (or ``timeout``); returns them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self._received if r.valid and not r.duplicate]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._lock.wait(remaining)
