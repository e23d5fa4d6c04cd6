"""``[watch]``: how ``crossmargin watch`` schedules cycles (validated strictly like every section).

::

    [watch]
    interval = "60s"              # every portfolio's scan interval (a number is seconds)
    misfire_grace = "30s"         # a run delayed by more than this is skipped (APScheduler)
    block_driven = false          # also rescan on every new block of a chain the portfolio uses
    block_source = "auto"         # auto: WebSocket newHeads when the endpoint offers it, else polling
    block_poll_interval = "1s"    # eth_blockNumber polling period (no WebSocket)
    block_debounce = "0.2s"       # blocks closer than this trigger one rescan
    heartbeat_interval = "60s"    # how often the monitor checks its own last completed cycle
    retention_interval = "1h"     # how often retention runs (false `retention` disables it)
    shutdown_grace = "10s"        # SIGTERM: how long a cycle in flight may take to finish

    [watch.portfolios.treasury]   # per portfolio (stored name, or "wallets" for command-line wallets)
    interval = "15s"
    block_driven = true
    only = "aave_v3,hyperliquid"

    [watch.chains.arbitrum]       # per chain: a WebSocket endpoint for newHeads
    ws_url = "wss://arb-mainnet.example/ws"

Durations are ``30s`` / ``15m`` / ``2h`` / ``1d`` strings or plain numbers of seconds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from aggregator.alerts.rules import parse_duration

__all__ = ["ChainWatch", "PortfolioWatch", "Seconds", "WatchSettings", "parse_seconds"]


def parse_seconds(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            return parse_duration(text).total_seconds()
    return value


Seconds = Annotated[float, BeforeValidator(parse_seconds), Field(gt=0)]
"""A positive duration in seconds; TOML ``"30s"`` / ``"15m"`` or a number."""

NonNegativeSeconds = Annotated[float, BeforeValidator(parse_seconds), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortfolioWatch(_Strict):
    """``[watch.portfolios.<name>]``: overrides for one portfolio."""

    interval: Seconds | None = None
    block_driven: bool | None = None
    only: str | None = None  # FAMILY[:INSTANCE],... as `scan --only`
    enabled: bool = True


class ChainWatch(_Strict):
    """``[watch.chains.<name>]``: where new blocks of one chain are learnt from."""

    ws_url: str | None = None  # default: the first RPC URL with ws:// / wss:// (anvil serves both)
    poll_interval: Seconds | None = None


class WatchSettings(_Strict):
    """``[watch]`` (see the module docstring)."""

    interval: Seconds = 60.0
    misfire_grace: Seconds = 30.0
    block_driven: bool = False
    block_source: Literal["auto", "ws", "poll"] = "auto"
    block_poll_interval: Seconds = 1.0
    block_debounce: NonNegativeSeconds = 0.2
    heartbeat_interval: Seconds = 60.0
    retention: bool = True
    retention_interval: Seconds = 3600.0
    delivery_poll_interval: Seconds = 1.0
    shutdown_grace: NonNegativeSeconds = 10.0
    portfolios: dict[str, PortfolioWatch] = {}
    chains: dict[str, ChainWatch] = {}

    def for_portfolio(self, name: str) -> tuple[float, bool, str | None, bool]:
        """(interval, block_driven, only, enabled) of one portfolio, overrides applied."""
        own = self.portfolios.get(name, PortfolioWatch())
        return (
            own.interval if own.interval is not None else self.interval,
            own.block_driven if own.block_driven is not None else self.block_driven,
            own.only,
            own.enabled,
        )
