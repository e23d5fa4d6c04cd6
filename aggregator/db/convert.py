"""Turn ``risk.model`` / ``risk.assessment`` objects into plain row values and JSON documents.

JSON documents (``positions.params``, ``assessments.details``) hold exact decimals as strings,
datetimes as ISO 8601, enums as their value, and non-finite floats (``inf``, ``nan``) as ``null``
(JSON has no infinity; the column conventions of ``aggregator.db.models`` say what NULL means).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from risk.model import Position

__all__ = ["finite_or_none", "position_params", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` (dataclasses, mappings, sequences, Decimal, datetime, enums)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return to_jsonable(value.tolist())
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def position_params(position: Position) -> dict[str, Any] | None:
    """The kind's parameters: ``{"lending": {...}}``, ``{"perp": {...}}`` and/or ``{"option": {...}}``."""
    params = {
        name: to_jsonable(getattr(position, name))
        for name in ("lending", "perp", "option")
        if getattr(position, name) is not None
    }
    return params or None


def finite_or_none(value: float | None) -> float | None:
    """``None`` for None, ``inf`` and ``nan``; the float otherwise."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
