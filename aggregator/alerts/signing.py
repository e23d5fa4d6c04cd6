"""Standard Webhooks signatures (standard-webhooks spec): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">``.

The secret is ``whsec_`` + base64 of at least 24 random bytes; the HMAC key is the decoded bytes.
The signature header is a space-separated list so a secret can be rotated without downtime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = ["SignatureError", "generate_secret", "sign", "signature_headers", "verify"]

PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """A webhook secret is malformed or a signature does not verify."""


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(PREFIX):
        raise SignatureError("webhook secret must start with 'whsec_'")
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("webhook secret is not valid base64 after 'whsec_'") from None
    if len(key) < MIN_SECRET_BYTES:
        raise SignatureError(f"webhook secret must decode to at least {MIN_SECRET_BYTES} bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``{message_id}.{timestamp}.{body}``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secrets_in_use: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Headers for one delivery attempt. ``message_id`` is stable across retries; ``timestamp`` is
    the attempt's. Several secrets (rotation) give several space-separated signatures."""
    if not secrets_in_use:
        raise SignatureError("no webhook secret configured")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets_in_use),
    }


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless one of the header's signatures matches and the timestamp is fresh."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        message_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        offered = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        raise SignatureError("missing or malformed webhook headers") from None
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError("webhook timestamp outside the tolerance")
    expected = sign(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureError("no webhook signature matches")
