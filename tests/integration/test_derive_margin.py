"""Derive over real HTTP: the engine's health at current prices (``risk.margin.evaluate`` on the
adapter's account) equals the venue-reported ``h = sv / (sv - maintenance_margin)`` within 1e-9
relative, for standard-margin ("SM") and portfolio-margin ("PM") subaccounts of the devnet server.

The server computes its figures per position in Decimal (``aggregator.devnet.venues.derive``); the
engine computes them vectorized in float64 from the parsed answer (``risk.margin.derive_standard`` /
``risk.margin.options_grid``): two implementations of the documented rule. A hand-computed SM figure
pins the rule itself (the 10 % call requirement, the 5 % perp requirement)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.addresses import ChecksumAddress
from adapters.base import AdapterContext
from adapters.derive import DeriveAdapter
from aggregator.devnet.venues import VenueServer
from risk.model import DeriveStandardModel, MarginAccount, OptionsScenarioModel
from tests.support.engine import engine_health as support_engine_health
from tests.support.venues import fast_adapter

WALLET = ChecksumAddress("0x3333333333333333333333333333333333333333")


def _expiry(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y%m%d")


@pytest.fixture(scope="module")
def server() -> Iterator[VenueServer]:
    with VenueServer() as s:
        yield s


@pytest.fixture
def adapter(server: VenueServer, context: AdapterContext) -> DeriveAdapter:
    return fast_adapter(DeriveAdapter, server.url, context, timeout_seconds=2)


def engine_health(account: MarginAccount) -> float:
    """``h`` by the engine at current prices, the market's clock at the venue's valuation time."""
    return support_engine_health(account, factor_price=3000.0)


async def _seed(
    admin: httpx.AsyncClient, margin_type: str, positions: list[dict[str, Any]], **coll: str
) -> None:
    body = {
        "wallet": WALLET,
        "subaccounts": [
            {
                "id": 77,
                "margin_type": margin_type,
                "collaterals": {"USDC": "20000", **coll},
                "positions": positions,
            }
        ],
    }
    (await admin.post("/_devnet/seed/derive", json=body)).raise_for_status()


async def _price(admin: httpx.AsyncClient, eth: str) -> None:
    (await admin.post("/_devnet/price", json={"factor": "ETH", "price": eth})).raise_for_status()


def _venue_h(account: MarginAccount) -> float:
    assert account.venue_health is not None
    return float(account.venue_health)


DEMO = [  # the devnet demo book's Derive subaccount: short 5 calls 3500, long 2 perps from 3000
    {"instrument": f"ETH-{_expiry(63)}-3500-C", "amount": "-5"},
    {"instrument": "ETH-PERP", "amount": "2", "avg_price": "3000"},
]
SPREADS = [  # a put spread and a call spread in one expiry, a naked put in another, base ETH collateral
    {"instrument": f"ETH-{_expiry(30)}-2800-P", "amount": "-4", "iv": "0.7"},
    {"instrument": f"ETH-{_expiry(30)}-2600-P", "amount": "4", "iv": "0.72"},
    {"instrument": f"ETH-{_expiry(30)}-3400-C", "amount": "-3", "iv": "0.6"},
    {"instrument": f"ETH-{_expiry(30)}-3600-C", "amount": "3", "iv": "0.62"},
    {"instrument": f"ETH-{_expiry(90)}-2500-P", "amount": "-2", "iv": "0.8"},
    {"instrument": "ETH-PERP", "amount": "-1", "avg_price": "3100"},
]


@pytest.mark.parametrize("eth", ["3000", "3400", "2200", "4100"])
@pytest.mark.parametrize("book", [DEMO, SPREADS], ids=["demo", "spreads"])
async def test_standard_margin_health_equals_the_venue(
    admin: httpx.AsyncClient, adapter: DeriveAdapter, book: list[dict[str, Any]], eth: str
) -> None:
    await _seed(admin, "SM", book, ETH="1.5")
    await _price(admin, eth)
    (account,) = await adapter.read_accounts([WALLET])
    assert isinstance(account.margin_model, DeriveStandardModel)
    assert dict(account.margin_model.base_margin_factors) == {"ETH": Decimal("0.75")}
    assert engine_health(account) == pytest.approx(_venue_h(account), rel=1e-9)


async def test_standard_margin_by_hand(admin: httpx.AsyncClient, adapter: DeriveAdapter) -> None:
    """Short 5 calls and long 2 perps at ETH 3000, no base collateral: requirement = 10 % x 3000 x 5
    + 5 % x 3000 x 2 = 1,800; subaccount value = 20,000 - 5 x mark."""
    await _seed(admin, "SM", DEMO)
    await _price(admin, "3000")
    (account,) = await adapter.read_accounts([WALLET])
    sv = Decimal(str(account.raw["subaccount_value"]))
    assert Decimal(str(account.raw["maintenance_margin"])) == sv - Decimal(1800)
    assert engine_health(account) == pytest.approx(float(sv / Decimal(1800)), rel=1e-9)


async def test_spread_is_offset_by_its_max_loss(admin: httpx.AsyncClient, adapter: DeriveAdapter) -> None:
    """A short 2800 / long 2600 put spread of 4: the isolated figure (10 % x spot x 4 = 1,200 at
    3000) exceeds what the spread can lose (4 x 200 = 800, less its value), so the venue and the
    engine both charge ``mtm + 800``."""
    spread = SPREADS[:2]
    await _seed(admin, "SM", spread)
    await _price(admin, "3000")
    (account,) = await adapter.read_accounts([WALLET])
    sv = Decimal(str(account.raw["subaccount_value"]))
    mtm = sv - Decimal(20000)
    requirement = sv - Decimal(str(account.raw["maintenance_margin"]))
    assert abs(requirement - (mtm + Decimal(800))) < Decimal("1e-6")
    assert engine_health(account) == pytest.approx(_venue_h(account), rel=1e-9)


@pytest.mark.parametrize("eth", ["3000", "3400"])
async def test_portfolio_margin_health_equals_the_venue(
    admin: httpx.AsyncClient, adapter: DeriveAdapter, eth: str
) -> None:
    await _seed(admin, "PM", SPREADS, ETH="1.5")
    await _price(admin, eth)
    (account,) = await adapter.read_accounts([WALLET])
    assert isinstance(account.margin_model, OptionsScenarioModel)
    assert engine_health(account) == pytest.approx(_venue_h(account), rel=1e-9)
