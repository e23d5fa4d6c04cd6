"""What the rebalancing advisor may move, and its knobs.

Read by ``risk.rebalance.advise`` together with the engine's own inputs (``Portfolio``,
``MarketState``, ``RiskParams``). Everything here is data the caller supplies; the movable amounts
*inside* margin accounts are not listed here, they are derived from the accounts themselves under
each venue's rule (``risk.rebalance.variables``).

Locations
---------
A token is identified by its symbol *and* its location: the chain it sits on (``arbitrum``) or, for
an off-chain venue, the venue's deployment (``hyperliquid:main``). An account's location is
``RebalanceParams.locations[deployment]`` when given, else ``MarginAccount.as_of.chain``, else its
deployment. Moving a token between two locations needs a bridge step: the move is marked slow with
``RebalanceParams.bridge_delay(from, to)`` minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from risk.errors import RiskInputError
from risk.model import FactorId, MarginAccount

__all__ = ["CollateralSlot", "IdleBalance", "Movable", "RebalanceParams"]


@dataclass(frozen=True, slots=True)
class IdleBalance:
    """Tokens sitting in a wallet, outside every margin account: ``amount`` of ``token`` on
    ``location``. ``price_usd`` is the current USD price per token; when None the advisor uses the
    price of the same token in the book (the venue's price at the destination)."""

    wallet: str
    location: str
    token: str
    amount: Decimal
    price_usd: float | None = None

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise RiskInputError(
                f"idle {self.token} on {self.location}: amount must be >= 0, got {self.amount}"
            )
        if self.price_usd is not None and not self.price_usd > 0:
            raise RiskInputError(f"idle {self.token} on {self.location}: price must be > 0")

    @property
    def label(self) -> str:
        return f"wallet {self.wallet} on {self.location}"


@dataclass(frozen=True, slots=True)
class CollateralSlot:
    """A token a lending account does not hold yet but would accept as collateral (Aave: a reserve
    with a non-zero liquidation threshold). ``price`` is the venue's price in the account's quote."""

    account_key: str
    token: str
    factor: FactorId
    liquidation_threshold: Decimal
    ltv: Decimal
    price: Decimal
    basis_factor: FactorId | None = None
    liquidation_bonus: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Movable:
    """What the caller adds to the accounts' own withdrawable amounts."""

    idle: tuple[IdleBalance, ...] = ()
    new_collateral: tuple[CollateralSlot, ...] = ()
    frozen_accounts: frozenset[str] = frozenset()  # account keys never withdrawn from or deposited to


@dataclass(frozen=True, slots=True)
class RebalanceParams:
    """Knobs of the advisor (defaults in brackets).

    - ``source_min_health`` [1.5]: an account collateral is withdrawn from keeps at least this
      health at current prices (an account already below it gives nothing); lending accounts must
      also keep the venue's borrow rule ``sum collateral x LTV >= debt`` (Aave, Compound).
    - ``perp_min_health_without_venue_figure`` [2.0]: the same floor for a perp or options account
      whose venue reported no ``withdrawable`` figure (maintenance is about half of initial margin at
      full leverage on Hyperliquid, so 2 approximates "stay above initial margin").
    - ``bridge_delay_minutes`` [30] (per pair: ``bridge_delays[(from, to)]``): delay of a move between
      two locations; ``bridge_cost`` [0.5]: extra cost per bridged USD in the least-moved objective,
      so a same-location move is preferred at equal effect.
    - ``min_move_usd`` [1.0]: smaller moves are dropped (unless dropping one would lower a figure).
    - ``max_chf`` [100]: cap on the objective (repaying every debt would make it infinite).
    - ``tolerance`` [1e-6] relative, ``max_iterations`` [30]: convergence of the max-min iteration.
    - ``locations``: deployment -> location overrides (see the module docstring).
    """

    source_min_health: float = 1.5
    perp_min_health_without_venue_figure: float = 2.0
    bridge_delay_minutes: float = 30.0
    bridge_delays: Mapping[tuple[str, str], float] = field(default_factory=dict)
    bridge_cost: float = 0.5
    min_move_usd: float = 1.0
    max_chf: float = 100.0
    tolerance: float = 1e-6
    max_iterations: int = 30
    locations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source_min_health < 1 or self.perp_min_health_without_venue_figure < 1:
            raise RiskInputError("a source's minimum health must be >= 1")
        if self.bridge_delay_minutes < 0 or self.bridge_cost < 0 or self.min_move_usd < 0:
            raise RiskInputError("bridge delay, bridge cost and minimum move must be >= 0")
        if not self.max_chf > 1:
            raise RiskInputError("max_chf must be > 1")
        if not (self.tolerance > 0 and self.max_iterations > 0):
            raise RiskInputError("tolerance and max_iterations must be > 0")

    def location_of(self, account: MarginAccount) -> str:
        return self.locations.get(account.deployment) or account.as_of.chain or account.deployment

    def bridge_delay(self, source: str, destination: str) -> float:
        if source == destination:
            return 0.0
        return float(self.bridge_delays.get((source, destination), self.bridge_delay_minutes))
