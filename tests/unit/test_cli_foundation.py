"""The CLI skeleton as a user meets it: version, config show, error lines and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_config import DEVNET


def crossmargin(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ) | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_version_and_help() -> None:
    assert crossmargin("version").stdout.startswith("crossmargin ")
    helped = crossmargin("--help")
    assert helped.returncode == 0
    assert "config" in helped.stdout


def test_config_show_without_user_config_lists_defaults_with_sources() -> None:
    result = crossmargin("config", "show", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    entry = doc["values"]["chains.ethereum.chain_id"]
    assert entry == {"value": 1, "source": "default (chains.toml)"}


def test_config_show_with_user_config_and_redacted_secret(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(DEVNET)
    result = crossmargin(
        "config",
        "show",
        "--json",
        "--config",
        str(path),
        env_extra={"CROSSMARGIN__VENUES__AEVO__API_KEY": "canary-5ecret-7781"},
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["values"]["chains.devnet.chain_id"]["source"] == str(path)
    assert "canary-5ecret-7781" not in result.stdout
    assert doc["values"]["venues.aevo.api_key"]["value"] == "****7781"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (DEVNET.replace("rpc_urls", "rpc_url"), "did you mean 'rpc_urls'"),
        ("not = [toml", "not valid TOML"),
    ],
)
def test_bad_config_exits_2_with_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    result = crossmargin("config", "show", "--config", str(path))
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = crossmargin("config", "shw")
    assert result.returncode == 2
