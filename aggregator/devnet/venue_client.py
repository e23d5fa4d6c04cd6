"""Client for the venue API server's admin endpoints (``/_devnet/...``, documented in
``aggregator.devnet.venues``): seed the demo book's perp / option accounts and move a factor's
mark / oracle / index price on every simulated venue.

Demo book on the venues (``VENUE_BOOK``):

- ``hedged`` on Hyperliquid: 6,000 USDC cross margin, short 10 ETH at 3,000 (10x): with the Aave leg
  (10 WETH long) the ETH delta nets to zero. The short is liquidated near ETH = 3,529 (maintenance
  2 % = 1 / (2 x 25x)), the Aave leg near ETH = 1,818: each leg liquidatable on its own side.
- ``fund`` on dYdX v4 (its own bech32 ``dydx1...`` address, derived here from the wallet's 20 bytes so
  it is deterministic): subaccount 0 with 15,000 USDC, short 3 ETH-USD at 3,000.
- ``fund`` on Derive: subaccount 1001 (standard margin) with 20,000 USDC, short 5 ETH calls
  (strike 3,500, the first Friday at least 60 days out) and long 2 ETH-PERP at 3,000.

On the Aevo / Deribit server (``seed_credentialed``; read with API credentials, which the devnet makes up:
``new_credentials``, random per devnet):

- ``fund`` on Aevo (its account address is the wallet): 2,000 USDC, long 2 ETH-PERP at 3,000; server
  rule MM = 3 % of notional, so h = 2,000 / 180 = 11.1 at 3,000 and the account is liquidated near
  ETH = 4,000 / 1.94 = 2,061.86.
- ``fund`` on Deribit (username ``devnet-fund``): 2 ETH, short 5 ETH calls (strike 3,500, the first
  Friday at least 60 days out, IV 60 %); MM = (0.075 + mark) x 5 ETH, h = 2 / MM (about 3 at 3,000).
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

import httpx

from aggregator.devnet.state import DevnetState
from aggregator.errors import CrossmarginError

__all__ = [
    "CRED_VENUE_NAMES",
    "VENUE_NAMES",
    "VenueAdminError",
    "bech32_address",
    "new_credentials",
    "seed",
    "seed_credentialed",
    "set_price",
]

#: venues served by the devnet server, keyed as in ``[venues.<name>]``; all at the server's root
VENUE_NAMES = ("hyperliquid", "dydx_v4", "derive")
#: venues of the Aevo / Deribit server -> their API path under its base URL
CRED_VENUE_NAMES = {"aevo": "", "deribit": "/api/v2"}
DERIVE_SUBACCOUNT = 1001
DERIBIT_USERNAME = "devnet-fund"
DERIBIT_USER_ID = 3
_TIMEOUT = 10.0


class VenueAdminError(CrossmarginError):
    """The venue server refused an admin request."""


def _post(api_url: str, path: str, body: dict[str, Any]) -> Any:
    try:
        response = httpx.post(f"{api_url}/_devnet/{path}", json=body, timeout=_TIMEOUT)
    except httpx.HTTPError as exc:
        raise VenueAdminError(f"venue server {api_url} did not answer /_devnet/{path}: {exc}") from exc
    if response.status_code != 200:
        raise VenueAdminError(
            f"venue server /_devnet/{path}: HTTP {response.status_code}: {response.text[:300]}"
        )
    return response.json()


def set_price(api_url: str, factor: str, price: Decimal) -> None:
    """Set ``factor``'s mark/oracle/index price on every venue the server simulates."""
    _post(api_url, "price", {"factor": factor, "price": str(price)})


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def bech32_address(hrp: str, payload: bytes) -> str:
    """BIP-173 bech32 encoding of ``payload`` (8-bit groups regrouped into 5-bit words)."""
    acc = bits = 0
    words: list[int] = []
    for byte in payload:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            words.append((acc >> bits) & 31)
    if bits:
        words.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _polymod([*expanded, *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def _derive_expiry(today: dt.date) -> str:
    day = today + dt.timedelta(days=60)
    day += dt.timedelta(days=(4 - day.weekday()) % 7)  # the next Friday
    return day.strftime("%Y%m%d")


def _deribit_expiry(today: dt.date) -> str:
    """Deribit's ``DMMMYY`` (no leading zero) for the first Friday at least 60 days out."""
    day = dt.datetime.strptime(_derive_expiry(today), "%Y%m%d").date()
    month = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC"[3 * (day.month - 1) : 3 * day.month]
    return f"{day.day}{month}{day.year % 100:02d}"


def new_credentials() -> dict[str, dict[str, str]]:
    """Fresh throwaway credentials for the devnet's Aevo / Deribit server (``[venues.<v>]`` keys)."""
    return {
        "aevo": {"api_key": "devnet-" + secrets.token_hex(8), "api_secret": secrets.token_hex(24)},
        "deribit": {"client_id": "devnet-" + secrets.token_hex(8), "client_secret": secrets.token_hex(24)},
    }


def seed_credentialed(
    api_url: str, state: DevnetState, credentials: dict[str, dict[str, str]], *, today: dt.date | None = None
) -> dict[str, Any]:
    """Seed the fund's Aevo and Deribit accounts (module docstring) under ``credentials`` and align the
    server's prices with the chain's. Returns what ``state.venues`` adds: ``api_urls`` for ``aevo`` /
    ``deribit``, the instruments, and the Deribit account mapping (fund -> username) for the config."""
    for factor, price in state.factor_prices.items():
        set_price(api_url, factor, Decimal(price))
    fund = state.wallets["fund"]
    aevo, deribit = credentials["aevo"], credentials["deribit"]
    _post(
        api_url,
        "seed/aevo",
        {**aevo, "account": fund, "usdc": "2000", "positions": [
            {"instrument": "ETH-PERP", "amount": "2", "avg_entry_price": "3000"}
        ]},
    )
    option = f"ETH-{_deribit_expiry(today or dt.datetime.now(dt.UTC).date())}-3500-C"
    _post(
        api_url,
        "seed/deribit",
        {**deribit, "user_id": DERIBIT_USER_ID, "username": DERIBIT_USERNAME, "balances": {"ETH": "2"},
         "positions": [{"instrument": option, "size": "-5", "iv": "0.6"}]},
    )  # fmt: skip
    return {
        "api_urls": {name: api_url + path for name, path in CRED_VENUE_NAMES.items()},
        "aevo": {"fund": {"account": fund, "perp": "ETH-PERP"}},
        "deribit": {"fund": {"username": DERIBIT_USERNAME, "option": option}},
        "accounts": {"deribit": {fund: [DERIBIT_USERNAME]}},
    }


def seed(api_url: str, state: DevnetState, *, today: dt.date | None = None) -> dict[str, Any]:
    """Seed the venue accounts of the demo book and align the server's prices with the chain's.

    Returns what the state records under ``venues``: the API URL of each venue, the fund's dYdX
    address, the Derive subaccount and instrument, and the account mapping for the user config.
    """
    for factor, price in state.factor_prices.items():
        set_price(api_url, factor, Decimal(price))
    hedged, fund = state.wallets["hedged"], state.wallets["fund"]
    _post(
        api_url,
        "seed/hyperliquid",
        {"wallet": hedged, "usdc": "6000", "positions": [
            {"coin": "ETH", "szi": "-10", "entryPx": "3000", "leverage": 10}
        ]},
    )
    dydx_address = bech32_address("dydx", bytes.fromhex(fund.removeprefix("0x")))
    _post(
        api_url,
        "seed/dydx_v4",
        {"address": dydx_address, "subaccounts": [
            {"number": 0, "usdc": "15000", "positions": [
                {"ticker": "ETH-USD", "size": "-3", "entryPrice": "3000"}
            ]}
        ]},
    )
    instrument = f"ETH-{_derive_expiry(today or dt.datetime.now(dt.UTC).date())}-3500-C"
    _post(
        api_url,
        "seed/derive",
        {"wallet": fund, "subaccounts": [
            {"id": DERIVE_SUBACCOUNT, "margin_type": "SM", "collaterals": {"USDC": "20000"}, "positions": [
                {"instrument": instrument, "amount": "-5"},
                {"instrument": "ETH-PERP", "amount": "2", "avg_price": "3000"},
            ]}
        ]},
    )
    return {
        "api_urls": dict.fromkeys(VENUE_NAMES, api_url),
        "hyperliquid": {"hedged": hedged},
        "dydx_v4": {"fund": dydx_address},
        "derive": {"fund": {"subaccount": DERIVE_SUBACCOUNT, "option": instrument}},
        "accounts": {"dydx_v4": {fund: [dydx_address]}},
    }
