"""The channel-independent alert message (built by ``aggregator.alerts.render``, sent by ``channels``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AlertMessage", "Severity"]

Severity = Literal["warning", "critical", "resolved", "info"]


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """What an alert says. ``title`` carries the severity first; ``body`` is plain text lines;
    ``fields`` are short (label, value) pairs for Slack fields / Discord embed fields; ``action`` is
    what to do (also the last body lines' content)."""

    message_id: str  # stable across retries: the outbox delivery id (the webhook-id)
    severity: Severity
    title: str
    body: tuple[str, ...]
    data: dict[str, Any]  # the machine-readable alert (webhook payload)
    fields: tuple[tuple[str, str], ...] = ()
    action: str | None = None

    @property
    def plain_text(self) -> str:
        return "\n".join((self.title, *self.body))
