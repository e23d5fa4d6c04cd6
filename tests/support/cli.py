"""Run ``crossmargin`` in-process with test-double venue adapters (nothing leaves the machine):
``FakeHttpAdapter`` is the base of a double, ``register`` puts doubles in ``adapters.registry.REGISTRY``
under their ``family`` for the test, and ``run_cli`` runs the typer app on ``argv`` and returns
``(exit code, stdout, stderr)``."""

from __future__ import annotations

import sys
from typing import ClassVar, Literal

import pytest

from adapters.base import VenueAdapter
from adapters.registry import REGISTRY
from aggregator.cli import app
from aggregator.cli.app import run

__all__ = ["FakeHttpAdapter", "register", "run_cli"]


class FakeHttpAdapter(VenueAdapter):
    """A test double's base: an HTTP family (no block pinned), no capabilities."""

    kind: ClassVar[Literal["evm", "http"]] = "http"
    capabilities: ClassVar[frozenset[str]] = frozenset()


def register(monkeypatch: pytest.MonkeyPatch, *adapters: type[VenueAdapter]) -> None:
    """Each adapter in the registry under its ``family`` until the test ends."""
    for adapter in adapters:
        monkeypatch.setitem(REGISTRY, adapter.family, adapter)


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``crossmargin *args`` in-process (250 columns): ``(exit code, stdout, stderr)``."""
    monkeypatch.setattr(sys, "argv", ["crossmargin", *args])
    monkeypatch.setenv("COLUMNS", "250")
    code = run(app)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
