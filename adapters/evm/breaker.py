"""A circuit breaker per RPC endpoint.

States: *closed* (used normally), *open* (skipped until ``open_until``), *half-open* (after the
cool-down one request is let through; success closes, failure re-opens). It opens after
``failure_threshold`` consecutive failures, or at once on a rate limit (HTTP 429 or JSON-RPC -32005),
for ``Retry-After`` seconds when the endpoint sent one (capped at ``max_cooldown_s``), else
``cooldown_s``. A permanent fault (wrong chain id) disables the endpoint for the process lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CircuitBreaker"]


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    cooldown_s: float = 30.0
    max_cooldown_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    open_until: float | None = None
    disabled_reason: str | None = None
    last_reason: str | None = field(default=None)
    _trial_in_flight: bool = False

    def available(self) -> bool:
        """Whether a request may be sent now (closed, or half-open with no trial in flight)."""
        if self.disabled_reason is not None:
            return False
        if self.open_until is None:
            return True
        return self.clock() >= self.open_until and not self._trial_in_flight

    def before_request(self) -> None:
        if self.open_until is not None and self.clock() >= self.open_until:
            self._trial_in_flight = True

    def seconds_until_available(self) -> float | None:
        """0 if available now, None if disabled for good, else the remaining cool-down."""
        if self.disabled_reason is not None:
            return None
        if self.open_until is None:
            return 0.0
        return max(0.0, self.open_until - self.clock())

    def cancel_trial(self) -> None:
        """A request was abandoned (a hedge lost the race): it proved nothing either way."""
        self._trial_in_flight = False

    def record_success(self) -> None:
        self.failures = 0
        self.open_until = None
        self._trial_in_flight = False
        self.last_reason = None

    def record_failure(self, reason: str, *, rate_limited: bool = False,
                       retry_after_s: float | None = None) -> None:
        self.failures += 1
        self.last_reason = reason
        half_open_trial = self._trial_in_flight
        self._trial_in_flight = False
        if rate_limited or half_open_trial or self.failures >= self.failure_threshold:
            cooldown = self.cooldown_s if retry_after_s is None else retry_after_s
            self.open_until = self.clock() + min(max(cooldown, 0.0), self.max_cooldown_s)

    def disable(self, reason: str) -> None:
        self.disabled_reason = reason
        self.last_reason = reason

    @property
    def state(self) -> str:
        if self.disabled_reason is not None:
            return "disabled"
        if self.open_until is None:
            return "closed"
        return "half-open" if self.clock() >= self.open_until else "open"
