"""Run a venue app: in a background thread on a free 127.0.0.1 port (tests), or in the foreground
(``python -m aggregator.devnet.venues``). ``AppServer`` is the thread runner both venue apps use
(``VenueServer`` here, ``aevo.CredVenueServer`` for the credentialed venues)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import ClassVar, Self

import uvicorn
from starlette.applications import Starlette

from aggregator.devnet.venues.app import create_app
from aggregator.devnet.venues.state import VenueState

__all__ = ["AppServer", "VenueServer", "free_port", "serve_forever", "uvicorn_config"]

START_TIMEOUT_S = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def uvicorn_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """Quiet uvicorn settings for a devnet app (warnings only, no lifespan, no access log)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        access_log=False,
    )


def serve_forever(host: str, port: int) -> None:
    uvicorn.Server(uvicorn_config(create_app(None), host, port)).run()


class AppServer:
    """``app`` served by uvicorn in a daemon thread on ``host:port`` (a free port by default):
    ``with Server() as s: s.url``; ``start`` waits up to ``START_TIMEOUT_S`` for it to listen."""

    label: ClassVar[str] = "venue server"

    def __init__(self, app: Starlette, host: str, port: int | None, *, thread_name: str) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(uvicorn_config(app, self.host, self.port))
        self._thread = threading.Thread(
            target=self._server.run, name=f"{thread_name}:{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class VenueServer(AppServer):
    """The venue app in a daemon thread: ``with VenueServer() as s: s.url`` (stops on exit).

    ``state`` is the live ``VenueState`` (tests may read it; change it through the admin API)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.state = VenueState()
        super().__init__(create_app(self.state), host, port, thread_name="venues")
