"""Show an RPC URL without its secrets: no userinfo, no query, no key-like path segment.

``https://user:pw@eth-mainnet.g.alchemy.com/v2/AbCdEf0123456789xyz?key=1`` becomes
``https://eth-mainnet.g.alchemy.com/v2/***?***``. A path segment is kept only when it is short and
looks like a word (``v3``, ``rpc``, ``ext``, ``bc``, ``C``); anything longer than 12 characters or
mixing many digits with letters is treated as a token.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_url", "scrub"]

_WORDLIKE = re.compile(r"^[A-Za-z][A-Za-z_-]{0,11}$|^v\d{1,2}$|^\d{1,6}$")


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "<invalid url>"
    netloc = f"{host}:{port}" if port else host
    segments = [s if _WORDLIKE.match(s) else "***" for s in parts.path.split("/") if s]
    path = "/" + "/".join(segments) if segments else ""
    query = "?***" if parts.query else ""
    scheme = parts.scheme or "http"
    return f"{scheme}://{netloc}{path}{query}"


def scrub(text: str, url: str) -> str:
    """``text`` with every occurrence of ``url`` (and of its query / path tokens) replaced by the
    redacted form, for exception messages that echo the URL."""
    safe = redact_url(url)
    out = text.replace(url, safe)
    parts = urlsplit(url)
    secrets = [parts.query, parts.password or "", parts.username or ""]
    secrets += [s for s in parts.path.split("/") if s and not _WORDLIKE.match(s)]
    for secret in secrets:
        if len(secret) >= 4:
            out = out.replace(secret, "***")
    return out
