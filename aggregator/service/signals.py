"""SIGTERM / SIGINT -> a stop event, on the running asyncio loop.

The first signal sets ``stop`` (the service drains: see ``aggregator.service.watch``); a second one
while draining raises ``KeyboardInterrupt`` in the loop so an impatient operator still gets out (the
store transaction is never interrupted: it runs as one unit, and SQLite/PostgreSQL roll back a
transaction whose connection dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

from aggregator.service.logs import LOGGER_NAME, log_event

__all__ = ["stop_on_signals"]

logger = logging.getLogger(f"{LOGGER_NAME}.signals")


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT set ``stop`` (a second signal interrupts for good)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            log_event(logger, logging.WARNING, "signal.again", f"{sig.name} again: exiting now")
            raise KeyboardInterrupt
        log_event(logger, logging.INFO, "signal", f"{sig.name}: stopping cleanly", signal=sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, handle, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not supported
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
