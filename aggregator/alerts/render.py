"""Alert messages: what fired, where, how bad and what to do, and their per-channel forms.

:func:`build_message` turns one decision (rule, dedup key, kind, tier, value) plus the cycle's data
(``risk.assessment.Assessment``, the ``MarginAccount`` rows, ``RebalanceMove`` advice) into an
:class:`~aggregator.alerts.channels.AlertMessage`: the severity first in the title, then body lines with
the account and venue, its health (ours and the venue's), the composite health (CHF) and stressed CHF,
the liquidation price and relative distance per factor (``price / current - 1``), ``p_liq``, the
hedge leg at risk and the rebalancing move when one is known, else a default action for the metric.

The channel forms are pure functions of the message:

- :func:`telegram_html`: HTML parse mode, ``& < >`` escaped (the only entities Telegram needs), cut to
  4096 *visible* characters (Telegram counts after entity parsing);
- :func:`slack_payload`: top-level ``text`` (mobile notifications use only it) plus header, section and
  fields blocks, mrkdwn-escaped so user text cannot trigger ``<!channel>``;
- :func:`discord_payload`: ``content`` <= 2000 characters, one embed within Discord's limits (title 256,
  description 4096, 25 fields of 256/1024, 6000 in all), no mentions parsed;
- :func:`webhook_payload`: the machine-readable JSON document;
- :func:`plain_text`: the link-free plain-text fallback (URLs removed).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aggregator.alerts.message import AlertMessage
from aggregator.alerts.rules import AlertRule, Metric
from aggregator.alerts.state import Decision
from risk.assessment import AccountAssessment, Assessment, RebalanceMove
from risk.model import MarginAccount
from risk.rebalance import describe_move

__all__ = [
    "DISCORD_CONTENT_LIMIT",
    "TELEGRAM_LIMIT",
    "AlertContext",
    "build_message",
    "discord_payload",
    "message_from_json",
    "message_to_json",
    "plain_text",
    "slack_payload",
    "telegram_html",
    "webhook_payload",
]

TELEGRAM_LIMIT = 4096
DISCORD_CONTENT_LIMIT = 2000
_DISCORD_EMBED_TOTAL = 6000
_URL = re.compile(r"(?i)\b(?:https?|ftp|wss?)://\S+|\bwww\.\S+")
_COLOUR = {"critical": 0xD0021B, "warning": 0xF5A623, "resolved": 0x2E8B57, "info": 0x4A90E2}

_WHAT: dict[Metric, str] = {
    Metric.CHF: "Composite health",
    Metric.STRESSED_CHF: "Stressed composite health",
    Metric.ACCOUNT_HEALTH: "Account health",
    Metric.P_LIQ: "Liquidation probability",
    Metric.DISTANCE_TO_LIQUIDATION: "Distance to liquidation",
    Metric.HEDGE_BREAK: "Hedge break",
    Metric.MODEL_DRIFT: "Model drift",
    Metric.VENUE_UNAVAILABLE: "Venue unavailable",
    Metric.ORACLE_STALE: "Oracle stale",
    Metric.HEARTBEAT: "Monitor heartbeat missed",
}

_DEFAULT_ACTION: dict[Metric, str] = {
    Metric.CHF: "add collateral or repay debt on the account that sets the CHF",
    Metric.STRESSED_CHF: "add collateral or reduce exposure so the book survives the stress scenario",
    Metric.ACCOUNT_HEALTH: "add collateral to or repay debt on this account",
    Metric.P_LIQ: "reduce leverage or add collateral on the weakest account",
    Metric.DISTANCE_TO_LIQUIDATION: "add collateral or reduce the position before the price gets there",
    Metric.HEDGE_BREAK: "top up the leg that liquidates first so the hedge survives the move",
    Metric.MODEL_DRIFT: "check the venue's own health figure and the configured risk parameters",
    Metric.VENUE_UNAVAILABLE: "check the RPC/API provider; positions there are unknown until it is read",
    Metric.ORACLE_STALE: "treat prices as unreliable; check the oracle before acting on health figures",
    Metric.HEARTBEAT: "check that the monitor process is running and its RPC providers respond",
}


@dataclass(frozen=True, slots=True)
class AlertContext:
    """Everything one message is built from. ``account_key`` is '' for a portfolio-wide key."""

    rule: AlertRule
    portfolio: str
    account_key: str
    decision: Decision
    message_id: str
    now: datetime
    assessment: Assessment | None = None
    accounts: Sequence[MarginAccount] = ()
    rebalancing: Sequence[RebalanceMove] = ()
    detail: str | None = None  # e.g. the venue's status reason, the heartbeat's last cycle time


# ------------------------------------------------------------------------------------------------
# number formatting


def _health(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "unknown"
    if math.isinf(value):
        return "∞ (no debt)" if value > 0 else "-∞"
    return f"{value:.3f}"


def _price(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def _usd(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"${value:,.0f}"


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * 100:.{digits}f}%"


def _signed_pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def format_value(metric: Metric, value: float | None) -> str:
    """A metric's value in the unit users read it in."""
    if value is None:
        return "unknown"
    if metric in (Metric.CHF, Metric.STRESSED_CHF, Metric.ACCOUNT_HEALTH):
        return _health(value)
    if metric in (Metric.P_LIQ, Metric.DISTANCE_TO_LIQUIDATION, Metric.MODEL_DRIFT):
        return "∞" if math.isinf(value) else _pct(value, 2 if metric is Metric.MODEL_DRIFT else 1)
    if metric in (Metric.ORACLE_STALE, Metric.HEARTBEAT):
        return _duration(value)
    if metric is Metric.VENUE_UNAVAILABLE:
        return {0.0: "available", 0.5: "stale"}.get(value, "unavailable")
    return "yes" if value >= 0.5 else "no"


