"""The base of every adapter that reads a venue over HTTP (Hyperliquid, dYdX, Derive, ...).

It checks that the configured spec is a :class:`VenueSpec` (``[venues.<name>]``) and builds the
venue's :class:`VenueHttp` on the scan's shared ``httpx.AsyncClient`` (rate limit and retries from
the spec). Subclasses implement ``read_accounts`` through ``self.http``.
"""

from __future__ import annotations

from pydantic import BaseModel

from adapters.base import AdapterContext, VenueAdapter
from adapters.http import VenueHttp
from adapters.specs import VenueSpec

__all__ = ["HttpVenueAdapter"]


class HttpVenueAdapter(VenueAdapter):
    """A :class:`VenueAdapter` configured by a ``VenueSpec`` and reading through ``VenueHttp``."""

    venue_spec: VenueSpec
    http: VenueHttp

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        if not isinstance(spec, VenueSpec):
            raise TypeError(f"{self.family} needs a VenueSpec, got {type(spec).__name__}")
        super().__init__(instance=instance, spec=spec, context=context)
        self.venue_spec = spec
        self.http = VenueHttp(context.http, venue=self.deployment, spec=spec)
