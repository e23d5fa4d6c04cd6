"""Alert rules and channels as configured under ``[alerts]`` (TOML), validated strictly.

::

    [alerts.channels.ops]                # secrets (bot_token, webhook_url, signing_secret)
    type = "telegram"                    # come from the secrets file or the environment
    chat_id = "-1001234567890"

    [[alerts.rules]]
    name = "composite-health"
    metric = "chf"                       # see Metric
    warning = 1.25                       # fire below these (above, for "higher is worse" metrics)
    critical = 1.10
    hysteresis = 0.05                    # resolve/de-escalate only once 5% past the threshold
    channels = ["ops"]
    repeat_warning = "6h"
    repeat_critical = "30m"
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "AlertChannel",
    "AlertRule",
    "AlertsSettings",
    "DeliverySettings",
    "Metric",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``1d``, ``2w``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (use e.g. 30s, 15m, 2h, 1d, 2w)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class Metric(StrEnum):
    CHF = "chf"
    STRESSED_CHF = "stressed_chf"
    ACCOUNT_HEALTH = "account_health"
    P_LIQ = "p_liq"
    DISTANCE_TO_LIQUIDATION = "distance_to_liquidation"  # smallest relative move to liquidation
    HEDGE_BREAK = "hedge_break"  # 1 when a hedge break lies within the stress range
    MODEL_DRIFT = "model_drift"  # |our health - venue health| / venue health
    VENUE_UNAVAILABLE = "venue_unavailable"  # 1 when a venue could not be read (or is stale)
    ORACLE_STALE = "oracle_stale"  # seconds since the oracle's last update beyond its heartbeat
    HEARTBEAT = "heartbeat"  # seconds since the monitor's last completed cycle

    @property
    def higher_is_worse(self) -> bool:
        return self not in (
            Metric.CHF,
            Metric.STRESSED_CHF,
            Metric.ACCOUNT_HEALTH,
            Metric.DISTANCE_TO_LIQUIDATION,
        )

    @property
    def per_account(self) -> bool:
        return self in (
            Metric.ACCOUNT_HEALTH,
            Metric.MODEL_DRIFT,
            Metric.VENUE_UNAVAILABLE,
            Metric.ORACLE_STALE,
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertChannel(_Strict):
    type: Literal["telegram", "slack", "discord", "webhook"]
    chat_id: str | None = None  # telegram
    api_base: str | None = None  # self-hosted gateways and tests; default per type
    bot_token: SecretStr | None = None  # telegram (secret)
    webhook_url: SecretStr | None = None  # slack, discord, webhook (secret)
    signing_secret: SecretStr | None = None  # webhook: whsec_... (secret)
    allow_private: bool = False  # allow loopback/private destinations (devnet, LAN)

    @model_validator(mode="after")
    def _required_fields(self) -> AlertChannel:
        if self.type == "telegram" and not self.chat_id:
            raise ValueError("a telegram channel needs chat_id")
        return self


class AlertRule(_Strict):
    name: Annotated[str, Field(min_length=1)]
    metric: Metric
    warning: float | None = None
    critical: float | None = None
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = 0.05
    channels: Annotated[tuple[str, ...], Field(min_length=1)]
    portfolio: str = "*"  # a portfolio name, or * for all
    wallet: str | None = None  # restrict to one wallet's accounts
    portfolios: tuple[str, ...] = ()  # additionally restrict to these portfolios (empty: no restriction)
    wallets: tuple[str, ...] = ()  # additionally restrict to these wallets' accounts (empty: all)
    chat_id: str | None = None  # telegram: send this rule to another chat than the channel's
    repeat_warning: str = "6h"
    repeat_critical: str = "30m"
    enabled: bool = True

    @field_validator("repeat_warning", "repeat_critical")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _thresholds_make_sense(self) -> AlertRule:
        if self.warning is None and self.critical is None:
            raise ValueError(f"rule {self.name!r}: set warning, critical or both")
        if self.warning is not None and self.critical is not None:
            wrong_order = (
                (self.critical < self.warning)
                if self.metric.higher_is_worse
                else (self.critical > self.warning)
            )
            if wrong_order:
                worse = "above" if self.metric.higher_is_worse else "below"
                raise ValueError(
                    f"rule {self.name!r}: critical ({self.critical}) must be {worse} "
                    f"warning ({self.warning}) for {self.metric.value}"
                )
        for value in (self.warning, self.critical):
            if value is None:
                continue
            if value < 0:
                raise ValueError(f"rule {self.name!r}: threshold {value} is negative")
            if self.metric is Metric.P_LIQ and value > 1:
                raise ValueError(f"rule {self.name!r}: p_liq threshold {value} is a probability, not > 1")
        return self

    def repeat_interval(self, tier: Literal["warning", "critical"]) -> timedelta:
        return parse_duration(self.repeat_critical if tier == "critical" else self.repeat_warning)

    def applies_to_portfolio(self, portfolio: str) -> bool:
        """``portfolio`` (``*`` = all) and ``portfolios`` (empty = all) must both admit the name."""
        if self.portfolio not in ("*", portfolio):
            return False
        return not self.portfolios or portfolio in self.portfolios

    def wallet_filter(self) -> frozenset[str] | None:
        """Lower-cased wallets the rule is restricted to (``wallet`` and ``wallets``), None = all."""
        chosen = {w.lower() for w in (*self.wallets, *((self.wallet,) if self.wallet else ()))}
        return frozenset(chosen) if chosen else None


class DeliverySettings(_Strict):
    """How the delivery worker retries (``[alerts.delivery]``).

    Backoff is exponential with full jitter: attempt ``n`` (1-based) waits ``uniform(0, min(max_delay,
    base_delay * 2**(n-1)))``, at least the provider's ``retry_after``. A row still failing once it is
    older than ``chat_max_age`` (Telegram, Slack, Discord) or ``webhook_max_age`` goes to the dead
    letters (status ``dead``). ``max_in_flight`` messages per channel are sent at once and their results
    stored in one transaction: 1 (the default) means a crash can duplicate at most one message per
    channel; more gives throughput on a slow disk at the price of more possible duplicates.
    """

    base_delay: str = "2s"
    max_delay: str = "30m"
    chat_max_age: str = "24h"
    webhook_max_age: str = "72h"
    timeout: str = "15s"
    batch_size: Annotated[int, Field(gt=0, le=1000)] = 100
    max_in_flight: Annotated[int, Field(gt=0, le=64)] = 1  # per channel; a crash may duplicate this many

    @field_validator("base_delay", "max_delay", "chat_max_age", "webhook_max_age", "timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError(f"{value!r} must be a positive duration")
        return value

    def max_age(self, channel_type: str) -> timedelta:
        return parse_duration(self.webhook_max_age if channel_type == "webhook" else self.chat_max_age)


class AlertsSettings(_Strict):
    channels: dict[str, AlertChannel] = {}
    rules: tuple[AlertRule, ...] = ()
    delivery: DeliverySettings = DeliverySettings()

    @model_validator(mode="after")
    def _channels_exist(self) -> AlertsSettings:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert rule names must be unique: {duplicates}")
        for rule in self.rules:
            for channel in rule.channels:
                if channel not in self.channels:
                    import difflib

                    close = difflib.get_close_matches(channel, list(self.channels), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ValueError(f"rule {rule.name!r}: unknown channel {channel!r}{hint}")
        return self
