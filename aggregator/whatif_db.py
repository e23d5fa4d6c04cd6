"""The latest stored snapshot of a portfolio, rebuilt as ``risk.model`` objects (for ``crossmargin whatif``).

Read from the database (``aggregator.db.models``): the snapshot taken at or before ``at`` (default:
the latest), its ``account_snapshots`` rows (venue, deployment, account id, wallet, margin model name,
quote, status, venue health, chain/block, ``as_of``) and their ``positions`` rows (exact quantity and
price, factor, basis, kind, price source, the kind's parameters as stored by
``aggregator.db.convert.position_params``, an option's ``spot_price`` included when it was stored).

What the database does not keep, and what is assumed instead (each named in the warnings):

- margin-model parameters (``aggregator.margin_models.stored_model``): lending close factor 0.5, perp
  liquidation penalty 0.01 (the model defaults); an options account gets the Derive grid (the venue's
  own grid when the venue is ``aevo`` or ``deribit``); a standard-margin account gets its venue's
  standard model (``adapters.aevo.STANDARD`` / ``adapters.deribit.STANDARD``: the adapters build it
  from constants, so the venue name is all it takes to rebuild it exactly), the
  ``StandardMarginModel`` defaults for any other venue (warned); a Derive standard-margin account
  the adapter's option fractions without base collateral factors (not stored: no credit);
- ``interest_rate`` of lending positions (time to liquidation is unknown for the rebuilt book);
- ``MarginAccount.withdrawable`` and ``raw``.
The market state is ``aggregator.market_inputs.build_market`` at the snapshot's time (venue prices of
the snapshot, vols from the stored history).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator.db.engine import storage_errors
from aggregator.db.history import portfolio_id, positions_at
from aggregator.db.models import AccountSnapshot
from aggregator.errors import InputError
from aggregator.margin_models import STANDARD_PRESETS, stored_model
from risk.errors import RiskInputError
from risk.model import (
    AccountStatus,
    AsOf,
    FactorId,
    LendingParams,
    MarginAccount,
    MarginTier,
    OptionParams,
    PerpParams,
    Portfolio,
    Position,
    PositionKind,
    PriceSource,
)

__all__ = ["StoredBook", "load_stored_portfolio"]


@dataclass(frozen=True, slots=True)
class StoredBook:
    portfolio: Portfolio
    snapshot_id: int
    taken_at: datetime
    warnings: tuple[str, ...]


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _position(row: Any) -> Position:
    params = row.params or {}
    lending = perp = option = None
    if "lending" in params:
        p = params["lending"]
        lending = LendingParams(
            ltv=_d(p["ltv"]),
            liquidation_threshold=_d(p["liquidation_threshold"]),
            liquidation_bonus=_d(p["liquidation_bonus"]),
        )
    if "perp" in params:
        p = params["perp"]
        perp = PerpParams(
            entry_price=_d(p["entry_price"]),
            margin_tiers=tuple(
                MarginTier(_d(t["lower_bound"]), _d(t["maintenance_fraction"])) for t in p["margin_tiers"]
            ),
            accrued_funding=_d(p.get("accrued_funding", 0)),
            funding_rate_hourly=_d(p.get("funding_rate_hourly", 0)),
            requirement_basis=p.get("requirement_basis", "mark_notional"),
            min_requirement=_d(p.get("min_requirement", 0)),
            oracle_price=None if p.get("oracle_price") is None else _d(p["oracle_price"]),
        )
    if "option" in params:
        p = params["option"]
        option = OptionParams(
            strike=_d(p["strike"]),
            expiry=datetime.fromisoformat(p["expiry"]),
            option_type=p["option_type"],
            mark_iv=_d(p["mark_iv"]),
            underlying_price=_d(p["underlying_price"]),
            contract_size=_d(p.get("contract_size", 1)),
            spot_price=None if p.get("spot_price") is None else _d(p["spot_price"]),
        )
    return Position(
        token=row.token,
        factor=FactorId(row.factor),
        basis_factor=None if row.basis_factor is None else FactorId(row.basis_factor),
        kind=PositionKind(row.kind),
        quantity=row.quantity,
        price=row.price,
        price_source=PriceSource(row.price_source),
        lending=lending,
        perp=perp,
        option=option,
    )


def load_stored_portfolio(engine: Engine, name: str, at: datetime | None = None) -> StoredBook:
    """The snapshot of ``name`` at or before ``at`` as a ``Portfolio``; ``InputError`` when there is none."""
    found = positions_at(engine, name, at)
    if found is None:
        raise InputError(f"portfolio {name!r} has no stored snapshot{'' if at is None else f' before {at}'}")
    with storage_errors(engine.url, "read account snapshots"), engine.connect() as conn:
        portfolio_id(conn, name)
        c = AccountSnapshot
        rows = conn.execute(
            sa.select(
                c.venue,
                c.deployment,
                c.account_id,
                c.wallet,
                c.margin_model,
                c.quote,
                c.status,
                c.status_reason,
                c.venue_health,
                c.chain,
                c.block_number,
                c.block_hash,
                c.as_of,
            )
            .where(c.snapshot_id == found.snapshot_id)
            .order_by(c.id)
        ).all()
    by_account: dict[tuple[str, str], list[Position]] = defaultdict(list)
    for p in found.positions:
        by_account[(p.deployment, p.account_id)].append(_position(p))
    accounts: list[MarginAccount] = []
    warnings = [
        "rebuilt from the database: margin-model parameters are the model defaults (Aevo's and Deribit's "
        "own models for their accounts), interest rates and venue withdrawable figures are not stored"
    ]
    for row in rows:
        as_of = AsOf(
            timestamp=row.as_of, chain=row.chain, block_number=row.block_number, block_hash=row.block_hash
        )
        model = stored_model(row.margin_model, row.venue)
        if row.margin_model == "standard_margin" and row.venue not in STANDARD_PRESETS:
            warnings.append(
                f"{row.deployment}/{row.account_id}: no standard-margin parameters known for venue "
                f"{row.venue!r}; the StandardMarginModel defaults are used"
            )
        status = AccountStatus(row.status)
        try:
            if status is AccountStatus.UNAVAILABLE:
                accounts.append(
                    MarginAccount.unavailable(
                        venue=row.venue,
                        deployment=row.deployment,
                        account_id=row.account_id,
                        wallet=row.wallet,
                        margin_model=model,
                        as_of=as_of,
                        reason=row.status_reason or "unavailable",
                    )
                )
                continue
            accounts.append(
                MarginAccount(
                    venue=row.venue,
                    deployment=row.deployment,
                    account_id=row.account_id,
                    wallet=row.wallet,
                    margin_model=model,
                    positions=tuple(by_account.get((row.deployment, row.account_id), ())),
                    as_of=as_of,
                    status=status,
                    status_reason=row.status_reason,
                    venue_health=row.venue_health,
                    quote=FactorId(row.quote),
                )
            )
        except RiskInputError as exc:
            raise InputError(f"stored account {row.deployment}/{row.account_id}: {exc}") from None
    return StoredBook(
        portfolio=Portfolio(name=name, accounts=tuple(accounts)),
        snapshot_id=found.snapshot_id,
        taken_at=found.taken_at,
        warnings=tuple(warnings),
    )
