"""The user config TOML that points crossmargin at a running devnet.

Shape (the public config contract in README.md; family fields from ``adapters/specs.py``)::

    [chains.devnet]                      chain_id 31337, the anvil RPC URL, Multicall3, 1 s blocks
    [deployments.aave_v3.devnet]         pool_addresses_provider
    [deployments.morpho_blue.devnet]     morpho, start_block, markets        (when deployed)
    [deployments.compound_v3.devnet_usdc]  comet, base_symbol                (when deployed)
    [venues.<name>]                      api_url of the local venue server   (when running), and
                                         ``accounts`` (wallet -> dYdX ``dydx1...`` address)

Every value is an address, a URL, a number or a list of those, so the TOML is written directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aggregator.devnet.state import DevnetState

__all__ = ["DEVNET_CHAIN", "default_config_path", "render_user_config", "write_user_config"]

DEVNET_CHAIN = "devnet"


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
    venues = state.venues or {}
    accounts: dict[str, dict[str, list[str]]] = venues.get("accounts", {})
    for venue, url in sorted(venues.get("api_urls", {}).items()):
        fields: dict[str, Any] = {"api_url": url, "accounts": accounts.get(venue)}
        tables.append(_table(f"venues.{venue}", fields))
    return "\n\n".join(tables) + "\n"


def default_config_path(state_path: Path) -> Path:
    """``config.toml`` next to the state file."""
    return state_path.parent / "config.toml"


def write_user_config(state: DevnetState, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_user_config(state))
    return path
