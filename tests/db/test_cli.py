"""``crossmargin db ...`` and ``crossmargin history ...`` end to end (real SQLite files)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.cli import app
from aggregator.cli.app import run
from aggregator.db import Repository, ScanInfo, head_revision, open_database
from tests.db import factories as f


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["crossmargin", *args])
    code = run(app)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_db_upgrade_current_downgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CROSSMARGIN_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    code, out, _ = _cli(monkeypatch, capsys, "db", "current")
    assert code == 0 and "none (empty)" in out and "needs `crossmargin db upgrade`" in out
    code, out, _ = _cli(monkeypatch, capsys, "db", "upgrade")
    assert code == 0 and f"at revision {head_revision()}" in out
    code, out, _ = _cli(monkeypatch, capsys, "db", "current")
    assert "up to date" in out
    code, out, _ = _cli(monkeypatch, capsys, "db", "downgrade", "base")
    assert code == 0 and "base (empty)" in out


def test_db_error_exit_code_and_redaction(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        monkeypatch.setenv("CROSSMARGIN_DATABASE_URL", f"postgresql://u:topsecretpw@127.0.0.1:{port}/db")
        code, _, err = _cli(monkeypatch, capsys, "db", "current")
    assert code == 5 and "topsecretpw" not in err and "cannot read the schema revision" in err


def test_history_outputs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    engine = open_database()  # the embedded default in the test's HOME
    repo = Repository(engine)
    for n in range(3):
        at = f.T0 + timedelta(minutes=n)
        accounts = [f.account(0, at=at)]
        repo.store_scan(ScanInfo(id=f"s{n}", started_at=at), "fund", accounts, f.assessment("fund", accounts, at=at))
    engine.dispose()
    code, out, _ = _cli(monkeypatch, capsys, "history", "fund", "--since", "all", "--json")
    assert code == 0
    doc = json.loads(out)
    assert len(doc["points"]) == 3 and doc["points"][0]["pooled_hf"] is None and doc["points"][0]["chf"] == 1.5
    code, out, _ = _cli(monkeypatch, capsys, "history", "fund", "--since", "2026-01-01T00:01:00", "--csv")
    assert code == 0 and out.splitlines()[0].startswith("taken_at,scan_id,chf") and len(out.splitlines()) == 3
    code, out, _ = _cli(monkeypatch, capsys, "history", "fund", "--since", "all", "--csv", "--positions")
    assert len(out.splitlines()) == 1 + 3 * 4
    code, out, _ = _cli(monkeypatch, capsys, "history", "fund", "--since", "all")
    assert code == 0 and "1.500" in out
    code, _, err = _cli(monkeypatch, capsys, "history", "nobody")
    assert code == 2 and "unknown portfolio 'nobody'" in err
    code, _, err = _cli(monkeypatch, capsys, "history", "fund", "--since", "yesterday")
    assert code == 2 and "--since 'yesterday'" in err
