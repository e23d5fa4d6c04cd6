"""The versioned JSON document printed by ``crossmargin scan --json`` (``SCHEMA_VERSION = "1"``).

Shape (``docs/scan-json.md`` is the user-facing description)::

    {"schema_version": "1", "generated_at": ISO-8601, "wallets": [...],
     "accounts": [AccountOut...], "reads": [ReadOut...], "warnings": [str...]}

Number format (stable contract)
-------------------------------
Every exact figure (quantities, prices, values, health) is a ``decimal.Decimal`` in the model and is
written as a JSON *number* carrying its exact decimal digits, never rounded through a binary float:
``"health": 1.234567890123456789``. Exponents are never written (``format(d, "f")``). A consumer that
needs exactness parses with ``json.loads(text, parse_float=decimal.Decimal)`` (``ScanReport.from_json``
does). Render with ``ScanReport.to_json()``: pydantic's own ``model_dump_json`` would write Decimals as
strings and is not the wire format.

Health
------
``health`` is ``resources / requirement`` at the venue's current prices (design §4.1): a number, or
``null`` when the account has no requirement (no debt: infinite health). ``health_source`` says where
the figure came from: ``"risk"`` (the risk engine's exact per-venue health), ``"lending_formula"``
(the placeholder ``Σ collateral·price·LT / Σ |debt|·price`` used while the engine is absent), or
``null`` when no health was computed (an unavailable account, or a margin model this build cannot
evaluate yet) — then ``health`` is ``null`` too and means *unknown*, not infinite.
``venue_reported_health`` is the venue's own figure normalized the same way (``null`` when the venue
publishes none, or reports infinity).

Extending
---------
New keys may be added to any object; existing keys keep their name, type and meaning. The risk
engine's composite figures are added by ``aggregator.report_composite`` on top of ``AccountOut``.

Added by the scan pipeline (``aggregator.pipeline``; still ``schema_version`` "1", additive only):
every account carries ``risk`` (the engine's per-account figures, ``AccountRiskOut``, or ``null`` when
the account was not assessed), and the document carries ``portfolio``, ``composite`` (the
``CompositeOut`` of ``crossmargin assess --json``), ``market`` (the factor prices, vols and where they
came from), ``alerts`` (the alert decisions of the cycle), ``critical_chf`` (the exit-4 threshold) and
``snapshot_id`` (the stored snapshot, ``null`` with ``--no-store``). The JSON Schema of the whole
document is ``docs/scan-schema.json`` (``aggregator.schema``).

``health_source`` with the pipeline: ``"lending_formula"`` for lending accounts (the engine's lending
formula evaluated exactly in Decimals, so it matches the venue's own figure to its rounding) and
``"risk"`` for every other margin model (the engine's figure, a float written with its shortest
exact decimal form). ``risk.health`` is always the engine's float figure.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict

from aggregator.scan import ScanResult
from risk.model import USD, AccountStatus, LendingModel, MarginAccount, Position, PositionKind

__all__ = [
    "SCHEMA_VERSION",
    "AccountOut",
    "AlertOut",
    "AsOfOut",
    "IdleBalanceOut",
    "MarketOut",
    "PositionOut",
    "ReadOut",
    "ScanAccountOut",
    "ScanReport",
    "account_health",
    "account_out",
    "build_report",
    "dumps",
    "lending_formula_health",
    "report_from_scan",
]

SCHEMA_VERSION: Literal["1"] = "1"

HealthSource = Literal["risk", "lending_formula"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AsOfOut(_Out):
    """When an account was read: the pinned block (EVM) or the API's server time (HTTP venues)."""

    chain: str | None
    block: int | None
    block_hash: str | None
    timestamp: datetime


class PositionOut(_Out):
    """One position. ``quantity`` is signed (debt < 0); ``price`` is in the account's ``quote``;
    ``value_usd = quantity·price`` when the quote is USD, else ``null`` (no USD rate for the quote)."""

    token: str
    factor: str
    kind: str
    quantity: Decimal
    price: Decimal
    value_usd: Decimal | None


