"""``crossmargin scan --csv``: one row per margin account (RFC 4180, header row first).

Columns (``CSV_COLUMNS``; documented in ``docs/scan-json.md``):

``portfolio, venue, deployment, chain, wallet, account_id, status, status_reason, health,
health_source, venue_reported_health, model_drift, resources_usd, requirement_usd, p_liq,
liquidation_prices, distance, distance_factor, block, as_of``

``health`` is the engine's figure (``risk.health``; ``inf`` when the account has no requirement, empty
when not assessed); ``health_source`` and ``venue_reported_health`` as in the JSON document;
``liquidation_prices`` is ``FACTOR=PRICE`` pairs joined by ``;``; ``distance`` is the smallest relative
move from the reference price to one of those liquidation prices (``-0.1667`` = 16.67 % down) and
``distance_factor`` its factor. Several portfolios give rows one after another (same header).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from aggregator.report import ScanAccountOut, ScanReport

__all__ = ["CSV_COLUMNS", "csv_rows", "to_csv"]

CSV_COLUMNS = (
    "portfolio",
    "venue",
    "deployment",
    "chain",
    "wallet",
    "account_id",
    "status",
    "status_reason",
    "health",
    "health_source",
    "venue_reported_health",
    "model_drift",
    "resources_usd",
    "requirement_usd",
    "p_liq",
    "liquidation_prices",
    "distance",
    "distance_factor",
    "block",
    "as_of",
)


def _num(value: float | None, *, inf_when_none: bool = False) -> str:
    if value is None:
        return "inf" if inf_when_none else ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _distance(account: ScanAccountOut, prices: dict[str, float]) -> tuple[str, str]:
    if account.risk is None:
        return "", ""
    best: tuple[float, str] | None = None
    for factor, price in account.risk.liquidation_price.items():
        ref = prices.get(factor)
        if price is None or not ref:
            continue
        move = price / ref - 1.0
        if best is None or abs(move) < abs(best[0]):
            best = (move, factor)
    return ("", "") if best is None else (repr(best[0]), best[1])


def csv_rows(report: ScanReport) -> list[list[str]]:
    prices = report.market.prices if report.market is not None else {}
    rows = []
    for a in report.accounts:
        risk = a.risk
        distance, factor = _distance(a, prices)
        liq = ";".join(
            f"{f}={p!r}" for f, p in sorted((risk.liquidation_price if risk else {}).items()) if p is not None
        )
        rows.append(
            [
                report.portfolio or "",
                a.venue,
                a.deployment,
                a.chain or "",
                a.wallet,
                a.account_id,
                a.status,
                a.status_reason or "",
                _num(risk.health, inf_when_none=True) if risk is not None else "",
                a.health_source or "",
                "" if a.venue_reported_health is None else format(a.venue_reported_health, "f"),
                _num(risk.model_drift) if risk else "",
                _num(risk.resources_usd) if risk else "",
                _num(risk.requirement_usd) if risk else "",
                _num(risk.p_liq) if risk else "",
                liq,
                distance,
                factor,
                "" if a.as_of.block is None else str(a.as_of.block),
                a.as_of.timestamp.isoformat(),
            ]
        )
    return rows


def to_csv(reports: Sequence[ScanReport]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        writer.writerows(csv_rows(report))
    return buffer.getvalue()
