"""``[database]`` from the config layers: a URL with a password is a secret (refused in the main config
file, masked wherever it is shown), ``[database.retention]`` with defaults and validation, wired into
the retention job."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.db import RetentionPolicy, open_database, resolve_url, run_retention
from aggregator.db.history import chf_history
from aggregator.errors import ConfigError, StorageError
from tests.db import factories as f
from tests.db.test_cli import _cli
from tests.db.test_history import _fill

PASSWORD = "Sup3r-s3cret-pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://crossmargin:{PASSWORD}@db.internal:5432/cm",
        f"postgresql://db.internal/cm?user=crossmargin&password={PASSWORD}",
    ],
)
def test_url_with_password_is_refused_in_the_config_file(tmp_path: Path, url: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(config)
    message = str(info.value)
    assert "secrets file" in message and "database.url" in message and str(config) in message
    assert PASSWORD not in message


def test_url_without_password_is_accepted_in_the_config_file(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n')
    loaded = load_config(config)
    assert resolve_url(loaded.settings).url.database == str(db)
    config.write_text('[database]\nurl = "postgresql://crossmargin@db.internal/cm"\n')
    assert load_config(config).settings.database.url is not None


def test_url_with_password_from_secrets_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://crossmargin:{PASSWORD}@127.0.0.1:1/cm"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[database]\nurl = "{url}"\n')
    monkeypatch.setenv("CROSSMARGIN_SECRETS_FILE", str(secrets))
    settings = load_config().settings
    assert settings.database.url is not None and settings.database.url.get_secret_value() == url
    assert resolve_url(settings).url.password == PASSWORD
    monkeypatch.delenv("CROSSMARGIN_SECRETS_FILE")
    monkeypatch.setenv("CROSSMARGIN__DATABASE__URL", url)
    assert resolve_url(load_config().settings).url.password == PASSWORD


def test_config_show_masks_only_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CROSSMARGIN_DATABASE_URL", f"postgresql://crossmargin:{PASSWORD}@db.internal:5432/cm")
    code, out, err = _cli(monkeypatch, capsys, "config", "show", "database", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["values"]["database.url"] == {
        "value": "postgresql://crossmargin:***@db.internal:5432/cm",
        "source": "env CROSSMARGIN_DATABASE_URL",
    }
    monkeypatch.setenv("COLUMNS", "200")  # the table folds long values otherwise
    code, out, _ = _cli(monkeypatch, capsys, "config", "show", "database")
    assert code == 0 and "crossmargin:***@db.internal" in out
    assert PASSWORD not in out.replace("\n", "").replace("│", "").replace(" ", "")


def test_unreachable_server_error_from_config_never_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(f'[database]\nurl = "postgresql://cm:{PASSWORD}@127.0.0.1:{port}/cm"\n')
        monkeypatch.setenv("CROSSMARGIN_SECRETS_FILE", str(secrets))
        with pytest.raises(StorageError) as info:
            open_database(load_config().settings)
    assert PASSWORD not in str(info.value) and "cm:***@127.0.0.1" in str(info.value)


def test_bad_url_in_config_error_does_not_echo_it(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[database]\nurl = 42\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert "database.url" in str(info.value) and "42" not in str(info.value)


def test_retention_defaults_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = load_config().settings.database.retention
    assert RetentionPolicy.from_settings(default) == RetentionPolicy()
    config = tmp_path / "config.toml"
    config.write_text('[database.retention]\nkeep_all = "36h"\nkeep_hourly = 30\nkeep_daily = "400d"\n')
    policy = RetentionPolicy.from_settings(load_config(config).settings.database.retention)
    assert policy == RetentionPolicy(timedelta(hours=36), timedelta(days=30), timedelta(days=400))
    monkeypatch.setenv("CROSSMARGIN__DATABASE__RETENTION__KEEP_DAILY", "forever")
    assert load_config(config).settings.database.retention.keep_daily is None


@pytest.mark.parametrize(
    ("body", "key", "needle"),
    [
        ('keep_all = "-1d"', "database.retention.keep_all", "cannot be negative"),
        ("keep_hourly = -3", "database.retention.keep_hourly", "cannot be negative"),
        ('keep_all = "10d"\nkeep_hourly = "5d"', "database.retention", "keep_hourly (5 days) is shorter than keep_all"),
        ('keep_daily = "30d"', "database.retention", "keep_daily (30 days) is shorter than keep_hourly (90 days)"),
        ('keep_all = "a week"', "database.retention.keep_all", "is not a duration"),
        ('keep_forever = "1d"', "database.retention.keep_forever", "unknown key"),
    ],
)
def test_bad_retention_is_a_clear_config_error(tmp_path: Path, body: str, key: str, needle: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[database.retention]\n{body}\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    message = str(info.value)
    assert needle in message and key in message and str(config) in message


def test_configured_retention_drives_the_job(tmp_path: Path) -> None:
    """Snapshots 1, 2 and 3 days old (``now`` at midnight UTC). With every age 12h the daily cut-off is
    the start of yesterday: the two older ones are deleted with their scan rows, yesterday's stays
    (as an hourly point). With the defaults nothing would be deleted."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = open_database(environ={"CROSSMARGIN_DATABASE_URL": url})
    now = f.T0 + timedelta(days=10)
    _fill(engine, [now - timedelta(days=3), now - timedelta(days=2), now - timedelta(days=1)])
    config = tmp_path / "config.toml"
    config.write_text('[database.retention]\nkeep_all = "12h"\nkeep_hourly = "12h"\nkeep_daily = "12h"\n')
    policy = RetentionPolicy.from_settings(load_config(config).settings.database.retention)
    assert run_retention(engine, RetentionPolicy(), now).snapshots_deleted == 0
    report = run_retention(engine, policy, now)
    assert [p.taken_at for p in chf_history(engine, "fund")] == [now - timedelta(days=1)]
    assert report.snapshots_deleted == 2 and report.scans_deleted == 2 and report.seconds > 0
    assert "2 snapshots deleted" in report.summary()
    engine.dispose()