class AccountOut(_Out):
    """One margin account as scanned.

    ``health``: a number, or ``null`` for "no debt / infinite" when ``health_source`` is set;
    ``null`` with ``health_source = null`` means not computed (see the module docstring).
    ``status`` is ``ok``, ``stale`` or ``unavailable``; ``status_reason`` is set unless ``ok``.
    """

    venue: str
    deployment: str
    chain: str | None
    account_id: str
    wallet: str
    status: str
    status_reason: str | None
    health: Decimal | None
    health_source: HealthSource | None
    venue_reported_health: Decimal | None
    quote: str
    as_of: AsOfOut
    positions: tuple[PositionOut, ...]


class ReadOut(_Out):
    """One (deployment, wallet) read: ``ok`` (``accounts`` found, possibly 0) or ``unavailable``."""

    deployment: str
    wallet: str
    status: str
    reason: str | None
    accounts: int


class ScanAccountOut(AccountOut):
    """``AccountOut`` plus ``risk``: the engine's per-account figures (``null``: not assessed)."""

    risk: _composite.AccountRiskOut | None = None


class MarketOut(_Out):
    """The cycle's market inputs (``aggregator.market_inputs``).

    ``prices``: factor -> reference USD price (the median of the venues' prices); ``price_sources``:
    ``venues``, ``stored`` (last stored price) or ``assumed`` (a basis without any price: 1.0);
    ``vols``: annualized; ``vol_sources``: ``ewma`` (from stored history) or ``default``
    (``config/risk.toml``); ``history_days``: daily returns of stored history per factor."""

    prices: dict[str, float]
    price_sources: dict[str, str]
    vols: dict[str, float]
    vol_sources: dict[str, str]
    history_days: dict[str, int]


class AlertOut(_Out):
    """One alert decision of the cycle: ``kind`` fire / escalate / repeat / resolve, ``tier`` warning /
    critical / ok, ``account`` the account key or ``null`` for a portfolio-wide rule."""

    rule: str
    portfolio: str
    account: str | None
    kind: str
    tier: str
    value: float | None
    title: str


class IdleBalanceOut(_Out):
    """Tokens sitting in a wallet on one chain, outside every margin account
    (``adapters.wallet_balances``, read at the chain's pinned block): ``amount`` whole tokens,
    ``price_usd`` per token at the cycle's factor prices (``null``: no price for its factor in this
    cycle), ``value_usd`` = amount x price."""

    wallet: str
    chain: str
    token: str
    amount: Decimal
    price_usd: float | None = None
    value_usd: float | None = None


class ScanReport(_Out):
    """The whole ``scan --json`` document."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    generated_at: datetime
    wallets: tuple[str, ...]
    accounts: tuple[ScanAccountOut, ...]
    reads: tuple[ReadOut, ...]
    warnings: tuple[str, ...] = ()
    portfolio: str | None = None
    composite: _composite.CompositeOut | None = None
    market: MarketOut | None = None
    alerts: tuple[AlertOut, ...] = ()
    critical_chf: float | None = None
    snapshot_id: int | None = None
    # non-zero idle wallet balances per chain and token (what the rebalancing advice may move)
    idle_balances: tuple[IdleBalanceOut, ...] = ()

    def to_json(self, *, indent: int | None = 2) -> str:
        """The wire format: Decimals as exact JSON numbers (see the module docstring)."""
        return dumps(self.model_dump(mode="python"), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> ScanReport:
        """Parse a document written by ``to_json`` without losing digits."""
        return cls.model_validate(json.loads(text, parse_float=Decimal))


# ---------------------------------------------------------------------------------------------
# health at current prices


def _infinite_to_none(value: Decimal | None) -> Decimal | None:
    if value is None or value.is_infinite() or value.is_nan():
        return None
    return value


def lending_formula_health(positions: Iterable[Position]) -> Decimal:
    """``Σ collateral·price·LT / Σ |debt|·price`` (design §4.1, lending); ``Infinity`` without debt.

    A placeholder for the risk engine's exact per-venue figure (it ignores venue rounding)."""
    resources = Decimal(0)
    requirement = Decimal(0)
    for p in positions:
        if p.kind is PositionKind.COLLATERAL and p.lending is not None:
            resources += p.quantity * p.price * p.lending.liquidation_threshold
        elif p.kind is PositionKind.DEBT:
            requirement += -p.quantity * p.price
    if requirement <= 0:
        return Decimal("Infinity")
    return resources / requirement


