"""The local venue servers answer the documented shapes, compute figures by the venues' rules, and
obey each fault switch (no anvil needed: the app runs in-process on a free port)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from aggregator.devnet.venues import VenueServer
from aggregator.devnet.venues.common import fmt

WALLET = "0x3333333333333333333333333333333333333333"


@pytest.fixture(scope="module")
def server() -> Iterator[VenueServer]:
    with VenueServer() as s:
        yield s


@pytest.fixture
def client(server: VenueServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as c:
        c.post("/_devnet/reset").raise_for_status()
        yield c


def info(client: httpx.Client, **body: str) -> httpx.Response:
    return client.post("/info", json=body)


def test_hyperliquid_clearinghouse_state_shape_and_identities(client: httpx.Client) -> None:
    client.post(
        "/_devnet/seed/hyperliquid",
        json={
            "wallet": WALLET,
            "usdc": 1000,
            "positions": [
                {"coin": "ETH", "szi": "0.5", "entryPx": "2900", "leverage": 5},
                {
                    "coin": "BTC",
                    "szi": "-0.01",
                    "entryPx": "61000",
                    "leverage": 20,
                    "isolated": True,
                    "margin": 100,
                },
            ],
        },
    ).raise_for_status()
    body = info(client, type="clearinghouseState", user=WALLET).json()
    assert set(body) == {
        "assetPositions",
        "crossMaintenanceMarginUsed",
        "crossMarginSummary",
        "marginSummary",
        "time",
        "withdrawable",
    }
    eth, btc = (ap["position"] for ap in body["assetPositions"])
    assert set(eth) == {
        "coin",
        "szi",
        "entryPx",
        "positionValue",
        "unrealizedPnl",
        "returnOnEquity",
        "liquidationPx",
        "leverage",
        "marginUsed",
        "maxLeverage",
        "cumFunding",
    }
    assert all(
        isinstance(v, str) for k, v in eth.items() if k not in ("leverage", "maxLeverage", "cumFunding")
    )
    assert eth["leverage"] == {"type": "cross", "value": 5} and btc["leverage"]["type"] == "isolated"
    cross = body["crossMarginSummary"]
    # identities of perps_options.md §1.2
    assert Decimal(cross["accountValue"]) == Decimal(cross["totalRawUsd"]) + Decimal("0.5") * 3000
    assert Decimal(btc["marginUsed"]) == Decimal(btc["leverage"]["rawUsd"]) + Decimal("-0.01") * 60000
    assert Decimal(body["marginSummary"]["accountValue"]) == Decimal(cross["accountValue"]) + Decimal(
        btc["marginUsed"]
    )
    assert Decimal(body["crossMaintenanceMarginUsed"]) == Decimal(1500) / 50  # ETH 25x -> 2%
    # liquidation price by the docs formula (short: price rises)
    mm = Decimal(600) * Decimal("0.0125")  # BTC 40x
    available = Decimal(btc["marginUsed"]) - mm
    expected = Decimal(60000) + available / Decimal("0.01") / (1 + Decimal("0.0125"))
    assert Decimal(btc["liquidationPx"]) == Decimal(fmt(expected, 8))
    assert info(client, type="userAbstraction", user=WALLET).json() == "default"


def test_hyperliquid_meta_and_unified_spot(client: httpx.Client) -> None:
    meta, ctxs = info(client, type="metaAndAssetCtxs").json()
    assert len(meta["universe"]) == len(ctxs)
    tables = dict((i, t) for i, t in meta["marginTables"])
    assert all(t >= 50 for t in tables)
    assert [a["name"] for a in meta["universe"]][:2] == ["BTC", "ETH"]
    client.post(
        "/_devnet/seed/hyperliquid",
        json={"wallet": WALLET, "usdc": 1000, "mode": "unifiedAccount", "positions": []},
    ).raise_for_status()
    spot = info(client, type="spotClearinghouseState", user=WALLET).json()
    assert spot["balances"][0]["coin"] == "USDC" and Decimal(spot["balances"][0]["total"]) == 1000


def test_dydx_shapes_wrappers_and_figures(client: httpx.Client) -> None:
    address = "dydx1abc"
    assert client.get(f"/v4/addresses/{address}").status_code == 404
    client.post(
        "/_devnet/seed/dydx_v4",
        json={
            "address": address,
            "subaccounts": [
                {
                    "number": 0,
                    "usdc": "-500",
                    "positions": [{"ticker": "BTC-USD", "size": "0.1", "entryPrice": "59000"}],
                },
                {"number": 128, "usdc": "200", "positions": []},
            ],
        },
    ).raise_for_status()
    sub = client.get(f"/v4/addresses/{address}/subaccountNumber/0").json()
    assert set(sub) == {"subaccount"}
    s = sub["subaccount"]
    assert s["assetPositions"]["USDC"] == {
        "symbol": "USDC",
        "side": "SHORT",
        "size": "500.0",
        "assetId": "0",
        "subaccountNumber": 0,
    }
    assert Decimal(s["equity"]) == -500 + 6000
    assert Decimal(s["freeCollateral"]) == 5500 - 6000 * Decimal("0.05")
    assert s["openPerpetualPositions"]["BTC-USD"]["unrealizedPnl"] == "100.0"
    parent = client.get(f"/v4/addresses/{address}/parentSubaccountNumber/0").json()["subaccount"]
    assert [c["subaccountNumber"] for c in parent["childSubaccounts"]] == [0, 128]
    assert Decimal(parent["equity"]) == 5500 + 200
    markets = client.get("/v4/perpetualMarkets", params={"ticker": "ETH-USD"}).json()["markets"]
    assert list(markets) == ["ETH-USD"] and markets["ETH-USD"]["oraclePrice"] == "3000.0"


def test_gmx_tickers_scaling(client: httpx.Client) -> None:
    client.post("/_devnet/price", json={"factor": "ETH", "price": "2376.2847"}).raise_for_status()
    tickers = {t["tokenSymbol"]: t for t in client.get("/prices/tickers").json()}
    assert tickers["ETH"]["minPrice"] == "2376284700000000"  # 2376.2847 x 1e12 (18 decimals)
    assert tickers["USDC"]["minPrice"] == str(10**24)  # 6 decimals
    assert tickers["BTC"]["maxPrice"] == str(60000 * 10**22)  # 8 decimals


def test_derive_margin_watch_shape(client: httpx.Client) -> None:
    client.post(
        "/_devnet/seed/derive",
        json={
            "wallet": WALLET,
            "subaccounts": [
                {
                    "id": 9,
                    "collaterals": {"USDC": 1000},
                    "positions": [{"instrument": "ETH-PERP", "amount": "-1", "avg_price": "3100"}],
                }
            ],
        },
    ).raise_for_status()
    ids = client.post("/public/get_subaccounts", json={"wallet": WALLET}).json()["result"]
    assert ids == {"wallet": WALLET, "subaccount_ids": [9]}
    result = client.post("/public/margin_watch", json={"subaccount_id": 9}).json()["result"]
    assert Decimal(result["subaccount_value"]) == 1000 + 100  # short from 3100, index 3000
    assert Decimal(result["maintenance_margin"]) == 1100 - 3000 * Decimal("0.05")
    missing = client.post("/public/margin_watch", json={"subaccount_id": 10}).json()
    assert "error" in missing


@pytest.mark.parametrize(("mode", "status"), [("429", 429), ("500", 500), ("403", 403)])
def test_fault_statuses(client: httpx.Client, mode: str, status: int) -> None:
    client.post(
        "/_devnet/fault", json={"venue": "gmx", "mode": mode, "times": 1, "retry_after": 3}
    ).raise_for_status()
    response = client.get("/prices/tickers")
    assert response.status_code == status
    if mode == "429":
        assert response.headers["retry-after"] == "3"
    assert client.get("/prices/tickers").status_code == 200  # times=1: consumed
    assert info(client, type="meta").status_code == 200  # other venues unaffected


def test_fault_garbage_timeout_and_missing_field(client: httpx.Client) -> None:
    client.post(
        "/_devnet/fault", json={"venue": "hyperliquid", "mode": "garbage", "times": 1}
    ).raise_for_status()
    with pytest.raises(json.JSONDecodeError):
        info(client, type="meta").json()
    client.post(
        "/_devnet/fault", json={"venue": "hyperliquid", "mode": "timeout", "times": 1, "hang_seconds": 1}
    ).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/info", json={"type": "meta"}, timeout=0.2)
    client.post(
        "/_devnet/fault",
        json={"venue": "hyperliquid", "mode": "missing_field", "times": 1, "field": "universe.0.name"},
    ).raise_for_status()
    assert "name" not in info(client, type="meta").json()["universe"][0]


def test_admin_rejects_bad_input(client: httpx.Client) -> None:
    assert client.post("/_devnet/price", json={"factor": "ETH", "price": "abc"}).status_code == 400
    assert client.post("/_devnet/price", json={"factor": "ETH", "price": -1}).status_code == 400
    assert client.post("/_devnet/fault", json={"venue": "nope", "mode": "500"}).status_code == 400
    assert (
        client.post(
            "/_devnet/seed/hyperliquid",
            json={"wallet": WALLET, "positions": [{"coin": "DOGE", "szi": 1, "entryPx": 1}]},
        ).status_code
        == 400
    )
    assert client.post("/_devnet/seed/nowhere", json={}).status_code == 404
    assert client.get("/_devnet/state").json()["prices"]["ETH"] == "3000.0"


def test_module_runner_serves_on_the_given_port() -> None:
    import subprocess
    import sys
    import time

    from aggregator.devnet.venues.server import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator.devnet.venues", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        assert "hyperliquid" in body["venues"]
    finally:
        process.terminate()
        process.wait(timeout=10)
