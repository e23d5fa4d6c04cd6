"""The devnet state file: what ``crossmargin devnet up`` started and deployed, read by every other
``devnet`` command (price, warp, status, down) and by tests.

JSON at ``$XDG_DATA_HOME/crossmargin/devnet/state.json`` unless a path is given. It holds PIDs (only
processes the devnet itself started), URLs, every contract address, the wallets and the current
factor prices. The only secrets are the devnet's own throwaway Aevo / Deribit credentials
(``credentials``: random per devnet, valid only on its 127.0.0.1 venue server), so the file is written
with mode 0600 and ``credentials`` is left out of the dataclass repr.

Older state files that kept the GMX deployment under ``venues["gmx_v2"]`` are read into ``gmx``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aggregator.devnet.paths import default_state_path
from aggregator.errors import InputError

__all__ = ["DevnetNotRunning", "DevnetState", "load_state", "remove_state", "save_state", "write_private"]

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
    #: GMX v2 stand-ins (``gmx.deploy_and_seed``: GmxDeployment fields + positions + tickers_url)
    gmx: dict[str, Any] | None = None
    #: the Aevo / Deribit server (``python -m aggregator.devnet.venues.aevo``): base URL and PID
    cred_api_url: str | None = None
    cred_venue_pid: int | None = None
    #: venue -> its throwaway credentials on the devnet (``[venues.<v>]`` secret keys), see the docstring
    credentials: dict[str, dict[str, str]] | None = field(default=None, repr=False)
    #: the devnet secrets file written next to the user config (``user_config.write_user_config``)
    secrets_path: str | None = None
    notes: list[str] = field(default_factory=list)
    config_path: str | None = None
    log_dir: str | None = None
    version: int = STATE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DevnetState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        venues = known.get("venues")
        if known.get("gmx") is None and isinstance(venues, dict) and "gmx_v2" in venues:
            venues = dict(venues)
            known["gmx"] = venues.pop("gmx_v2")  # state files written before the ``gmx`` field
            known["venues"] = venues
        return cls(**known)


def save_state(state: DevnetState, path: Path | None = None) -> Path:
    """Write atomically (temporary file + rename) so a reader never sees half a file; mode 0600
    (the file holds the devnet's throwaway venue credentials)."""
    target = path or default_state_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    write_private(tmp, state.to_json())
    os.replace(tmp, target)
    return target


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600, also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


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
