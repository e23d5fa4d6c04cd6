"""The one duration syntax (``aggregator.alerts.rules.parse_duration``) and ``history --since``, which
reads its relative ages with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.alerts.rules import parse_duration
from aggregator.cli.history_cmd import parse_since
from aggregator.errors import InputError

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("2w", 1_209_600), (" 1.5 h ", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "7", "a week", "2y", "-1d", "1dd"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_parse_since() -> None:
    assert parse_since("all", NOW) is None
    assert parse_since("90m", NOW) == datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
    assert parse_since("7D", NOW) == datetime(2026, 11, 14, 12, 0, tzinfo=UTC)
    assert parse_since("2w", NOW) == NOW - timedelta(days=14)
    # an ISO time: naive is UTC, an offset is kept
    assert parse_since("2026-01-01T00:01:00", NOW) == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert parse_since("2026-01-01T02:00:00+02:00", NOW) == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    with pytest.raises(InputError, match="--since 'yesterday'"):
        parse_since("yesterday", NOW)
