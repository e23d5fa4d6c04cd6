"""Filesystem locations of the devnet: the npm install (``devnet/`` at the repository root), the anvil
binary shipped by ``@foundry-rs/anvil-linux-amd64``, the build cache ``devnet/.cache/`` and the default
state file ``$XDG_DATA_HOME/crossmargin/devnet/state.json``.

``CROSSMARGIN_DEVNET_DIR`` overrides the npm directory (for an installed package outside the repo).
"""

from __future__ import annotations

import os
from pathlib import Path

from aggregator.errors import ConfigError

__all__ = [
    "anvil_binary",
    "cache_dir",
    "default_state_path",
    "devnet_dir",
    "node_modules",
]

_REPO_ROOT = Path(__file__).resolve().parents[2]


def devnet_dir() -> Path:
    """The directory holding ``package.json`` and ``node_modules`` for the devnet."""
    override = os.environ.get("CROSSMARGIN_DEVNET_DIR")
    return Path(override) if override else _REPO_ROOT / "devnet"


def node_modules() -> Path:
    """``devnet/node_modules``; a clear error naming the install command when it is missing."""
    path = devnet_dir() / "node_modules"
    if not path.is_dir():
        raise ConfigError(
            f"{path} is missing: run `make setup` (or `npm ci --no-audit --no-fund` in {devnet_dir()})",
            source="devnet",
        )
    return path


def anvil_binary() -> Path:
    """The anvil executable from the ``@foundry-rs/anvil-linux-amd64`` npm package."""
    path = node_modules() / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not path.is_file():
        raise ConfigError(f"anvil binary not found at {path}: run `make setup`", source="devnet")
    return path


def cache_dir() -> Path:
    """``devnet/.cache`` (gitignored): linked bytecode and compiled artifacts keyed by content hash."""
    path = devnet_dir() / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_state_path() -> Path:
    """``$XDG_DATA_HOME/crossmargin/devnet/state.json`` (``~/.local/share`` when XDG_DATA_HOME is unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crossmargin" / "devnet" / "state.json"
