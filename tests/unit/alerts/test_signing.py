"""Standard Webhooks signatures, checked by a verifier written here from the spec, not ours."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.alerts.signing import SignatureError, generate_secret, signature_headers, verify

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(
        sig.startswith("v1,") and hmac.compare_digest(sig[3:], expected)
        for sig in headers["webhook-signature"].split(" ")
    )


def test_known_vector_matches_independent_computation() -> None:
    body = b'{"alert":"chf_critical"}'
    headers = signature_headers([SECRET], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231, body)
    assert spec_verify(SECRET, headers, body)
    assert headers["webhook-id"] == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert headers["webhook-timestamp"] == "1674087231"


@given(
    body=st.binary(max_size=512),
    msg_id=st.text(alphabet="abcdef0123456789_", min_size=1, max_size=40),
    ts=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
)
def test_sign_then_verify_and_any_flipped_byte_fails(body: bytes, msg_id: str, ts: int) -> None:
    headers = signature_headers([SECRET], msg_id, ts, body)
    assert spec_verify(SECRET, headers, body)
    verify(SECRET, headers, body, now=ts)
    tampered = body + b"x" if not body else bytes([body[0] ^ 1]) + body[1:]
    assert not spec_verify(SECRET, headers, tampered)
    with pytest.raises(SignatureError):
        verify(SECRET, headers, tampered, now=ts)


def test_stale_timestamp_and_wrong_secret_rejected() -> None:
    body = b"{}"
    headers = signature_headers([SECRET], "m1", 1_700_000_000, body)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, headers, body, now=1_700_000_000 + 301)
    with pytest.raises(SignatureError, match="no webhook signature"):
        verify(generate_secret(), headers, body, now=1_700_000_000)


def test_rotation_two_signatures_each_secret_verifies() -> None:
    new = generate_secret()
    body = b"payload"
    headers = signature_headers([SECRET, new], "m2", 1_700_000_000, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(SECRET, headers, body, now=1_700_000_000)
    verify(new, headers, body, now=1_700_000_000)
    assert spec_verify(new, headers, body)


@pytest.mark.parametrize("bad", ["secret", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()])
def test_malformed_secrets(bad: str) -> None:
    with pytest.raises(SignatureError):
        signature_headers([bad], "m", 1, b"")