# ------------------------------------------------------------------------------------------------
# the message


def _severity(decision: Decision) -> Literal["warning", "critical", "resolved"]:
    if decision.kind == "resolve":
        return "resolved"
    return "critical" if decision.tier == "critical" else "warning"


def _kind_label(decision: Decision) -> str:
    return {"fire": "", "escalate": " (escalated)", "repeat": " (still firing)", "resolve": ""}[decision.kind]


def _threshold_text(rule: AlertRule) -> str:
    worse = ">" if rule.metric.higher_is_worse else "<"
    raw = rule.metric in (Metric.VENUE_UNAVAILABLE, Metric.HEDGE_BREAK)
    parts = []
    for tier, threshold in (("warning", rule.warning), ("critical", rule.critical)):
        if threshold is not None:
            shown = f"{threshold:g}" if raw else format_value(rule.metric, threshold)
            parts.append(f"{tier} {worse} {shown}")
    return ", ".join(parts)


def _focus_account(ctx: AlertContext) -> str | None:
    """The account the alert is about: its own key, else the one that sets the portfolio figure."""
    if ctx.account_key:
        return ctx.account_key
    a = ctx.assessment
    if a is None:
        return None
    metric = ctx.rule.metric
    if metric is Metric.STRESSED_CHF and a.stressed_scenario is not None:
        for scenario in a.scenarios:
            if scenario.name == a.stressed_scenario and scenario.account_health:
                return min(scenario.account_health.items(), key=lambda kv: kv[1])[0]
    if metric is Metric.DISTANCE_TO_LIQUIDATION:
        nearest = _nearest_distance(a)
        if nearest is not None:
            return nearest[3]
    if metric is Metric.HEDGE_BREAK and a.hedge_breaks:
        return min(a.hedge_breaks, key=lambda h: abs(h.trigger_move)).leg_account
    return a.chf_account


def _nearest_distance(a: Assessment) -> tuple[float, str, float | None, str | None, str] | None:
    """(relative move, factor, price, account, direction) of the smallest distance to liquidation."""
    best: tuple[float, str, float | None, str | None, str] | None = None
    for d in a.distance_to_liquidation:
        for move, price, account, direction in (
            (d.down, d.down_price, d.down_account, "down"),
            (d.up, d.up_price, d.up_account, "up"),
        ):
            if move is None or not math.isfinite(move):
                continue
            if best is None or abs(move) < abs(best[0]):
                best = (abs(move), str(d.factor), price, account, direction)
    return best


def nearest_distance(a: Assessment) -> float | None:
    """The smallest relative move (either direction, any factor or the market) to a liquidation;
    ``math.inf`` when no move within the scanned range liquidates anything."""
    nearest = _nearest_distance(a)
    return math.inf if nearest is None else nearest[0]


def _current_price(accounts: Sequence[MarginAccount], factor: str) -> float | None:
    for account in accounts:
        for p in account.positions:
            if str(p.factor) == factor and str(account.quote) == "USD":
                return float(p.price)
    return None


