"""The demo book across parts: venue accounts seeded, Morpho / Comet positions seeded, and one
`set_price` moving every oracle at once (checked on each contract and over the venue server's HTTP)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from aggregator.devnet.network import Devnet
from aggregator.devnet.venue_client import bech32_address

pytestmark = pytest.mark.devnet


def test_bech32_matches_the_bip173_vector() -> None:
    assert bech32_address("a", b"") == "a12uel5l"
    assert bech32_address("dydx", bytes(20)).startswith("dydx1qqqq")


def _hl_state(api_url: str, user: str) -> dict[str, object]:
    response = httpx.post(f"{api_url}/info", json={"type": "clearinghouseState", "user": user}, timeout=5)
    response.raise_for_status()
    data: dict[str, object] = response.json()
    return data


def test_hedged_wallet_short_on_hyperliquid(devnet: Devnet) -> None:
    if devnet.api_url is None:
        pytest.skip("venue server not part of this devnet: " + "; ".join(devnet.state.notes))
    state = _hl_state(devnet.api_url, devnet.wallets["hedged"])
    position = state["assetPositions"][0]["position"]  # type: ignore[index]
    assert (position["coin"], Decimal(position["szi"])) == ("ETH", Decimal(-10))
    # account value 6,000 + 10*(3000 - P) = 2 % of 10*P  ->  P = 36,000 / 10.2
    assert abs(Decimal(position["liquidationPx"]) - Decimal(36_000) / Decimal("10.2")) < Decimal("0.0001")
    empty = _hl_state(devnet.api_url, devnet.wallets["empty"])
    assert empty["assetPositions"] == []


def test_fund_wallet_on_dydx_and_derive(devnet: Devnet) -> None:
    if devnet.api_url is None or devnet.state.venues is None:
        pytest.skip("venue server not part of this devnet")
    dydx = devnet.state.venues["dydx_v4"]["fund"]
    assert dydx == bech32_address("dydx", bytes.fromhex(devnet.wallets["fund"][2:]))
    subaccounts = httpx.get(f"{devnet.api_url}/v4/addresses/{dydx}", timeout=5).json()["subaccounts"]
    assert subaccounts[0]["openPerpetualPositions"]["ETH-USD"]["size"] in ("-3", "-3.0")
    response = httpx.post(
        f"{devnet.api_url}/public/get_subaccounts", json={"wallet": devnet.wallets["fund"]}, timeout=5
    )
    assert 1001 in response.json()["result"]["subaccount_ids"]


def test_one_price_move_reaches_every_oracle(fresh_devnet: Devnet) -> None:
    net = fresh_devnet
    if net.state.morpho is None or net.state.comet is None:
        pytest.skip("; ".join(net.state.notes))
    from aggregator.devnet import comet, morpho

    moved = net.set_price("ETH", Decimal(2000))
    assert any(m.startswith("morpho") for m in moved) and any(m.startswith("comet") for m in moved)
    m = morpho.MorphoDeployment.from_dict(net.state.morpho)
    oracle = net.txs.contract(morpho.compile_morpho().get("OracleMock").deployable, m.markets["WETH/USDC"].oracle)
    # 1 WETH (18 dec) in USDC (6 dec) * 1e36  =  2000 * 10**(36 + 6 - 18)
    assert oracle.functions.price().call() == 2000 * 10**24
    c = comet.CometDeployment.from_dict(net.state.comet)
    assert comet.comet_contract(net.txs, c).functions.getPrice(c.price_feeds["WETH"]).call() == 2000 * 10**8
    if net.api_url:
        position = _hl_state(net.api_url, net.wallets["hedged"])["assetPositions"][0]["position"]  # type: ignore[index]
        assert Decimal(position["unrealizedPnl"]) == Decimal(10_000)  # short 10 ETH from 3000 to 2000


def test_fund_positions_on_morpho_and_comet(devnet: Devnet) -> None:
    if devnet.state.morpho is None or devnet.state.comet is None:
        pytest.skip("; ".join(devnet.state.notes))
    from aggregator.devnet import comet, morpho

    m = morpho.MorphoDeployment.from_dict(devnet.state.morpho)
    pos = morpho.position(devnet.txs, m, "WETH/USDC", devnet.wallets["fund"])
    assert pos.collateral == 5 * 10**18 and pos.borrow_shares > 0
    c = comet.CometDeployment.from_dict(devnet.state.comet)
    contract = comet.comet_contract(devnet.txs, c)
    fund = devnet.wallets["fund"]
    assert contract.functions.collateralBalanceOf(fund, devnet.tokens["WETH"]).call() == 3 * 10**18
    assert contract.functions.borrowBalanceOf(fund).call() >= 4_000 * 10**6
