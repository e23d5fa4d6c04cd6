"""The venue servers' in-memory state: factor prices, each venue's accounts, and the fault switches.

Only inputs are stored (sizes, entry prices, collateral); every account figure a route returns is
computed from them at request time, so figures move with prices. One ``asyncio``-free lock guards
mutation: the app runs on one event loop, and the in-process helper's thread only talks HTTP.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

__all__ = [
    "DEFAULT_PRICES",
    "FAULT_MODES",
    "DeriveSubaccount",
    "DydxMarket",
    "DydxSubaccount",
    "Fault",
    "FaultMode",
    "GmxToken",
    "HlMarket",
    "HlPosition",
    "HlWallet",
    "VenueState",
]

FaultMode = Literal["none", "429", "500", "403", "timeout", "garbage", "missing_field"]
FAULT_MODES: Final = ("none", "429", "500", "403", "timeout", "garbage", "missing_field")
VENUES: Final = ("hyperliquid", "dydx_v4", "derive", "gmx")

DEFAULT_PRICES: Final = {
    "ETH": Decimal(3000),
    "BTC": Decimal(60000),
    "SOL": Decimal(150),
    "ARB": Decimal("0.8"),
    "HYPE": Decimal(30),
    "USD": Decimal(1),
}


@dataclass
class Fault:
    """``mode`` applies to the next ``times`` requests of the venue (None: until changed)."""

    mode: FaultMode = "none"
    retry_after: float = 1.0
    times: int | None = None
    hang_seconds: float = 30.0
    field: str | None = None  # missing_field: the dotted path to drop (default: the first top-level key)


@dataclass(frozen=True)
class HlMarket:
    """A Hyperliquid perp: ``tiers`` = ((lowerBound, maxLeverage), ...); ``table_id`` < 50 = one tier."""

    name: str
    factor: str
    sz_decimals: int
    table_id: int
    tiers: tuple[tuple[Decimal, int], ...]
    funding: Decimal = Decimal("0.0000125")


@dataclass
class HlPosition:
    coin: str
    szi: Decimal
    entry_px: Decimal
    leverage: int
    isolated: bool = False
    isolated_margin: Decimal = Decimal(0)  # USDC put into the isolated position when opened


@dataclass
class HlWallet:
    usdc: Decimal  # cross collateral deposited (excludes isolated margins)
    positions: list[HlPosition] = field(default_factory=list)
    mode: str = "default"
    spot: dict[str, Decimal] = field(default_factory=dict)  # spot balances besides the perp USDC


@dataclass(frozen=True)
class DydxMarket:
    ticker: str
    factor: str
    imf: Decimal
    mmf: Decimal
    clob_pair_id: int
    atomic_resolution: int
    market_type: Literal["CROSS", "ISOLATED"] = "CROSS"
    funding: Decimal = Decimal("0.00001")


@dataclass
class DydxPosition:
    ticker: str
    size: Decimal  # signed
    entry_price: Decimal
    net_funding: Decimal = Decimal(0)


@dataclass
class DydxSubaccount:
    number: int
    usdc: Decimal  # signed (negative = SHORT)
    positions: list[DydxPosition] = field(default_factory=list)


@dataclass
class DerivePosition:
    instrument: str  # ETH-PERP, ETH-20261225-3000-C
    amount: Decimal
    avg_price: Decimal = Decimal(0)  # perps: the price the unsettled PnL is measured from
    iv: Decimal = Decimal("0.6")  # options: the implied vol the mark is priced at


@dataclass
class DeriveSubaccount:
    id: int
    wallet: str
    margin_type: str = "SM"
    collaterals: dict[str, Decimal] = field(default_factory=dict)
    positions: list[DerivePosition] = field(default_factory=list)


@dataclass(frozen=True)
class GmxToken:
    address: str
    symbol: str
    decimals: int
    factor: str


HL_MARKETS: Final = (
    HlMarket("BTC", "BTC", 5, 56, ((Decimal(0), 40), (Decimal(150_000_000), 20))),
    HlMarket("ETH", "ETH", 4, 55, ((Decimal(0), 25), (Decimal(100_000_000), 15))),
    HlMarket("SOL", "SOL", 2, 20, ((Decimal(0), 20),)),
    HlMarket("ARB", "ARB", 1, 10, ((Decimal(0), 10),)),
    HlMarket("HYPE", "HYPE", 2, 10, ((Decimal(0), 10),)),
)

DYDX_MARKETS: Final = (
    DydxMarket("BTC-USD", "BTC", Decimal("0.05"), Decimal("0.03"), 0, -10),
    DydxMarket("ETH-USD", "ETH", Decimal("0.05"), Decimal("0.03"), 1, -9),
    DydxMarket("SOL-USD", "SOL", Decimal("0.1"), Decimal("0.05"), 5, -7),
    DydxMarket("ARB-USD", "ARB", Decimal("0.2"), Decimal("0.1"), 20, -6, "ISOLATED"),
)

GMX_TOKENS: Final = (
    GmxToken("0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", "ETH", 18, "ETH"),
    GmxToken("0x2f2a2543B76A4166549F7aaB2e75Bef0aefC5B0f", "BTC", 8, "BTC"),
    GmxToken("0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "USDC", 6, "USD"),
    GmxToken("0x912CE59144191C1204E64559FE8253a0e49E6548", "ARB", 18, "ARB"),
    GmxToken("0x2bcC6D6CdBbDC0a4071e48bb3B969b06B3330c07", "SOL", 9, "SOL"),
)


@dataclass
class VenueState:
    """Everything the venue servers serve. Mutate only under ``lock``."""

    prices: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    marks: dict[str, Decimal] = field(default_factory=dict)  # a mark apart from the oracle, per factor
    faults: dict[str, Fault] = field(default_factory=lambda: {v: Fault() for v in VENUES})
    hl_markets: tuple[HlMarket, ...] = HL_MARKETS
    hl_wallets: dict[str, HlWallet] = field(default_factory=dict)  # lower-case address
    dydx_markets: tuple[DydxMarket, ...] = DYDX_MARKETS
    dydx_addresses: dict[str, dict[int, DydxSubaccount]] = field(default_factory=dict)
    derive_subaccounts: dict[int, DeriveSubaccount] = field(default_factory=dict)
    gmx_tokens: tuple[GmxToken, ...] = GMX_TOKENS
    gmx_spread: Decimal = Decimal(0)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def price(self, factor: str) -> Decimal:
        """The factor's oracle / index price."""
        if factor not in self.prices:
            raise KeyError(f"no price for factor {factor}")
        return self.prices[factor]

    def mark(self, factor: str) -> Decimal:
        return self.marks.get(factor, self.price(factor))

    def set_price(self, factor: str, price: Decimal, mark: Decimal | None = None) -> None:
        with self.lock:
            self.prices[factor] = price
            if mark is None:
                self.marks.pop(factor, None)
            else:
                self.marks[factor] = mark

    def take_fault(self, venue: str) -> Fault:
        """The fault to apply to this request (consuming one of its ``times``)."""
        with self.lock:
            fault = self.faults[venue]
            if fault.mode == "none":
                return fault
            current = Fault(fault.mode, fault.retry_after, fault.times, fault.hang_seconds, fault.field)
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults[venue] = Fault()
            return current
