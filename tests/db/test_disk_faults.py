"""A really full disk and a really read-only file system under SQLite: a tiny ``tmpfs`` mounted for the
test (needs root / CAP_SYS_ADMIN; skipped otherwise, ``test_open`` covers the same with
``max_page_count`` and ``mode=ro``). The store fails visibly with a ``StorageError``, the earlier
snapshot survives intact, and once space (or write access) is back the database takes writes again."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.db import Repository, ScanInfo, create_engine, open_database
from aggregator.errors import StorageError
from tests.db import factories as f
from tests.db.test_open import _seed


def _mount(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["mount", *args], capture_output=True, timeout=30, check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs at a fresh directory, unmounted afterwards."""
    point = tmp_path / f"fs-{uuid.uuid4().hex[:8]}"
    point.mkdir()
    if os.geteuid() != 0 or _mount("-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(point)).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield point
    finally:
        _mount("-o", "remount,rw", str(point))
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30, check=False)


def _fill_disk(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    full = False
    try:
        while not full:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                full = exc.errno == errno.ENOSPC  # the file system is really full (anything else: raise)
                if not full:
                    raise
    finally:
        os.close(fd)
    return filler


def _state(path: Path) -> tuple[list[str], str]:
    with sqlite3.connect(path) as conn:
        scans = [r[0] for r in conn.execute("SELECT scan_id FROM snapshots ORDER BY scan_id")]
        return scans, conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_full_disk_fails_the_store_visibly_and_keeps_earlier_data(tmpfs: Path) -> None:
    path = tmpfs / "crossmargin.db"
    url = f"sqlite:///{path}"
    engine = _seed(url)
    filler = _fill_disk(tmpfs)
    big = [f.account(i, positions=40) for i in range(100)]
    with pytest.raises(StorageError) as info:
        Repository(engine).store_scan(ScanInfo(id="big", started_at=f.T0), "fund", big)
    message = str(info.value)
    assert "cannot store scan big" in message and "disk" in message and str(path) in message
    engine.dispose()
    filler.unlink()
    assert _state(path) == (["first"], "ok")
    engine = create_engine(sa.make_url(url))
    Repository(engine).store_scan(ScanInfo(id="after", started_at=f.T0), "fund", [f.account(1)])
    engine.dispose()
    assert _state(path) == (["after", "first"], "ok")


def test_read_only_file_system_fails_visibly_and_keeps_earlier_data(tmpfs: Path) -> None:
    path = tmpfs / "crossmargin.db"
    url = f"sqlite:///{path}"
    _seed(url).dispose()
    assert _mount("-o", "remount,ro", str(tmpfs)).returncode == 0  # (a busy mount cannot be remounted)
    with pytest.raises(StorageError) as info:  # opening checks the schema first: refused there
        open_database(environ={"CROSSMARGIN_DATABASE_URL": url})
    assert "cannot read the schema revision" in str(info.value) and "read-only file system" in str(info.value)
    engine = create_engine(sa.make_url(url))  # a writer that skips the check fails on the store itself
    with pytest.raises(StorageError) as info:
        Repository(engine).store_scan(ScanInfo(id="second", started_at=f.T0), "fund", [f.account(1)])
    assert "cannot store scan second" in str(info.value)
    engine.dispose()
    assert _mount("-o", "remount,rw", str(tmpfs)).returncode == 0
    assert _state(path) == (["first"], "ok")
