"""Keep secrets out of logs: quiet httpx's URL logging and redact known secret shapes.

Telegram puts the bot token in the URL path, Slack and Discord webhook URLs are themselves secrets,
and webhook signing secrets start with ``whsec_``. ``redact`` replaces them wherever they appear; the
``RedactingFilter`` applies it to every log record, arguments included.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_log_redaction", "redact"]

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"bot\d{3,}:[A-Za-z0-9_-]{20,}"), "bot<redacted>"),
    (re.compile(r"hooks\.slack\.com/services/[^\s\"'<>]+"), "hooks.slack.com/services/<redacted>"),
    (re.compile(r"/api/webhooks/\d+/[^\s\"'<>/?]+"), "/api/webhooks/<redacted>"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_<redacted>"),
    (re.compile(r"(?i)(api[_-]?key|token|secret|password)=([^&\s\"']+)"), r"\1=<redacted>"),
    (re.compile(r"://([^/\s:@]+):([^/\s@]+)@"), r"://\1:<redacted>@"),
)


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    for secret in extra_secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def __init__(self, extra_secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra_secrets = extra_secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.extra_secrets)
        record.args = None
        return True


def install_log_redaction(extra_secrets: tuple[str, ...] = ()) -> None:
    """Silence httpx/httpcore request logging and redact every record of the root handlers."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    redactor = RedactingFilter(extra_secrets)
    for handler in root.handlers:
        handler.addFilter(redactor)
    root.addFilter(redactor)
