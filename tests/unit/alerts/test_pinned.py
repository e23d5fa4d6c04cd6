"""Pinned connections: the webhook connection goes to the address the SSRF guard validated, with the
original Host header and TLS SNI, and a rebinding DNS answer cannot redirect it to a private address.

The resolver is replaced at ``aggregator.alerts.ssrf._system_resolver`` (the function every resolution
goes through); the names used (``*.rebind.test``) do not exist in real DNS, so a request that arrives
proves the connection used our resolution and nothing else.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator.alerts import ssrf
from aggregator.alerts.channels import send
from aggregator.alerts.message import AlertMessage
from aggregator.alerts.pinned import pinned_client
from aggregator.alerts.rules import AlertChannel, AlertsSettings
from tests.support.local_server import free_port

MESSAGE = AlertMessage("alr_pin", "critical", "CRITICAL · test", ("line",), {"k": 1})


class Resolver:
    """Answers from a script per host (the last answer repeats) and counts the calls."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        queue = self.answers.get(host)
        if not queue:
            raise OSError(f"no such host {host}")
        return queue.pop(0) if len(queue) > 1 else queue[0]


class Receiver:
    def __init__(self) -> None:
        self.hosts: list[str] = []

    async def handle(self, request: Request) -> Response:
        self.hosts.append(request.headers.get("host", ""))
        return Response(status_code=204)


def _serve(app: Any, port: int, **ssl_files: str) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off", **ssl_files)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    return server, thread


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    rec = Receiver()
    port = free_port()
    server, thread = _serve(Starlette(routes=[Route("/hook", rec.handle, methods=["POST"])]), port)
    yield rec, port
    server.should_exit = True
    thread.join(timeout=5)


def settings_for(url: str, *, allow_private: bool) -> tuple[AlertsSettings, AlertChannel]:
    channel = AlertChannel(type="webhook", webhook_url=SecretStr(url), allow_private=allow_private)
    return AlertsSettings(channels={"hook": channel}), channel


async def deliver(alerts: AlertsSettings, channel: AlertChannel, **kw: Any) -> Any:
    async with pinned_client(alerts, timeout=5, **kw) as client:
        return await send(client, channel, MESSAGE)


def test_connects_to_the_resolved_address_keeping_the_host_header(
    receiver: tuple[Receiver, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, port = receiver
    resolver = Resolver({"hooks.rebind.test": [["127.0.0.1"]]})
    monkeypatch.setattr(ssrf, "_system_resolver", resolver)
    alerts, channel = settings_for(f"http://hooks.rebind.test:{port}/hook", allow_private=True)
    result = asyncio.run(deliver(alerts, channel))
    assert result.outcome == "sent", result
    assert rec.hosts == [f"hooks.rebind.test:{port}"]
    assert "hooks.rebind.test" in resolver.calls


def test_rebinding_to_a_private_address_is_refused_at_connect(
    receiver: tuple[Receiver, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, port = receiver
    # first answer (the guard's check) public, every later one loopback: a rebinding DNS server
    resolver = Resolver({"evil.rebind.test": [["93.184.216.34"], ["127.0.0.1"]]})
    monkeypatch.setattr(ssrf, "_system_resolver", resolver)
    alerts, channel = settings_for(f"https://evil.rebind.test:{port}/hook", allow_private=False)
    result = asyncio.run(deliver(alerts, channel))
    assert result.outcome == "permanent"
    assert "private" in result.detail
    assert rec.hosts == []  # nothing reached the loopback server
    assert resolver.calls == ["evil.rebind.test", "evil.rebind.test"]


def test_any_private_answer_among_several_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = Resolver({"mixed.rebind.test": [["93.184.216.34", "10.0.0.5"]]})
    monkeypatch.setattr(ssrf, "_system_resolver", resolver)
    alerts, channel = settings_for("https://mixed.rebind.test/hook", allow_private=False)
    result = asyncio.run(deliver(alerts, channel))
    assert result.outcome == "permanent" and "private" in result.detail


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_tls_uses_the_url_host_for_sni_and_certificate_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hooks.rebind.test",
            "-addext", "subjectAltName=DNS:hooks.rebind.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    rec = Receiver()
    port = free_port()
    server, thread = _serve(
        Starlette(routes=[Route("/hook", rec.handle, methods=["POST"])]),
        port,
        ssl_keyfile=str(key),
        ssl_certfile=str(cert),
    )
    try:
        monkeypatch.setattr(ssrf, "_system_resolver", Resolver({"hooks.rebind.test": [["127.0.0.1"]]}))
        context = ssl.create_default_context(cafile=str(cert))
        alerts, channel = settings_for(f"https://hooks.rebind.test:{port}/hook", allow_private=True)
        result = asyncio.run(deliver(alerts, channel, verify=context))
        # the certificate names only hooks.rebind.test: verification against 127.0.0.1 would fail
        assert result.outcome == "sent", result
        assert rec.hosts == [f"hooks.rebind.test:{port}"]
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def test_a_plain_client_would_have_resolved_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: without the pinned transport the name goes to the system resolver and fails."""
    monkeypatch.setattr(ssrf, "_system_resolver", Resolver({"hooks.rebind.test": [["127.0.0.1"]]}))
    _, channel = settings_for("http://hooks.rebind.test:1/hook", allow_private=True)

    async def plain() -> Any:
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            return await send(client, channel, MESSAGE)

    assert asyncio.run(plain()).outcome == "retry"  # a DNS failure: never reached our address
