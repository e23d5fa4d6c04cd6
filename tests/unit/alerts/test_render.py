"""Channel forms of a message: escaping round-trips, the limits of each API, no links in the fallback."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.alerts.message import AlertMessage
from aggregator.alerts.render import (
    discord_payload,
    message_from_json,
    message_to_json,
    plain_text,
    slack_payload,
    telegram_html,
    webhook_payload,
)

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
SEVERITY = st.sampled_from(["warning", "critical", "resolved", "info"])


@st.composite
def messages(draw: st.DrawFn) -> AlertMessage:
    return AlertMessage(
        message_id="alr_x",
        severity=draw(SEVERITY),
        title=draw(TEXT),
        body=tuple(draw(st.lists(TEXT, max_size=30))),
        data={"k": draw(TEXT)},
        fields=tuple(draw(st.lists(st.tuples(TEXT, TEXT), max_size=30))),
        action=draw(st.one_of(st.none(), TEXT)),
    )


class TelegramEntities(HTMLParser):
    """Parse like Telegram's HTML mode: only <b> tags allowed, visible text collected."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@settings(max_examples=200)
@given(messages())
def test_telegram_html_is_escaped_and_within_4096_visible_characters(message: AlertMessage) -> None:
    rendered = telegram_html(message)
    parser = TelegramEntities()
    parser.feed(rendered)
    parser.close()
    assert set(parser.tags) <= {"b"}  # user text can never open a tag
    visible = "".join(parser.text)
    assert len(visible) <= 4096
    # no raw & or < outside our entities and tags
    stripped = re.sub(r"</?b>", "", rendered)
    assert "<" not in stripped and ">" not in stripped
    assert not re.search(r"&(?!amp;|lt;|gt;)", stripped)
    body = "\n".join(message.body)
    if len(message.title) + 1 + len(body) <= 4096:
        assert visible == message.title + ("\n" + body if body else "")


def test_telegram_cuts_a_long_message_cleanly() -> None:
    message = AlertMessage("m", "critical", "CRITICAL · t", ("<&>" * 3000,), {})
    rendered = telegram_html(message)
    assert len(html.unescape(re.sub(r"</?b>", "", rendered))) == 4096
    assert rendered.endswith("…") and "&amp" in rendered and not rendered.endswith("&")


@settings(max_examples=200)
@given(messages())
def test_discord_and_slack_limits(message: AlertMessage) -> None:
    d = discord_payload(message)
    assert len(d["content"]) <= 2000
    [embed] = d["embeds"]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    total = (
        len(embed["title"])
        + len(embed["description"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000
    assert d["allowed_mentions"] == {"parse": []}
    s = slack_payload(message)
    assert s["text"] and len(s["text"]) <= 3000
    assert all(c not in s["text"].replace("&amp;", "").replace("&lt;", "").replace("&gt;", "") for c in "<>")
    header = s["blocks"][0]["text"]["text"]
    assert len(header) <= 150


def test_slack_mentions_cannot_fire() -> None:
    message = AlertMessage("m", "warning", "<!channel> @here", ("<@U123> & <https://x|y>",), {})
    s = slack_payload(message)
    assert "<!channel>" not in s["text"] and "&lt;!channel&gt;" in s["text"]
    assert "<@U123>" not in s["blocks"][1]["text"]["text"]


def test_plain_text_fallback_has_no_links() -> None:
    message = AlertMessage(
        "m", "critical", "CRITICAL see https://evil.example/x", ("www.example.com/y", "ftp://a/b ok"), {}
    )
    text = plain_text(message)
    assert "://" not in text and "www." not in text
    assert text.startswith("CRITICAL") and "ok" in text
    assert "://" not in webhook_payload(message)["text"]


@given(messages())
def test_outbox_json_round_trip(message: AlertMessage) -> None:
    assert message_from_json(message_to_json(message)) == message
