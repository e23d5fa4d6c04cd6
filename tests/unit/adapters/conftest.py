"""Shared pieces of the adapter golden tests: the shipped asset map and the fixture loader."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from adapters.assets import AssetInfo, AssetMap
from risk.model import FactorId

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"


def load_fixture(venue: str, name: str) -> Any:
    return json.loads((FIXTURES / venue / name).read_text())


def shipped_assets() -> AssetMap:
    data = tomllib.loads((ROOT / "config" / "assets.toml").read_text())["assets"]
    return AssetMap(
        {
            symbol: AssetInfo(
                factor=FactorId(spec["factor"]),
                basis=FactorId(spec["basis"]) if spec.get("basis") else None,
            )
            for symbol, spec in data.items()
        }
    )


@pytest.fixture
def assets() -> AssetMap:
    return shipped_assets()
