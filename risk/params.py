"""Risk-engine parameters (the shape of ``config/risk.toml``'s values once validated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from risk.model import FactorId

__all__ = ["NamedScenario", "RiskParams"]


@dataclass(frozen=True, slots=True)
class NamedScenario:
    """A fixed shock: relative moves per factor or per factor group (``crypto``, ``alts``,
    ``stablecoins``, ``lst``), an optional vol move; unlisted factors stay put."""

    name: str
    factor_moves: dict[str, float]
    vol_move: float = 0.0


@dataclass(frozen=True, slots=True)
class RiskParams:
    horizon_hours: float = 24.0
    mc_paths: int = 10_000
    mc_steps: int = 24
    mc_seed: int = 7
    mc_distribution: Literal["student_t", "normal"] = "student_t"
    student_t_df: float = 4.0
    scan_sigmas: float = 3.0  # scan range = k * sigma over the horizon
    scan_range_floor: float = 0.10  # never scan less than +-10%
    vol_scan_up: float = 0.5  # relative IV shock of the grid
    vol_scan_down: float = 0.25
    extreme_multiple: float = 2.0  # extreme moves at this multiple of the scan range
    extreme_weight: float = 0.35  # share of the extreme-move loss that counts (SPAN)
    ewma_lambda: float = 0.94
    min_history_days: int = 30
    vol_floor: float = 0.20
    default_vols: dict[str, float] = field(default_factory=dict)
    default_correlation: float = 0.8  # between crypto factors until history exists
    factor_groups: dict[str, tuple[FactorId, ...]] = field(default_factory=dict)
    named_scenarios: tuple[NamedScenario, ...] = ()
    hedge_net_to_gross: float = 0.25  # a group is a hedge when |net delta| <= this share of gross
    drift_tolerance: float = 0.001  # relative drift from the venue's own health that is alerted on
    driver: FactorId = FactorId("ETH")
