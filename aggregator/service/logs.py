"""Structured logs for the service: one JSON object per line on stderr (``--log-format json``), or one
human line per record (default).

A record's structured fields come from ``logger.info("...", extra={"fields": {...}})`` (helper:
:func:`log_event`). JSON lines carry ``ts`` (UTC ISO 8601, milliseconds), ``level``, ``logger``,
``event`` (a stable machine name such as ``cycle.done``), ``msg`` and the fields; the human format
prints ``HH:MM:SS level event msg key=value ...``. Every message and every string field goes through
``aggregator.redaction.redact`` (bot tokens, webhook URLs, ``whsec_`` secrets, ``key=...`` query
values) plus the exact secrets passed to :func:`configure_logging` (RPC and venue URLs of the config).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from aggregator.redaction import RedactingFilter, redact

if TYPE_CHECKING:
    from aggregator.config import Settings

__all__ = [
    "LOGGER_NAME", "JsonFormatter", "TextFormatter", "config_secrets", "configure_logging", "log_event",
]

LOGGER_NAME = "crossmargin"
LogFormat = Literal["json", "human"]


def log_event(logger: logging.Logger, level: int, event: str, message: str, **fields: Any) -> None:
    """Log ``message`` with a machine-readable ``event`` name and structured ``fields``."""
    logger.log(level, message, extra={"event": event, "fields": fields})


def _plain(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, secrets) for v in value]
    return redact(str(value), secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "msg": redact(record.getMessage(), self.secrets),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in doc:
                    doc[key] = _plain(value, self.secrets)
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(doc, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """``19:02:11 info  cycle.done  portfolio treasury scanned  chf=1.42 duration_s=0.81``."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        event = getattr(record, "event", None) or record.name
        parts = [when, f"{record.levelname.lower():<7}", event, redact(record.getMessage(), self.secrets)]
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            parts.append(
                " ".join(f"{k}={_plain(v, self.secrets)}" for k, v in fields.items() if v is not None)
            )
        line = "  ".join(parts)
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info), self.secrets)
        return line


def configure_logging(
    log_format: LogFormat = "human",
    *,
    level: int = logging.INFO,
    secrets: tuple[str, ...] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every ``crossmargin.*`` (and ``apscheduler``) record to ``stream`` (stderr) in ``log_format``.

    Returns the handler (tests remove it). httpx/httpcore request logging is silenced: it prints URLs.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if log_format == "json" else TextFormatter(secrets))
    handler.addFilter(RedactingFilter(secrets))
    for name in (LOGGER_NAME, "apscheduler", "aggregator", "adapters"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    for name in ("httpx", "httpcore", "websockets"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def config_secrets(settings: Settings) -> tuple[str, ...]:
    """Exact strings to mask in every log line: RPC and venue URLs (they often embed API keys), the
    alert channels' secrets, the database password."""
    found: list[str] = [u for chain in settings.chains.values() for u in chain.rpc_urls]
    found += [c.ws_url for c in settings.watch.chains.values() if c.ws_url]
    for name in type(settings.venues).model_fields:
        venue = getattr(settings.venues, name)
        if venue is not None:
            found.append(str(venue.api_url))
            for key in ("api_key", "api_secret"):
                value = getattr(venue, key, None)
                if isinstance(value, SecretStr):
                    found.append(value.get_secret_value())
    for channel in settings.alerts.channels.values():
        for value in (channel.bot_token, channel.webhook_url, channel.signing_secret):
            if value is not None:
                found.append(value.get_secret_value())
    if settings.database.url is not None:
        password = make_url(settings.database.url.get_secret_value()).password
        if password:
            found.append(str(password))
    # URLs of local processes (the devnet) carry no secret; masking them would only hide the port
    return tuple(sorted({s for s in found if len(s) >= 6 and "127.0.0.1" not in s}, key=len, reverse=True))
