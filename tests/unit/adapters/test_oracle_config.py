"""``[chains.<name>] oracle_heartbeat_seconds`` and ``[chains.<name>.oracle_heartbeats]``: loading
through the layered config, per-token resolution, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.specs import ChainSpec
from aggregator.config import load_config
from aggregator.errors import ConfigError

WBTC = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
CHAIN = """
[chains.devnet]
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545"]
"""


def load(tmp_path: Path, extra: str) -> ChainSpec:
    path = tmp_path / "config.toml"
    path.write_text(CHAIN + extra)
    return load_config(path, environ={}).settings.chains["devnet"]


def error(tmp_path: Path, extra: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    return info.value


def test_default_heartbeat_is_one_day_on_every_shipped_chain() -> None:
    chains = load_config(environ={}).settings.chains
    assert chains
    for spec in chains.values():
        assert spec.oracle_heartbeat_seconds == 86_400
        assert spec.oracle_heartbeat_for("USDC", WBTC) == 86_400


def test_overrides_by_address_then_symbol_then_the_chain_default(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        f"""oracle_heartbeat_seconds = 3600
[chains.devnet.oracle_heartbeats]
USDC = 86400
WBTC = 1200
"{WBTC.lower()}" = 7200
""",
    )
    assert spec.oracle_heartbeat_for("USDC") == 86_400
    assert spec.oracle_heartbeat_for("usdc", "0x" + "1" * 40) == 86_400  # symbols are case-insensitive
    assert spec.oracle_heartbeat_for("WBTC", WBTC) == 7_200  # the address is more specific
    assert spec.oracle_heartbeat_for("WBTC", "0x" + "2" * 40) == 1_200  # another token named WBTC
    assert spec.oracle_heartbeat_for("WETH", "0x" + "3" * 40) == 3_600
    assert spec.oracle_heartbeat_for(None, None) == 3_600


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("oracle_heartbeat_seconds = 0\n", "chains.devnet.oracle_heartbeat_seconds", "greater than 0"),
        ("oracle_heartbeat_seconds = -60\n", "chains.devnet.oracle_heartbeat_seconds", "greater than 0"),
        ('oracle_heartbeat_seconds = "1h"\n', "chains.devnet.oracle_heartbeat_seconds", "integer"),
        ("[chains.devnet.oracle_heartbeats]\nUSDC = 0\n", "chains.devnet.oracle_heartbeats.USDC", "greater than 0"),
        ("[chains.devnet.oracle_heartbeats]\n0x1234 = 60\n", "chains.devnet.oracle_heartbeats", "0x1234"),
        (
            "[chains.devnet.oracle_heartbeats]\nUSDC = 60\nusdc = 120\n",
            "chains.devnet.oracle_heartbeats",
            "name the same token",
        ),
    ],
)
def test_bad_heartbeats_are_refused_naming_the_key(tmp_path: Path, extra: str, key: str, words: str) -> None:
    exc = error(tmp_path, extra)
    assert exc.key == key, (exc.key, str(exc))
    assert words in str(exc)


def test_a_misspelled_key_suggests_the_real_one(tmp_path: Path) -> None:
    exc = error(tmp_path, "oracle_heartbeat = 3600\n")
    assert exc.key == "chains.devnet.oracle_heartbeat"
    assert "oracle_heartbeat_seconds" in str(exc) or "oracle_heartbeats" in str(exc)
