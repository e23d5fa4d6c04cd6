"""Hyperliquid ``POST /info``: clearinghouseState, spotClearinghouseState, userAbstraction, meta,
metaAndAssetCtxs, in the documented shapes (perps_options.md §1), computed from the state.

Rules (hyperliquid-docs margining / margin-tiers / liquidations):
``mark`` = the factor's mark; ``MM = ntl * 1/(2*maxLev_k) - deduction_k`` (continuous tiers);
``IM = ntl / leverage``; cross ``totalRawUsd = usdc - sum(szi * entryPx)``, ``accountValue = totalRawUsd +
sum(szi * mark)``; isolated ``rawUsd = margin - szi * entryPx`` and ``marginUsed = rawUsd + szi * mark``;
``liquidationPx = mark - side * (equity - MM) / |szi| / (1 - mmr * side)`` (null when not positive).
In unified / portfolio-margin mode the USDC (cross collateral plus isolated margins) is reported in
the spot state instead.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aggregator.devnet.venues.common import BadRequest, fmt, serve, state_of
from aggregator.devnet.venues.state import HlMarket, HlPosition, HlWallet, VenueState

__all__ = ["info", "mm_and_fraction"]

USD_PLACES = 6
SPOT_COLLATERAL_MODES = frozenset({"unifiedAccount", "portfolioMargin"})


def _fractions(market: HlMarket) -> list[tuple[Decimal, Decimal]]:
    return [(bound, Decimal(1) / (2 * Decimal(lev))) for bound, lev in market.tiers]


def mm_and_fraction(market: HlMarket, notional: Decimal) -> tuple[Decimal, Decimal]:
    """Tiered maintenance margin of ``|notional|`` and the fraction of the tier it falls in."""
    tiers = _fractions(market)
    deduction, k = Decimal(0), 0
    for i in range(1, len(tiers)):
        if abs(notional) >= tiers[i][0]:
            deduction += tiers[i][0] * (tiers[i][1] - tiers[i - 1][1])
            k = i
    return abs(notional) * tiers[k][1] - deduction, tiers[k][1]


def _liq(mark: Decimal, szi: Decimal, available: Decimal, mmr: Decimal) -> str | None:
    side = Decimal(1) if szi > 0 else Decimal(-1)
    liq = mark - side * available / abs(szi) / (1 - mmr * side)
    return fmt(liq, 8) if liq > 0 else None


def _markets(state: VenueState) -> dict[str, HlMarket]:
    return {m.name: m for m in state.hl_markets}


def _wallet(state: VenueState, user: object) -> HlWallet:
    if not isinstance(user, str):
        raise BadRequest("user: expected an address string")
    return state.hl_wallets.get(user.lower(), HlWallet(usdc=Decimal(0)))


def _position_json(
    state: VenueState, p: HlPosition, market: HlMarket, equity_for_liq: Decimal | None
) -> dict[str, Any]:
    mark = state.mark(market.factor)
    ntl = abs(p.szi) * mark
    mm, mmr = mm_and_fraction(market, ntl)
    upnl = p.szi * (mark - p.entry_px)
    im = ntl / p.leverage
    leverage: dict[str, Any] = {"type": "isolated" if p.isolated else "cross", "value": p.leverage}
    if p.isolated:
        raw_usd = p.isolated_margin - p.szi * p.entry_px
        margin_used = raw_usd + p.szi * mark
        leverage["rawUsd"] = fmt(raw_usd, USD_PLACES)
        available = margin_used - mm
    else:
        margin_used = im
        available = (equity_for_liq or Decimal(0)) - mm
    return {
        "type": "oneWay",
        "position": {
            "coin": p.coin,
            "szi": fmt(p.szi, market.sz_decimals),
            "entryPx": fmt(p.entry_px, 6),
            "positionValue": fmt(ntl, USD_PLACES),
            "unrealizedPnl": fmt(upnl, USD_PLACES),
            "returnOnEquity": fmt(upnl / (abs(p.szi) * p.entry_px / p.leverage), 7),
            "liquidationPx": _liq(mark, p.szi, available, mmr),
            "leverage": leverage,
            "marginUsed": fmt(margin_used, USD_PLACES),
            "maxLeverage": market.tiers[0][1],
            "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
        },
    }


def clearinghouse_state(state: VenueState, user: object) -> dict[str, Any]:
    wallet = _wallet(state, user)
    markets = _markets(state)
    open_positions = [p for p in wallet.positions if p.szi != 0]
    cross = [p for p in open_positions if not p.isolated]
    raw_cross = wallet.usdc - sum((p.szi * p.entry_px for p in cross), Decimal(0))
    cross_value = raw_cross + sum((p.szi * state.mark(markets[p.coin].factor) for p in cross), Decimal(0))
    cross_ntl = sum((abs(p.szi) * state.mark(markets[p.coin].factor) for p in cross), Decimal(0))
    cross_mm = sum(
        (mm_and_fraction(markets[p.coin], abs(p.szi) * state.mark(markets[p.coin].factor))[0] for p in cross),
        Decimal(0),
    )
    cross_im = sum((abs(p.szi) * state.mark(markets[p.coin].factor) / p.leverage for p in cross), Decimal(0))
    positions = [_position_json(state, p, markets[p.coin], cross_value) for p in open_positions]
    all_value, all_raw, all_ntl, all_used = cross_value, raw_cross, cross_ntl, cross_im
    for p in open_positions:
        if p.isolated:
            mark = state.mark(markets[p.coin].factor)
            raw_usd = p.isolated_margin - p.szi * p.entry_px
            all_value += raw_usd + p.szi * mark
            all_raw += raw_usd
            all_ntl += abs(p.szi) * mark
            all_used += raw_usd + p.szi * mark

    def summary(value: Decimal, used: Decimal, ntl: Decimal, raw: Decimal) -> dict[str, str]:
        return {
            "accountValue": fmt(value, USD_PLACES),
            "totalMarginUsed": fmt(used, USD_PLACES),
            "totalNtlPos": fmt(ntl, USD_PLACES),
            "totalRawUsd": fmt(raw, USD_PLACES),
        }

    return {
        "assetPositions": positions,
        "crossMaintenanceMarginUsed": fmt(cross_mm, USD_PLACES),
        "crossMarginSummary": summary(cross_value, cross_im, cross_ntl, raw_cross),
        "marginSummary": summary(all_value, all_used, all_ntl, all_raw),
        "time": int(time.time() * 1000),
        "withdrawable": fmt(max(Decimal(0), cross_value - cross_im), USD_PLACES),
    }


def spot_clearinghouse_state(state: VenueState, user: object) -> dict[str, Any]:
    wallet = _wallet(state, user)
    balances = dict(wallet.spot)
    if wallet.mode in SPOT_COLLATERAL_MODES:
        isolated = sum((p.isolated_margin for p in wallet.positions if p.isolated and p.szi != 0), Decimal(0))
        balances["USDC"] = balances.get("USDC", Decimal(0)) + wallet.usdc + isolated
    tokens = {"USDC": 0, "HYPE": 150}
    return {
        "balances": [
            {
                "coin": coin,
                "token": tokens.get(coin, 1000 + i),
                "hold": "0.0",
                "total": fmt(total, 8),
                "entryNtl": "0.0",
            }
            for i, (coin, total) in enumerate(sorted(balances.items()))
        ]
    }


def meta(state: VenueState) -> dict[str, Any]:
    tables = [
        [
            m.table_id,
            {
                "description": f"tiered {m.tiers[0][1]}x",
                "marginTiers": [{"lowerBound": fmt(b, 1), "maxLeverage": lev} for b, lev in m.tiers],
            },
        ]
        for m in state.hl_markets
        if m.table_id >= 50
    ]
    universe = [
        {
            "name": m.name,
            "szDecimals": m.sz_decimals,
            "maxLeverage": m.tiers[0][1],
            "marginTableId": m.table_id,
        }
        for m in state.hl_markets
    ]
    return {"universe": universe, "marginTables": tables, "collateralToken": 0}


def meta_and_asset_ctxs(state: VenueState) -> list[Any]:
    ctxs = []
    for m in state.hl_markets:
        mark, oracle = state.mark(m.factor), state.price(m.factor)
        ctxs.append(
            {
                "funding": fmt(m.funding, 10),
                "openInterest": "1000.0",
                "prevDayPx": fmt(oracle, 6),
                "dayNtlVlm": "1000000.0",
                "premium": "0.0",
                "oraclePx": fmt(oracle, 6),
                "markPx": fmt(mark, 6),
                "midPx": fmt(mark, 6),
                "impactPxs": [fmt(mark, 6), fmt(mark, 6)],
                "dayBaseVlm": "100.0",
            }
        )
    return [meta(state), ctxs]


async def info(request: Request) -> Response:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    state = state_of(request)

    def build() -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise BadRequest("expected a JSON object with a 'type'")
        kind = body["type"]
        with state.lock:
            if kind == "clearinghouseState":
                return clearinghouse_state(state, body.get("user"))
            if kind == "spotClearinghouseState":
                return spot_clearinghouse_state(state, body.get("user"))
            if kind == "userAbstraction":
                return _wallet(state, body.get("user")).mode
            if kind == "meta":
                return meta(state)
            if kind == "metaAndAssetCtxs":
                return meta_and_asset_ctxs(state)
        raise BadRequest(f"unsupported info type {kind!r}")

    return await serve(request, "hyperliquid", build)
