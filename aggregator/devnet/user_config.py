"""The user config TOML that points crossmargin at a running devnet.

Shape (the public config contract in README.md; family fields from ``adapters/specs.py``)::

    [chains.devnet]                      chain_id 31337, the anvil RPC URL, Multicall3, 1 s blocks,
                                         ``tokens`` (the devnet ERC-20s: idle wallet balances)
    [deployments.aave_v3.devnet]         pool_addresses_provider
    [deployments.morpho_blue.devnet]     morpho, start_block, markets        (when deployed)
    [deployments.compound_v3.devnet_usdc]  comet, base_symbol                (when deployed)
    [deployments.gmx_v2.devnet]          reader, data_store, referral_storage, tickers_url (with venues)
    [venues.<name>]                      api_url of the local venue server   (when running), and
                                         ``accounts`` (wallet -> dYdX ``dydx1...`` address, Deribit
                                         username); ``aevo`` / ``deribit`` on the Aevo/Deribit server

The config file may hold no secret (``aggregator.config`` refuses them), so the devnet's throwaway
Aevo / Deribit credentials (``state.credentials``) go to a secrets file next to it
(``secrets.toml``, mode 0600: ``[venues.aevo] api_key, api_secret``, ``[venues.deribit] client_id,
client_secret``), used with ``CROSSMARGIN_SECRETS_FILE``. ``write_user_config`` writes both and puts
the ``export CROSSMARGIN_CONFIG=... CROSSMARGIN_SECRETS_FILE=...`` line in the config's header and in
``state.notes`` (which ``crossmargin devnet up`` prints).

Every value is an address, a URL, a number or a list of those, so the TOML is written directly.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from aggregator.devnet.state import DevnetState, write_private

__all__ = [
    "DEVNET_CHAIN",
    "SECRETS_NOTE_PREFIX",
    "default_config_path",
    "default_secrets_path",
    "render_secrets",
    "render_user_config",
    "usage_line",
    "write_user_config",
]

SECRETS_NOTE_PREFIX = "scan the devnet with: "

DEVNET_CHAIN = "devnet"
DEVNET_RATE_LIMIT = 500  # requests per second to each local venue server


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string for these characters
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to the devnet config")


def _table(name: str, fields: dict[str, Any]) -> str:
    lines = [f"[{name}]"] + [f"{key} = {_value(val)}" for key, val in fields.items() if val is not None]
    return "\n".join(lines)


def render_user_config(state: DevnetState) -> str:
    """The TOML text for ``state``."""
    tables = [
        "# Written by `crossmargin devnet up`: points crossmargin at the local devnet.",
        _table(
            f"chains.{DEVNET_CHAIN}",
            {
                "chain_id": state.chain_id,
                "rpc_urls": [state.rpc_url],
                "multicall3": state.multicall3,
                "block_time_seconds": 1.0,
                # the devnet tokens whose idle wallet balances are read (adapters.wallet_balances)
                "tokens": dict(sorted(state.tokens.items())) or None,
            },
        ),
        _table(
            f"deployments.aave_v3.{DEVNET_CHAIN}",
            {
                "chain": DEVNET_CHAIN,
                "label": "Aave V3 devnet (v3.0.2)",
                "pool_addresses_provider": state.aave["pool_addresses_provider"],
            },
        ),
    ]
    if state.morpho:
        tables.append(
            _table(
                f"deployments.morpho_blue.{DEVNET_CHAIN}",
                {
                    "chain": DEVNET_CHAIN,
                    "label": "Morpho Blue devnet",
                    "morpho": state.morpho["morpho"],
                    "start_block": 0,
                    "markets": [m["id"] for m in state.morpho.get("markets", {}).values()],
                },
            )
        )
    if state.comet:
        base = state.comet["base"]
        tables.append(
            _table(
                f"deployments.compound_v3.{DEVNET_CHAIN}_{base.lower()}",
                {
                    "chain": DEVNET_CHAIN,
                    "label": f"Compound V3 stand-in c{base}v3 (devnet)",
                    "comet": state.comet["comet"],
                    "base_symbol": base,
                },
            )
        )
    gmx = state.gmx
    if gmx:
        tables.append(
            _table(
                f"deployments.gmx_v2.{DEVNET_CHAIN}",
                {
                    "chain": DEVNET_CHAIN,
                    "label": "GMX v2 Reader stand-in (devnet)",
                    "reader": gmx["reader"],
                    "data_store": gmx["data_store"],
                    "referral_storage": gmx["referral_storage"],
                    "tickers_url": gmx["tickers_url"],
                },
            )
        )
    venues = state.venues or {}
    accounts: dict[str, dict[str, list[str]]] = venues.get("accounts", {})
    for venue, url in sorted(venues.get("api_urls", {}).items()):
        # the local servers take far more than the public APIs' limits (config/venues.toml): a devnet
        # watch of many wallets is not throttled to mainnet pace
        fields: dict[str, Any] = {
            "api_url": url,
            "accounts": accounts.get(venue),
            "rate_limit": {"requests": DEVNET_RATE_LIMIT, "per_seconds": 1.0},
        }
        tables.append(_table(f"venues.{venue}", fields))
    return "\n\n".join(tables) + "\n"


def render_secrets(state: DevnetState) -> str:
    """The secrets TOML: each venue's throwaway credentials on the devnet (empty without any)."""
    tables = [
        _table(f"venues.{venue}", dict(creds)) for venue, creds in sorted((state.credentials or {}).items())
    ]
    if not tables:
        return ""
    header = "# Written by `crossmargin devnet up`: the devnet's throwaway venue credentials (127.0.0.1)."
    return "\n\n".join([header, *tables]) + "\n"


def default_config_path(state_path: Path) -> Path:
    """``config.toml`` next to the state file."""
    return state_path.parent / "config.toml"


def default_secrets_path(config_path: Path) -> Path:
    """``secrets.toml`` next to the user config."""
    return config_path.parent / "secrets.toml"


def usage_line(config_path: Path, secrets_path: Path | None) -> str:
    """The shell line that makes ``crossmargin scan`` (etc.) use the devnet config and secrets."""
    line = f"export CROSSMARGIN_CONFIG={shlex.quote(str(config_path))}"
    if secrets_path is not None:
        line += f" CROSSMARGIN_SECRETS_FILE={shlex.quote(str(secrets_path))}"
    return line


def write_user_config(state: DevnetState, path: Path) -> Path:
    """Write the config to ``path`` and, when the devnet has venue credentials, ``secrets.toml`` next
    to it (mode 0600); records ``state.secrets_path`` and the usage line in ``state.notes``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets_text = render_secrets(state)
    secrets_path = default_secrets_path(path) if secrets_text else None
    if secrets_path is not None:
        write_private(secrets_path, secrets_text)
    state.secrets_path = str(secrets_path) if secrets_path is not None else None
    usage = usage_line(path, secrets_path)
    header = f"# Use it with: {usage}\n"
    if secrets_path is not None:
        header += "# (Aevo / Deribit credentials are in the secrets file: a config file holds no secret)\n"
    path.write_text(header + render_user_config(state))
    state.notes[:] = [n for n in state.notes if not n.startswith(SECRETS_NOTE_PREFIX)]
    state.notes.append(SECRETS_NOTE_PREFIX + usage)
    return path
