"""The devnet state file: what ``crossmargin devnet up`` started and deployed, read by every other
``devnet`` command (price, warp, status, down) and by tests.

JSON at ``$XDG_DATA_HOME/crossmargin/devnet/state.json`` unless a path is given. It holds PIDs (only
processes the devnet itself started), URLs, every contract address, the wallets and the current
factor prices. No secrets: the dev accounts are anvil's public well-known ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aggregator.devnet.paths import default_state_path
from aggregator.errors import InputError

__all__ = ["DevnetNotRunning", "DevnetState", "load_state", "remove_state", "save_state"]

STATE_VERSION = 1


class DevnetNotRunning(InputError):
    """No devnet state file, or its processes are gone."""


@dataclass
class DevnetState:
    rpc_url: str
    chain_id: int
    multicall3: str
    tokens: dict[str, str]
    wallets: dict[str, str]
    factor_prices: dict[str, str]  # factor -> USD price as a decimal string
    aave: dict[str, Any]
    seed_block: int
    anvil_pid: int | None = None
    api_url: str | None = None
    venue_pid: int | None = None
    morpho: dict[str, Any] | None = None
    comet: dict[str, Any] | None = None
    venues: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    config_path: str | None = None
    log_dir: str | None = None
    version: int = STATE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DevnetState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def save_state(state: DevnetState, path: Path | None = None) -> Path:
    """Write atomically (temporary file + rename) so a reader never sees half a file."""
    target = path or default_state_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, target)
    return target


def load_state(path: Path | None = None) -> DevnetState:
    """Read the state file; a clear :class:`DevnetNotRunning` when it is missing or unreadable."""
    source = path or default_state_path()
    if not source.is_file():
        raise DevnetNotRunning(
            f"the devnet is not up (no state file at {source}): run `crossmargin devnet up`"
        )
    try:
        data = json.loads(source.read_text())
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r}, expected {STATE_VERSION}")
        return DevnetState.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise DevnetNotRunning(
            f"the devnet state file {source} is unreadable ({exc}): run `crossmargin devnet down`, then `up`"
        ) from exc


def remove_state(path: Path | None = None) -> None:
    (path or default_state_path()).unlink(missing_ok=True)
