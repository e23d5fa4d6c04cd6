"""One ``crossmargin watch`` per database: a second service is refused with a clear error, and the
lock goes away with its holder, also when the holder is killed (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from aggregator.errors import StorageError
from aggregator.service.instance_lock import single_watch

HOLDER = """
import sys, time
import sqlalchemy as sa
from aggregator.service.instance_lock import single_watch
engine = sa.create_engine(sys.argv[1])
with single_watch(engine):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_watch_is_refused_until_the_first_stops(engine: sa.Engine) -> None:
    with (
        single_watch(engine),
        pytest.raises(StorageError, match="another crossmargin watch is running"),
        single_watch(engine),
    ):
        pass
    with single_watch(engine):  # released on exit
        pass


def test_the_lock_dies_with_a_killed_holder(engine: sa.Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StorageError, match="another crossmargin watch") as refused, single_watch(engine):
            pass
        if engine.dialect.name == "sqlite":
            assert f"pid {holder.pid}" in str(refused.value)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10  # PostgreSQL notices the dead session shortly after
        while True:
            try:
                with single_watch(engine):
                    break
            except StorageError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
