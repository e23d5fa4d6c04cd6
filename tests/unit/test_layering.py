"""The layering contract (design section 2): risk imports nothing of ours and does no I/O;
adapters never import aggregator. Checked on the source with ast, so it cannot be fooled by
lazy imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "risk": {
        "adapters",
        "aggregator",
        "httpx",
        "web3",
        "eth_abi",
        "sqlalchemy",
        "pydantic",
        "socket",
        "asyncio",
        "logging",
        "typer",
        "rich",
        "requests",
        "urllib",
        "subprocess",
    },
    "adapters": {"aggregator"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found for {package}"
    violations = {str(f.relative_to(ROOT)): sorted(imported_modules(f) & FORBIDDEN[package]) for f in files}
    violations = {f: mods for f, mods in violations.items() if mods}
    assert violations == {}


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from aggregator.config import load_config\n    import httpx\n")
    assert {"aggregator", "httpx"} <= imported_modules(bad)
