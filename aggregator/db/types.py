"""Column types that behave the same on SQLite and PostgreSQL.

``ExactDecimal``
    An exact ``Decimal`` (quantities, prices, venue figures). PostgreSQL: ``NUMERIC`` with no
    precision (arbitrary precision, ``Infinity`` and ``NaN`` allowed since PostgreSQL 14). SQLite:
    ``VARCHAR`` holding ``str(decimal)``, because SQLite's NUMERIC affinity would round to a float.
    Never a float on either side.
``UtcDateTime``
    A timezone-aware datetime stored as UTC (``TIMESTAMP WITH TIME ZONE`` on PostgreSQL; the ISO text
    SQLAlchemy writes on SQLite, which sorts chronologically because every value is UTC). A naive
    datetime is refused on the way in; every value read back is aware (UTC).
``JsonDocument``
    ``JSONB`` on PostgreSQL, ``JSON`` (text) on SQLite.
``BigId``
    ``BIGINT`` primary keys on PostgreSQL, ``INTEGER`` on SQLite (the rowid alias that autoincrements).

Migrations spell the same types with ``with_variant`` so that ``alembic check`` compares equal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["BigId", "ExactDecimal", "JsonDocument", "UtcDateTime"]

_ZERO = timedelta(0)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class ExactDecimal(TypeDecorator[Decimal]):
    """Exact decimal: NUMERIC on PostgreSQL, decimal text on SQLite (see the module docstring)."""

    impl = sa.String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.NUMERIC())
        return dialect.type_descriptor(sa.String())

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"ExactDecimal takes a Decimal, got {type(value).__name__} {value!r}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetime on both dialects (see the module docstring)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value if value.utcoffset() == _ZERO else value.astimezone(UTC)
