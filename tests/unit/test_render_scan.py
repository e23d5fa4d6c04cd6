"""The human ``scan`` report at 120 columns: account keys stay distinct and whole, nothing is cut off.

The document is a ``ScanReport`` parsed from the JSON shape ``scan --json`` prints (two Morpho Blue
markets of one wallet, a GMX position, a dYdX subaccount, an unavailable venue, a rebalancing move and
alert decisions); it is rendered by ``aggregator.cli.render_scan`` into a 120-column console and read
back as text.
"""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console

from aggregator.cli.render_scan import fmt_figure, fmt_move, fmt_quantity, render_scan, short_key
from aggregator.report import ScanReport

WALLET = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
MARKET_A = "0x00351e04cd007999233ebb5eb8e4cfb9ceda2fe9e40d8facd65e77f867508d86"
MARKET_B = "0xf907adc480986025c75b57a3b600013ea1246eefd70b7accdb1357dc5951740b"
GMX_KEY = "0x61023ab5ff18f0c78781c9445737ba17d9ce0a03b22b79cbbdc872e1030448aa"
DYDX = "dydx1jrmehaht938cwqm9u7zestslzq0f8wgxek6ckq"
NOW = "2026-11-21T21:24:49+00:00"


def _account(deployment: str, account_id: str, health: float | None, *, block: int | None = 154,
             status: str = "ok", reason: str | None = None) -> dict[str, Any]:
    venue = deployment.partition(":")[0]
    risk = None if health is None else {
        "health": health, "resources_usd": 1.0, "requirement_usd": 1.0, "model_drift": 0.0,
        "liquidation_price": {"ETH": 1860.47, "USDC/USD": 1.61}, "time_to_liquidation_days": None,
        "p_liq": 0.0, "greeks": None,
    }
    return {
        "venue": venue, "deployment": deployment, "chain": "devnet" if block is not None else None,
        "account_id": account_id, "wallet": WALLET, "status": status, "status_reason": reason,
        "health": health, "health_source": None if health is None else "risk",
        "venue_reported_health": None, "quote": "USD",
        "as_of": {"chain": "devnet" if block is not None else None, "block": block, "block_hash": None,
                  "timestamp": NOW},
        "positions": [] if health is None else [
            {"token": "WETH", "factor": "ETH", "kind": "collateral", "quantity": 5, "price": 3000,
             "value_usd": 15000},
            {"token": "USDC", "factor": "USD", "kind": "debt", "quantity": -8000, "price": 1,
             "value_usd": -8000},
        ],
        "risk": risk,
    }


def _report() -> ScanReport:
    reason = "HTTP 503 from the info endpoint after 3 attempts (https://api.hyperliquid.xyz/info)"
    composite = {
        "chf": 1.54, "chf_account": f"morpho_blue:devnet/{WALLET}/{MARKET_B}", "stressed_chf": 1.2,
        "stressed_scenario": "ETH -11.0%", "p_liq": 0.01, "p_liq_stderr": 0.001,
        "expected_liquidation_penalty_usd": 2.5, "pooled_hf": 1.9, "netted_hf": 7.3,
        "fragmentation_cost_usd": 99094.0, "liquidation_ladder": [], "distance_to_liquidation": [],
        "hedge_breaks": [], "greeks": None, "scenarios": [], "warnings": [],
        "rebalancing": [{
            "source": f"wallet {WALLET} on devnet", "destination": f"morpho_blue:devnet/{WALLET}/{MARKET_B}",
            "token": "USDC", "amount": 8113.58179042, "usd": 8113.58179042, "action": "repay", "slow": False,
            "source_location": "devnet", "destination_location": "devnet", "delay_minutes": 0.0,
            "chf_before": 1.54, "chf_after": 1.6125, "stressed_chf_before": 1.2, "stressed_chf_after": 1.3,
            "text": "move 8,113.58 USDC ... (repay debt): CHF 1.54 -> 1.613, stressed CHF 1.2 -> 1.3",
        }],
    }
    doc = {
        "generated_at": NOW, "wallets": [WALLET], "portfolio": "fund", "critical_chf": 1.0,
        "snapshot_id": None,
        "accounts": [
            _account("morpho_blue:devnet", f"{WALLET}/{MARKET_A}", 1.6125),
            _account("morpho_blue:devnet", f"{WALLET}/{MARKET_B}", 1.54),
            _account("gmx_v2:devnet", f"{WALLET}/{GMX_KEY}", 9.93),
            _account("compound_v3:devnet_usdc", WALLET, 2.025),
            _account("dydx_v4:main", f"{DYDX}/0", 22.2, block=None),
            _account("hyperliquid:main", f"{WALLET}/cross", None, block=None, status="unavailable",
                     reason=reason),
        ],
        "reads": [], "composite": composite,
        "market": {"prices": {"ETH": 3000.0, "USDC/USD": 1.0}, "price_sources": {}, "vols": {},
                   "vol_sources": {}, "history_days": {}},
        "alerts": [{"rule": "acct", "portfolio": "fund", "account": f"morpho_blue:devnet/{WALLET}/{MARKET_A}",
                    "kind": "fire", "tier": "warning", "value": 1.6125,
                    "title": f"WARNING · Account health 1.613 · fund / morpho_blue:devnet/{WALLET}/{MARKET_A}"}],
    }
    return ScanReport.model_validate(doc)