def _account_lines(ctx: AlertContext, key: str) -> list[str]:
    account = next((a for a in ctx.accounts if a.key == key), None)
    figures: AccountAssessment | None = None
    if ctx.assessment is not None:
        figures = next((x for x in ctx.assessment.accounts if x.account_key == key), None)
    lines: list[str] = []
    if account is not None:
        where = f"Account: {key} on {account.venue}, wallet {account.wallet}"
        if account.as_of.chain is not None:
            block = f" block {account.as_of.block_number}" if account.as_of.block_number is not None else ""
            where += f", {account.as_of.chain}{block}"
        lines.append(where)
        if account.status.value != "ok":
            lines.append(f"Status: {account.status.value} ({account.status_reason})")
    else:
        lines.append(f"Account: {key}")
    if figures is not None:
        venue = "" if figures.venue_health is None else f" (venue reports {_health(figures.venue_health)})"
        lines.append(
            f"Health: {_health(figures.health)}{venue}; resources {_usd(figures.resources_usd)}"
            f" vs requirement {_usd(figures.requirement_usd)}"
        )
        for factor, price in list(figures.liquidation_price.items())[:3]:
            if price is None:
                continue
            now_price = _current_price(ctx.accounts, str(factor))
            if now_price is not None and now_price > 0:
                lines.append(
                    f"Liquidation price: {factor} {_price(price)} (now {_price(now_price)},"
                    f" {_signed_pct(price / now_price - 1)})"
                )
            else:
                lines.append(f"Liquidation price: {factor} {_price(price)}")
        if figures.p_liq is not None:
            lines.append(f"Account p_liq: {_pct(figures.p_liq)}")
    return lines


def _portfolio_lines(ctx: AlertContext) -> list[str]:
    a = ctx.assessment
    if a is None:
        return []
    setter = f" (set by {a.chf_account})" if a.chf_account else ""
    scenario = f" under {a.stressed_scenario}" if a.stressed_scenario else ""
    lines = [f"CHF: {_health(a.chf)}{setter}; stressed CHF {_health(a.stressed_chf)}{scenario}"]
    nearest = _nearest_distance(a)
    if nearest is not None:
        move, factor, price, account, direction = nearest
        sign = "-" if direction == "down" else "+"
        lines.append(
            f"Distance to liquidation: {sign}{move * 100:.1f}% on {factor}"
            f" (to {_price(price)}, {account or 'an account'} liquidates)"
        )
    if a.p_liq is not None:
        stderr = f" ±{_pct(a.p_liq_stderr, 2)}" if a.p_liq_stderr else ""
        lines.append(f"p_liq: {_pct(a.p_liq)}{stderr}")
    if a.hedge_breaks:
        h = min(a.hedge_breaks, key=lambda b: abs(b.trigger_move))
        lines.append(
            f"Hedge leg at risk: {h.leg_account} liquidates first if {h.factor} moves"
            f" {_signed_pct(h.trigger_move)} (to {_price(h.trigger_price)}), leaving"
            f" {_usd(abs(h.unhedged_exposure_usd))} unhedged"
        )
    return lines


def _action(ctx: AlertContext, focus: str | None) -> str | None:
    if ctx.decision.kind == "resolve":
        return None
    moves = list(ctx.rebalancing)
    if moves:
        chosen = next((m for m in moves if focus is not None and m.destination == focus), moves[0])
        return describe_move(chosen)
    return _DEFAULT_ACTION[ctx.rule.metric]


def build_message(ctx: AlertContext) -> AlertMessage:
    """The message for one decision (see the module docstring)."""
    rule, decision = ctx.rule, ctx.decision
    severity = _severity(decision)
    focus = _focus_account(ctx)
    what = _WHAT[rule.metric]
    value = format_value(rule.metric, decision.value)
    where = ctx.portfolio + (f" / {ctx.account_key}" if ctx.account_key else "")
    if decision.kind == "resolve":
        title = f"RESOLVED · {what} back to {value} · {where}"
    else:
        title = f"{severity.upper()}{_kind_label(decision)} · {what} {value} · {where}"
    body: list[str] = [
        f"Rule {rule.name} ({rule.metric.value}): {value}; thresholds {_threshold_text(rule)}",
        f"Portfolio: {ctx.portfolio}",
    ]
    if ctx.detail:
        body.append(ctx.detail)
    if focus is not None:
        body.extend(_account_lines(ctx, focus))
    body.extend(_portfolio_lines(ctx))
    action = _action(ctx, focus)
    if action is not None:
        body.append(f"What to do: {action}")
    body.append(f"Episode {decision.episode} · {ctx.now.isoformat(timespec='seconds')}")
    fields = (
        ("Severity", severity),
        ("Value", value),
        ("Portfolio", ctx.portfolio),
        *((("Account", focus),) if focus else ()),
    )
    data: dict[str, Any] = {
        "rule": rule.name,
        "metric": rule.metric.value,
        "kind": decision.kind,
        "tier": decision.tier,
        "episode": decision.episode,
        "portfolio": ctx.portfolio,
        "account": ctx.account_key or None,
        "focus_account": focus,
        "value": decision.value if decision.value is None or math.isfinite(decision.value) else None,
        "warning": rule.warning,
        "critical": rule.critical,
        "decided_at": ctx.now.isoformat(),
        "action": action,
    }
    if ctx.assessment is not None:
        a = ctx.assessment
        data["chf"] = a.chf if math.isfinite(a.chf) else None
        data["stressed_chf"] = a.stressed_chf if math.isfinite(a.stressed_chf) else None
        data["p_liq"] = a.p_liq
    return AlertMessage(
        message_id=ctx.message_id,
        severity=severity,
        title=title,
        body=tuple(body),
        data=data,
        fields=fields,
        action=action,
    )


