"""``crossmargin alerts test | list | ack | silence | unsilence | retry`` end to end: a real SQLite file,
the config from a user file plus secrets from a secrets file, a local receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.alerts.decide import decide_alerts
from aggregator.cli import app
from aggregator.cli.app import run
from aggregator.config import load_config
from aggregator.db import Repository, open_database
from aggregator.db import outbox_store as ob
from tests.unit.alerts.builders import T0, account, assessment
from tests.unit.alerts.fake_apis import FakeApis, fake_apis, slack

CANARY = "CANARYcli91"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApis]:
    with fake_apis() as apis:
        config = tmp_path / "config.toml"
        config.write_text(
            "[alerts.channels.hook]\n"
            'type = "webhook"\n'
            "allow_private = true\n"
            "[alerts.channels.team]\n"
            'type = "slack"\n'
            "allow_private = true\n"
            "[[alerts.rules]]\n"
            'name = "health"\n'
            'metric = "account_health"\n'
            "warning = 1.5\n"
            'channels = ["hook"]\n'
        )
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            "[alerts.channels.hook]\n"
            f'webhook_url = "{apis.url}/hook?key={CANARY}"\n'
            "[alerts.channels.team]\n"
            f'webhook_url = "{apis.url}/services/T/B/{CANARY}"\n'
        )
        monkeypatch.setenv("CROSSMARGIN_CONFIG", str(config))
        monkeypatch.setenv("CROSSMARGIN_SECRETS_FILE", str(secrets))
        monkeypatch.setenv("CROSSMARGIN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
        yield apis


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["crossmargin", "alerts", *args])
    code = run(app)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert CANARY not in text
    return code, text


def test_alerts_test_sends_and_reports_without_the_secret(
    env: FakeApis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(monkeypatch, capsys, "test", "hook")
    assert code == 0 and "hook (webhook): sent (HTTP 200)" in out
    [request] = env.of("webhook")
    assert request["json"]["title"].startswith("TEST")
    env.script("slack", slack(404, f"channel_not_found {CANARY}"))
    code, out = cli(monkeypatch, capsys, "test", "team", "--json")
    assert code != 0
    doc = json.loads(out[: out.rindex("}") + 1])
    assert doc["outcome"] == "permanent" and doc["status_code"] == 404
    code, out = cli(monkeypatch, capsys, "test", "hoook")
    assert code == 2 and "did you mean 'hook'" in out


def test_list_ack_silence_unsilence_retry(
    env: FakeApis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_config().settings
    engine = open_database(settings)
    acct = account()
    outcome = decide_alerts(
        settings.alerts,
        portfolio="fund",
        accounts=[acct],
        assessment=assessment([acct], [1.1]),
        previous={},
        now=T0,
    )
    Repository(engine).store_alert_outcome("fund", outcome)
    with engine.begin() as conn:  # make the row a dead letter
        conn.exec_driver_sql("UPDATE outbox SET status = 'dead', last_error = 'HTTP 503'")
    code, out = cli(monkeypatch, capsys, "list", "--json")
    assert code == 0
    doc = json.loads(out)
    [firing] = doc["firing"]
    assert firing["rule"] == "health" and firing["tier"] == "warning" and firing["account"] == acct.key
    assert [d["status"] for d in doc["dead_letters"]] == ["dead"]
    code, out = cli(monkeypatch, capsys, "list")
    assert code == 0 and "Firing alerts" in out and "Dead letters" in out

    code, out = cli(monkeypatch, capsys, "ack", str(firing["id"]))
    assert code == 0 and "acknowledged health (warning)" in out
    assert Repository(engine).load_alert_states("fund")[("health", "fund", acct.key)].acknowledged
    code, out = cli(monkeypatch, capsys, "ack", "9999")
    assert code == 2

    code, out = cli(monkeypatch, capsys, "silence", "health", "--for", "2h", "--portfolio", "fund")
    assert code == 0 and "silenced health on portfolio fund" in out
    assert ("health", "fund", "*") in Repository(engine).load_alert_states("fund")
    code, out = cli(monkeypatch, capsys, "silence", "helth", "--for", "2h")
    assert code == 2 and "did you mean 'health'" in out
    code, out = cli(monkeypatch, capsys, "silence", "health", "--for", "soon")
    assert code == 2 and "not a duration" in out
    code, out = cli(monkeypatch, capsys, "unsilence", "health")
    assert code == 0 and "lifted 1 silence" in out

    [dead] = doc["dead_letters"]
    code, out = cli(monkeypatch, capsys, "retry", str(dead["id"]))
    assert code == 0
    assert [r["status"] for r in ob.outbox_rows(engine)] == ["pending"]
    engine.dispose()


def test_help_has_examples(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("test", "list", "ack", "silence", "unsilence", "retry"):
        code, out = cli(monkeypatch, capsys, command, "--help")
        assert code == 0 and "Examples" in out and "crossmargin alerts" in out