def _render(report: ScanReport, width: int = 120) -> str:
    buffer = io.StringIO()
    render_scan(report, Console(file=buffer, width=width, color_system=None, soft_wrap=True))
    return buffer.getvalue()


def test_short_key_keeps_keys_distinct_and_readable() -> None:
    a = short_key(f"morpho_blue:devnet/{WALLET}/{MARKET_A}")
    b = short_key(f"morpho_blue:devnet/{WALLET}/{MARKET_B}")
    assert a == "morpho_blue:devnet/0x90F79b…b906/0x00351e…8d86"
    assert b == "morpho_blue:devnet/0x90F79b…b906/0xf907ad…740b"
    assert short_key(f"dydx_v4:main/{DYDX}/0") == "dydx_v4:main/dydx1jrm…6ckq/0"
    # short ids, names and plain text are left alone
    assert short_key("deribit:main/3/ETH") == "deribit:main/3/ETH"
    assert short_key("(portfolio)") == "(portfolio)"


def test_fmt_figure_and_fmt_move() -> None:
    assert fmt_figure(1.23456789) == "1.235"
    assert fmt_figure(1234.5, ",.2f") == "1,234.50"
    assert fmt_figure(float("inf")) == "∞"
    assert fmt_figure(None) == "∞ / n.a."
    assert fmt_move(-0.0525) == "-5.25%"
    assert fmt_move(0.1) == "+10.00%"
    assert fmt_move(None) == "—"
    assert fmt_move(float("nan")) == "—"


def test_fmt_quantity() -> None:
    assert fmt_quantity(-60000) == "-60,000.00"
    assert fmt_quantity(2.5) == "2.5000"
    assert fmt_quantity(0.135304093) == "0.135304"


def test_accounts_table_at_120_columns_keeps_every_key_whole() -> None:
    out = _render(_report())
    assert max(len(line) for line in out.splitlines()) <= 120
    rows = "\n".join(out.splitlines())
    # each account's deployment, wallet and sub-account are printed unbroken, one per line
    for text in ("morpho_blue:devnet", "compound_v3:devnet_usdc", "0x90F79b…b906", "0x00351e…8d86",
                 "0xf907ad…740b", "0x61023a…48aa", "dydx1jrm…6ckq/0"):
        assert text in rows, text
    # the two Morpho markets of one wallet are told apart in the CHF panel and the alerts table
    assert "set by morpho_blue:devnet/0x90F79b…b906/0xf907ad…740b" in rows
    assert "morpho_blue:devnet/0x90F79b…b906/0x00351e…8d86" in rows
    # the liquidation price carries its distance on the same line
    assert re.search(r"ETH 1,860\.47 \(-37\.98%\)", rows)
    # positions read as one line each: "debt -8,000.00 USDC"
    assert "debt -8,000.00 USDC" in rows
    # an on-chain account names its chain and block, an HTTP venue its read time
    assert "#154" in rows and "21:24:49" in rows


def test_unavailable_account_shows_its_whole_reason() -> None:
    out = _render(_report())
    assert "unavailable" in out
    # the text of the positions column (6th cell of each table line), spaces dropped: nothing cut off
    cells = [line.split("│")[6] for line in out.splitlines() if line.count("│") == 8]
    column = "".join(cells).replace(" ", "")
    reason = "HTTP 503 from the info endpoint after 3 attempts (https://api.hyperliquid.xyz/info)"
    assert reason.replace(" ", "") in column


def test_rebalancing_move_is_not_repeated_in_its_text() -> None:
    out = _render(_report())
    assert "repay 8,113.58 USDC ($8,114)" in out
    assert "-> 1.613" not in out  # the CHF before/after are in their own columns
    assert "1.5400 → 1.6125" in out


def test_alerts_of_an_unstored_scan_say_nothing_was_sent() -> None:
    out = _render(_report())
    assert "alerts decided this cycle (not stored: nothing is sent)" in out
    stored = _report().model_copy(update={"snapshot_id": 7})
    out = _render(stored)
    assert "alerts decided this cycle" in out and "not stored" not in out.split("alerts decided")[1]
