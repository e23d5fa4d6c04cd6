"""The committed JSON Schemas (docs/scan-schema.json, docs/assess-schema.json) match the models."""

from __future__ import annotations

import json

from aggregator.report import SCHEMA_VERSION
from aggregator.schema import DOCS_DIR, SCHEMAS, check, schema_of


def test_committed_schemas_match_the_models() -> None:
    problems = check()
    assert not problems, (
        "the JSON Schema of a --json document changed:\n  " + "\n  ".join(problems) + "\n"
        "Regenerate with `python -m aggregator.schema --write` (or `crossmargin schema --write`) and commit "
        "docs/*-schema.json. Adding optional keys keeps schema_version "
        f"{SCHEMA_VERSION!r}; renaming/removing a key or changing a type or meaning is breaking: bump "
        "SCHEMA_VERSION in aggregator/report.py and say so in docs/scan-json.md."
    )


def test_schema_contract_points() -> None:
    scan = schema_of("scan")
    assert scan["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    account = scan["$defs"]["ScanAccountOut"]["properties"]
    # exact decimals are JSON numbers; +inf health is null
    assert {"type": "number"} in account["health"]["anyOf"] and {"type": "null"} in account["health"]["anyOf"]
    assert "composite" in scan["properties"] and "CompositeOut" in scan["$defs"]
    for name, (_model, file, _command) in SCHEMAS.items():
        assert json.loads((DOCS_DIR / file).read_text())["$schema"].endswith("2020-12/schema"), name
