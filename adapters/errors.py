"""Errors an adapter raises while reading a venue (see the tree in ``aggregator.errors``)."""

from __future__ import annotations

from risk.errors import CrossmarginError

__all__ = ["VenueDataError", "VenueError", "VenueNotConfigured", "VenueUnavailable"]


class VenueError(CrossmarginError):
    """Reading one venue failed. Carries the venue (or deployment) and the chain, when there is one."""

    def __init__(self, message: str, *, venue: str, chain: str | None = None) -> None:
        super().__init__(message)
        self.venue = venue
        self.chain = chain

    def __str__(self) -> str:
        where = f"{self.venue}@{self.chain}" if self.chain else self.venue
        return f"{where}: {self.args[0]}"


class VenueUnavailable(VenueError):
    """Retry may help: timeout, connection refused, HTTP 429/5xx, RPC rate limit, geo-block."""


class VenueDataError(VenueError):
    """The venue answered with something we cannot trust: unknown shape, a revert, an impossible value."""


class VenueNotConfigured(VenueError):
    """The venue needs credentials (or an address) the user has not supplied."""
