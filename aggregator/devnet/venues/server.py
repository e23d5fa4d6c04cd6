"""Run the venue app: in a background thread on a free 127.0.0.1 port (tests), or in the foreground
(``python -m aggregator.devnet.venues``)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from aggregator.devnet.venues.app import create_app
from aggregator.devnet.venues.state import VenueState

__all__ = ["VenueServer", "free_port", "serve_forever"]

START_TIMEOUT_S = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _config(host: str, port: int, state: VenueState | None) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        access_log=False,
    )


def serve_forever(host: str, port: int) -> None:
    uvicorn.Server(_config(host, port, None)).run()


class VenueServer:
    """The venue app in a daemon thread: ``with VenueServer() as s: s.url`` (stops on exit).

    ``state`` is the live ``VenueState`` (tests may read it; change it through the admin API)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.state = VenueState()
        self._server = uvicorn.Server(_config(self.host, self.port, self.state))
        self._thread = threading.Thread(target=self._server.run, name=f"venues:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> VenueServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"venue server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def __enter__(self) -> VenueServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