def _engine_health() -> Callable[[MarginAccount], Decimal | None] | None:
    """The risk engine's exact health, if this build has one: ``account_health(account)`` in
    ``risk.exact`` or ``risk.health`` (returns ``Decimal('Infinity')`` for no requirement)."""
    for module_name in ("risk.exact", "risk.health"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        function = getattr(module, "account_health", None)
        if callable(function):
            return cast(Callable[[MarginAccount], Decimal | None], function)
    return None


def account_health(account: MarginAccount) -> tuple[Decimal | None, HealthSource | None]:
    """(health with infinity as None, where it came from); (None, None) when not computed."""
    if account.status is AccountStatus.UNAVAILABLE:
        return None, None
    engine = _engine_health()
    if engine is not None:
        value = engine(account)
        if value is not None:
            return _infinite_to_none(value), "risk"
    if isinstance(account.margin_model, LendingModel):
        return _infinite_to_none(lending_formula_health(account.positions)), "lending_formula"
    return None, None


# ---------------------------------------------------------------------------------------------
# conversion from the vocabulary


def _position_out(p: Position, quote: str) -> PositionOut:
    return PositionOut(
        token=p.token,
        factor=str(p.factor),
        kind=p.kind.value,
        quantity=p.quantity,
        price=p.price,
        value_usd=p.quantity * p.price if quote == USD else None,
    )


def account_out(account: MarginAccount) -> AccountOut:
    """The report row of one ``risk.model.MarginAccount``."""
    health, source = account_health(account)
    quote = str(account.quote)
    return AccountOut(
        venue=account.venue,
        deployment=account.deployment,
        chain=account.as_of.chain,
        account_id=account.account_id,
        wallet=account.wallet,
        status=account.status.value,
        status_reason=account.status_reason,
        health=health,
        health_source=source,
        venue_reported_health=_infinite_to_none(account.venue_health),
        quote=quote,
        as_of=AsOfOut(
            chain=account.as_of.chain,
            block=account.as_of.block_number,
            block_hash=account.as_of.block_hash,
            timestamp=account.as_of.timestamp,
        ),
        positions=tuple(_position_out(p, quote) for p in account.positions),
    )


def build_report(
    *,
    wallets: Sequence[str],
    accounts: Iterable[MarginAccount],
    reads: Iterable[ReadOut],
    warnings: Iterable[str] = (),
    generated_at: datetime | None = None,
) -> ScanReport:
    """Assemble the document from a scan's accounts and per-(deployment, wallet) reads."""
    return ScanReport(
        generated_at=generated_at or datetime.now(UTC),
        wallets=tuple(wallets),
        accounts=tuple(ScanAccountOut(**account_out(a).model_dump()) for a in accounts),
        reads=tuple(reads),
        warnings=tuple(warnings),
    )


def report_from_scan(result: ScanResult, *, generated_at: datetime | None = None) -> ScanReport:
    """The document of one :class:`aggregator.scan.ScanResult`."""
    return build_report(
        wallets=result.wallets,
        accounts=result.accounts,
        reads=(
            ReadOut(deployment=r.deployment, wallet=r.wallet, status=r.status, reason=r.reason,
                    accounts=r.accounts)
            for r in result.reads
        ),
        warnings=result.warnings,
        generated_at=generated_at,
    )


# ---------------------------------------------------------------------------------------------
# JSON with exact decimal numbers


def _decimal_literal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} has no JSON number form; map it to null first")
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text


def _encode(value: Any, indent: int | None, level: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _decimal_literal(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value, allow_nan=False)
    if isinstance(value, Enum):
        return _encode(value.value, indent, level)
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, str):
        return json.dumps(value)
    newline = "" if indent is None else "\n" + " " * (indent * (level + 1))
    close = "" if indent is None else "\n" + " " * (indent * level)
    separator = ", " if indent is None else ","
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = [f"{newline}{json.dumps(str(k))}: {_encode(v, indent, level + 1)}" for k, v in value.items()]
        return "{" + separator.join(items) + close + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [f"{newline}{_encode(v, indent, level + 1)}" for v in value]
        return "[" + separator.join(items) + close + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """``json.dumps`` for plain data whose Decimals are written as exact JSON numbers."""
    return _encode(value, indent, 0)


# ---------------------------------------------------------------------------------------------
# the composite models live in aggregator.report_composite, which imports this module: bind the
# module (not its names) so that either import order works, and resolve the annotations once both
# modules are loaded: ``report_composite`` calls ``model_rebuild`` on both models at its end.

import aggregator.report_composite as _composite  # noqa: E402
