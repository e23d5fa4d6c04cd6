"""The explicit registry of adapter families: family key -> adapter class. One line per module."""

from __future__ import annotations

from adapters.base import VenueAdapter

__all__ = ["REGISTRY"]

REGISTRY: dict[str, type[VenueAdapter]] = {}
