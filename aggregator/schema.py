"""JSON Schemas of the machine-readable documents, exported from their pydantic models.

* ``docs/scan-schema.json``: ``crossmargin scan --json`` (``aggregator.report.ScanReport``);
* ``docs/assess-schema.json``: ``crossmargin assess --json`` (``aggregator.report_composite.AssessReport``).

Both are JSON Schema draft 2020-12 as pydantic generates them in validation mode, with one change:
exact decimals (``Decimal`` fields) are ``{"type": "number"}``, because the wire format writes them as
JSON numbers with their exact digits (``aggregator.report``), never as strings. ``+inf`` health is
``null`` (see ``docs/scan-json.md``).

Regenerate after changing a model: ``python -m aggregator.schema --write`` (or
``crossmargin schema --write``). ``tests/unit/test_schema.py`` fails while the committed files differ
from the models. Adding optional keys keeps ``schema_version`` "1"; renaming or removing a key,
changing a type or a meaning is a breaking change: bump ``SCHEMA_VERSION`` in ``aggregator/report.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from aggregator.report import SCHEMA_VERSION, ScanReport
from aggregator.report_composite import AssessReport

__all__ = ["DOCS_DIR", "SCHEMAS", "check", "main", "render", "schema_of", "write"]

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"

SCHEMAS: dict[str, tuple[type[BaseModel], str, str]] = {
    "scan": (ScanReport, "scan-schema.json", "crossmargin scan --json"),
    "assess": (AssessReport, "assess-schema.json", "crossmargin assess --json"),
}
"""name -> (model, file under docs/, the command that prints the document)."""


class _Generator(GenerateJsonSchema):
    """Decimals are JSON numbers on the wire (exact digits), not strings."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        return {"type": "number"}


def schema_of(name: str) -> dict[str, Any]:
    model, _file, command = SCHEMAS[name]
    schema = model.model_json_schema(schema_generator=_Generator, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"The document printed by `{command}` (schema_version {SCHEMA_VERSION}). Generated from "
            "the pydantic models by `python -m aggregator.schema --write`; do not edit by hand. "
            "Health-like figures are null for +inf (no requirement); see docs/scan-json.md."
        ),
        **schema,
    }


def render(name: str) -> str:
    return json.dumps(schema_of(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """Write every schema file; returns the paths written."""
    paths = []
    for name, (_model, file, _command) in SCHEMAS.items():
        path = docs_dir / file
        path.write_text(render(name))
        paths.append(path)
    return paths


def check(docs_dir: Path = DOCS_DIR) -> list[str]:
    """One line per schema file that is missing or differs from the models (empty: all current)."""
    problems = []
    for name, (_model, file, _command) in SCHEMAS.items():
        path = docs_dir / file
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text() != render(name):
            problems.append(f"{path}: differs from the {name} models")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aggregator.schema", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write docs/*-schema.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed schema is stale")
    parser.add_argument("name", nargs="?", choices=sorted(SCHEMAS), help="print one schema")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"wrote {path}")
        return 0
    if args.check:
        problems = check()
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    sys.stdout.write(render(args.name or "scan"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
