"""crossmargin's error tree, and the CLI exit code each maps to.

::

    CrossmarginError                      (risk.errors)          exit 1 unless below
    ├── RiskInputError                    (risk.errors)          exit 2  a portfolio the engine cannot use
    ├── ConfigError                       (aggregator.errors)    exit 2  a config file or value is wrong
    ├── InputError                        (aggregator.errors)    exit 2  a command-line argument is wrong
    ├── StorageError                      (aggregator.errors)    exit 5  the database cannot be used
    └── VenueError(venue, chain)          (adapters.errors)      exit 3
        ├── VenueUnavailable   retryable: timeout, 429, 5xx, RPC failure, geo-block
        ├── VenueDataError     the venue sent something we cannot trust (shape, revert, invariant)
        └── VenueNotConfigured credentials or subaccount ids missing

A venue error never makes a scan fail: the account is reported UNAVAILABLE with the reason and the
scan exits 3. Exit 4 is reserved for "CHF below the critical threshold", a finding, not an error.
"""

from __future__ import annotations

from enum import IntEnum

from adapters.errors import VenueDataError, VenueError, VenueNotConfigured, VenueUnavailable
from risk.errors import CrossmarginError, RiskInputError

__all__ = [
    "ConfigError",
    "CrossmarginError",
    "ExitCode",
    "InputError",
    "RiskInputError",
    "StorageError",
    "VenueDataError",
    "VenueError",
    "VenueNotConfigured",
    "VenueUnavailable",
    "exit_code_for",
]


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # an unexpected failure (a bug): the traceback goes to the log
    BAD_INPUT = 2  # config, arguments or portfolio file
    VENUE_UNAVAILABLE = 3  # at least one venue could not be read; the rest is reported
    CHF_CRITICAL = 4  # composite health below the critical threshold
    STORAGE = 5  # the database could not be read or written


class ConfigError(CrossmarginError):
    """A configuration file or value is invalid. Names the file, the key path and, where it can, a fix."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        parts = [p for p in (source, key) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source = source
        self.key = key


class InputError(CrossmarginError):
    """A command-line argument is invalid (an address, a duration, an unknown venue)."""


class StorageError(CrossmarginError):
    """The database cannot be reached, is at an unknown revision, or a write failed."""


def exit_code_for(error: BaseException) -> ExitCode:
    if isinstance(error, ConfigError | InputError | RiskInputError):
        return ExitCode.BAD_INPUT
    if isinstance(error, VenueError):
        return ExitCode.VENUE_UNAVAILABLE
    if isinstance(error, StorageError):
        return ExitCode.STORAGE
    return ExitCode.ERROR
