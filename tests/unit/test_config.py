"""Config layering, validation and error messages (file, key path, "did you mean")."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import DEFAULTS_DIR, load_config
from aggregator.errors import ConfigError

DEVNET = """
[chains.devnet]
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545"]
multicall3 = "0xcA11bde05977b3631167028862bE2a173976CA11"

[deployments.aave_v3.devnet]
chain = "devnet"
pool_addresses_provider = "0x2f39d218133afab8f2b819b1066c7e434ad94e9e"

[venues.hyperliquid]
api_url = "http://127.0.0.1:9100"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_defaults_load_and_cover_the_main_chains() -> None:
    loaded = load_config()
    chains = loaded.settings.chains
    assert {"ethereum", "arbitrum", "optimism", "base", "polygon", "avalanche"} <= set(chains)
    assert chains["arbitrum"].chain_id == 42161
    assert loaded.settings.deployments.aave_v3["ethereum"].chain == "ethereum"
    assert loaded.settings.assets["wstETH"].basis == "wstETH/ETH"
    assert len(loaded.settings.risk.named_scenarios) >= 3
    assert all(f.is_relative_to(DEFAULTS_DIR) for f in loaded.files)


def test_every_shipped_deployment_points_at_a_shipped_chain() -> None:
    settings = load_config().settings
    assert settings.dangling_chain_references() == []


def test_user_file_adds_a_chain_and_overrides_a_venue(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, DEVNET))
    settings = loaded.settings
    assert settings.chains["devnet"].chain_id == 31337
    assert settings.chains["ethereum"].chain_id == 1  # defaults still there
    assert str(settings.venues.hyperliquid.api_url).startswith("http://127.0.0.1:9100")  # type: ignore[union-attr]
    # addresses are checksummed on the way in
    assert settings.deployments.aave_v3["devnet"].pool_addresses_provider == (
        "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"
    )
    assert loaded.sources["chains.devnet.chain_id"] == str(tmp_path / "config.toml")
    assert loaded.sources["chains.ethereum.chain_id"].startswith("default")


def test_config_file_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSMARGIN_CONFIG", str(write(tmp_path, DEVNET)))
    assert "devnet" in load_config().settings.chains


def test_default_user_file_in_xdg_config_home(clean_environment: Path) -> None:
    path = clean_environment / ".config" / "crossmargin" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(DEVNET)
    assert "devnet" in load_config().settings.chains


def test_rpc_environment_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSMARGIN_RPC_ETHEREUM", "http://127.0.0.1:1, http://127.0.0.1:2")
    loaded = load_config()
    assert loaded.settings.chains["ethereum"].rpc_urls == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    assert loaded.sources["chains.ethereum.rpc_urls"] == "env CROSSMARGIN_RPC_ETHEREUM"


def test_typo_names_file_key_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, DEVNET.replace("rpc_urls", "rpc_url"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "chains.devnet.rpc_url" in message
    assert "did you mean 'rpc_urls'" in message


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("[chians.x]\nchain_id = 1\n", "chians", "chains"),
        ("[deployments.aave_v4.x]\nchain='ethereum'\n", "deployments.aave_v4", "aave_v3"),
        ("[venues.hyperliqid]\napi_url='http://127.0.0.1:1'\n", "venues.hyperliqid", "hyperliquid"),
        ("[risk]\nmc_path = 5\n", "risk.mc_path", "mc_paths"),
        (
            "[deployments.aave_v3.x]\nchain='ethereum'\npool_address_provider='0x2f39d218133afab8f2b819b1066c7e434ad94e9e'\n",
            "deployments.aave_v3.x.pool_address_provider",
            "pool_addresses_provider",
        ),
    ],
)
def test_unknown_keys_everywhere(tmp_path: Path, text: str, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert key in str(info.value)
    assert f"did you mean '{hint}'" in str(info.value)


def test_bad_value_names_the_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[risk]\nmc_paths = -5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "risk.mc_paths" in str(info.value)
    assert str(path) in str(info.value)


def test_bad_address_is_named(tmp_path: Path) -> None:
    text = DEVNET.replace(
        "0x2f39d218133afab8f2b819b1066c7e434ad94e9e", "0x2F39d218133afab8f2b819b1066c7e434ad94e9e"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "pool_addresses_provider" in str(info.value)
    assert "checksum" in str(info.value)


def test_unknown_chain_reference(tmp_path: Path) -> None:
    path = write(tmp_path, DEVNET.replace('chain = "devnet"', 'chain = "devnt"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "did you mean 'devnet'" in str(info.value)
    assert str(path) in str(info.value)


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[chains.devnet\nchain_id = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "not valid TOML" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_secrets_refused_in_config_file_and_accepted_from_secrets_file_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[venues.aevo]\napi_key = 'k-123456789'\n"))
    assert "CROSSMARGIN__VENUES__AEVO__API_KEY" in str(info.value)
    assert "k-123456789" not in str(info.value)

    secrets = write(tmp_path, "[venues.aevo]\napi_key = 'from-file-secret'\n", "secrets.toml")
    monkeypatch.setenv("CROSSMARGIN_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("CROSSMARGIN__VENUES__AEVO__API_SECRET", "from-env-secret")
    loaded = load_config()
    aevo = loaded.settings.venues.aevo
    assert aevo is not None and aevo.api_key is not None and aevo.api_secret is not None
    assert aevo.api_key.get_secret_value() == "from-file-secret"
    assert aevo.api_secret.get_secret_value() == "from-env-secret"
    assert "from-file-secret" not in repr(loaded.settings)


def test_alert_rule_typo_names_file_and_rule_index(tmp_path: Path) -> None:
    path = write(tmp_path, '[alerts.channels.ops]\ntype = "slack"\n[[alerts.rules]]\nname = "chf"\n'
                 'metric = "chf"\nwarnig = 1.2\nchannels = ["ops"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "alerts.rules.0.warnig" in str(info.value)
    assert "did you mean 'warning'" in str(info.value)
    assert str(path) in str(info.value)
