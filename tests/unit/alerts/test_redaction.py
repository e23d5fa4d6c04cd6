"""A canary token never reaches a log line, whatever shape it is logged in."""

from __future__ import annotations

import logging

import pytest

from aggregator.redaction import install_log_redaction, redact

TOKEN = "123456789:AAHcanaryCANARYcanary_tokenXYZ12"


@pytest.mark.parametrize(
    "text",
    [
        f"HTTP Request: POST https://api.telegram.org/bot{TOKEN}/sendMessage",
        "POST https://hooks.slack.com/services/T000/B000/canaryXXXXXXXX",
        "https://discord.com/api/webhooks/123456/canaryTOKENvalue?wait=true",
        "secret whsec_Y2FuYXJ5Y2FuYXJ5Y2FuYXJ5Y2FuYXJ5",
        "https://rpc.example/v2?api_key=canarykey123",
        "postgresql://user:canarypass@db:5432/x",
    ],
)
def test_known_secret_shapes_are_redacted(text: str) -> None:
    out = redact(text)
    assert "canary" not in out.lower()
    assert "redacted" in out


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction(extra_secrets=("my-own-canary-secret",))
    logger = logging.getLogger("crossmargin.test")
    with caplog.at_level(logging.INFO):
        logger.info("sending to %s with %s", f"https://api.telegram.org/bot{TOKEN}/x", "my-own-canary-secret")
    assert "canary" not in caplog.text.lower()