def message_to_json(message: AlertMessage) -> dict[str, Any]:
    """The outbox form of a message (JSON-safe)."""
    return {
        "message_id": message.message_id,
        "severity": message.severity,
        "title": message.title,
        "body": list(message.body),
        "data": message.data,
        "fields": [list(f) for f in message.fields],
        "action": message.action,
    }


def message_from_json(doc: dict[str, Any]) -> AlertMessage:
    """Inverse of :func:`message_to_json`."""
    return AlertMessage(
        message_id=str(doc["message_id"]),
        severity=doc["severity"],
        title=str(doc["title"]),
        body=tuple(str(line) for line in doc.get("body", ())),
        data=dict(doc.get("data") or {}),
        fields=tuple((str(k), str(v)) for k, v in doc.get("fields", ())),
        action=doc.get("action"),
    )


# ------------------------------------------------------------------------------------------------
# channel forms


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def plain_text(message: AlertMessage) -> str:
    """Title and body lines, every URL removed (the link-free fallback)."""
    return _URL.sub("[link removed]", "\n".join((message.title, *message.body)))


def telegram_html(message: AlertMessage, limit: int = TELEGRAM_LIMIT) -> str:
    """HTML parse mode: bold title, escaped body; at most ``limit`` visible characters."""
    title = _cut(message.title, limit)
    rest_budget = limit - len(title) - 1
    body = "\n".join(message.body)
    parts = [f"<b>{html.escape(title, quote=False)}</b>"]
    if rest_budget > 0 and body:
        parts.append(html.escape(_cut(body, rest_budget), quote=False))
    return "\n".join(parts)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: AlertMessage) -> dict[str, Any]:
    """Incoming-webhook JSON: ``text`` for notifications plus Block Kit header/section/fields (Slack
    rejects an empty ``text`` or header, so both fall back to the severity)."""
    fallback = f"{message.severity.upper()} alert"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(message.title.strip() or fallback, 150)},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(_slack_escape("\n".join(message.body)) or " ", 3000)},
        },
    ]
    if message.fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _cut(f"*{_slack_escape(k)}*\n{_slack_escape(v)}", 2000)}
                    for k, v in message.fields[:10]
                ],
            }
        )
    text = plain_text(message).strip() or fallback
    return {"text": _cut(_slack_escape(text), 3000), "blocks": blocks}


def discord_payload(message: AlertMessage) -> dict[str, Any]:
    """Webhook JSON (sent with ``?wait=true``): content, one embed, no mentions parsed."""
    title = _cut(message.title, 256)
    pairs = [(_cut(k, 256), _cut(v or "-", 1024)) for k, v in message.fields[:25]]
    fields = [{"name": k, "value": v, "inline": True} for k, v in pairs]
    used = len(title) + sum(len(k) + len(v) for k, v in pairs)
    description = _cut("\n".join(message.body), max(1, min(4096, _DISCORD_EMBED_TOTAL - used)))
    return {
        "content": _cut(message.title, DISCORD_CONTENT_LIMIT),
        "embeds": [
            {"title": title, "description": description, "color": _COLOUR[message.severity], "fields": fields}
        ],
        "allowed_mentions": {"parse": []},
    }


def webhook_payload(message: AlertMessage) -> dict[str, Any]:
    """The generic webhook's JSON document (signed as raw bytes by the channel)."""
    return {
        "id": message.message_id,
        "severity": message.severity,
        "title": message.title,
        "text": plain_text(message),
        "action": message.action,
        "alert": message.data,
    }
