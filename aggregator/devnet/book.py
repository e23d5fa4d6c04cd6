"""The demo book as data, and its Aave V3 seeding through real transactions.

Wallets are anvil's dev accounts from the default mnemonic (``test test ... junk``), by index:

=====================  =====  ===========================================================================
name                   index  intended book
=====================  =====  ===========================================================================
``deployer``           0      admin of every devnet contract
``lp``                 1      liquidity: supplies USDC, DAI, WETH, WBTC to Aave so others can borrow
``hedged``             2      (a) Aave: 10 WETH collateral, 15,000 USDC debt (HF 1.65); Hyperliquid:
                              ETH short (venue server); hedged as a whole, each leg liquidatable alone
``fund``               3      (b) Aave: 2 WBTC + 20 wstETH vs 60,000 DAI + 10 WETH; Morpho
                              (``MORPHO_BOOK``), the Comet stand-in (``COMET_BOOK``), dYdX and Derive
                              (venue server), Aevo (long 2 ETH-PERP) and Deribit (short 5 ETH calls)
                              (Aevo / Deribit server) where those parts are deployed
``near_liquidation``   4      (c) Aave: 5 WETH vs 11,785 USDC: HF = 15,000*0.825/11,785 = 1.0501
``emode``              5      Aave e-mode 1 (ETH correlated): 10 wstETH vs 9 WETH: HF 1.2193
``empty``              6      (d) nothing anywhere
``liquidator``         7      no position; used by tests and the demo to liquidate
``treasury``           9      Aave reserve treasury
=====================  =====  ===========================================================================

GMX v2 (with the venue server): ``fund`` is long 30,000 USD of ETH at 3,000 on 3,000 USDC
(``gmx.GMX_BOOK``: h 9.93, liquidated near ETH = 2,732). The venue accounts (Hyperliquid, dYdX,
Derive, Aevo, Deribit) are in ``venue_client``'s docstring; Aevo / Deribit are read with the devnet's
throwaway credentials (``state.credentials``, written to the devnet ``secrets.toml``).

Idle wallet balances (``IDLE_BOOK``, minted by ``seed_aave`` after the borrows and left in the wallet,
outside every account): ``hedged`` 2,500 USDC + 1.5 WETH, ``near_liquidation`` 1,000 USDC + 0.5 WETH.
A wallet's ERC-20 balance is its idle amount plus what it borrowed (borrowed tokens land in the
wallet): ``near_liquidation`` holds 12,785 USDC, ``hedged`` 17,500 USDC.

Amounts are whole-token Decimals; ``to_base_units`` converts with the token's decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from eth_typing import ChecksumAddress

from aggregator.devnet.aave import AaveDeployment, borrow, set_user_emode, supply
from aggregator.devnet.market import TOKENS
from aggregator.devnet.tokens import mint
from aggregator.devnet.txs import Txs

__all__ = [
    "AAVE_BOOK",
    "COMET_BOOK",
    "IDLE_BOOK",
    "MORPHO_BOOK",
    "WALLET_INDEX",
    "AaveIntent",
    "CometIntent",
    "seed_aave",
    "seed_idle",
    "to_base_units",
]

WALLET_INDEX: dict[str, int] = {
    "deployer": 0,
    "lp": 1,
    "hedged": 2,
    "fund": 3,
    "near_liquidation": 4,
    "emode": 5,
    "empty": 6,
    "liquidator": 7,
    "treasury": 9,
}


@dataclass(frozen=True)
class AaveIntent:
    """What one wallet should hold on Aave after seeding (whole tokens)."""

    supply: dict[str, Decimal] = field(default_factory=dict)
    borrow: dict[str, Decimal] = field(default_factory=dict)
    emode: int = 0


AAVE_BOOK: dict[str, AaveIntent] = {
    "lp": AaveIntent(
        supply={
            "USDC": Decimal(2_000_000),
            "DAI": Decimal(2_000_000),
            "WETH": Decimal(1_000),
            "WBTC": Decimal(50),
        }
    ),
    "hedged": AaveIntent(supply={"WETH": Decimal(10)}, borrow={"USDC": Decimal(15_000)}),
    "fund": AaveIntent(
        supply={"WBTC": Decimal(2), "wstETH": Decimal(20)},
        borrow={"DAI": Decimal(60_000), "WETH": Decimal(10)},
    ),
    "near_liquidation": AaveIntent(supply={"WETH": Decimal(5)}, borrow={"USDC": Decimal(11_785)}),
    "emode": AaveIntent(supply={"wstETH": Decimal(10)}, borrow={"WETH": Decimal(9)}, emode=1),
}

#: wallet -> (market "COLLATERAL/LOAN", collateral, borrowed) in whole tokens.
#: WETH/USDC (LLTV 86 %): 5 WETH vs 8,000 USDC; WBTC/USDC (LLTV 77 %): 0.5 WBTC vs 15,000 USDC.
MORPHO_BOOK: dict[str, tuple[tuple[str, Decimal, Decimal], ...]] = {
    "fund": (
        ("WETH/USDC", Decimal(5), Decimal(8_000)),
        ("WBTC/USDC", Decimal("0.5"), Decimal(15_000)),
    ),
}


@dataclass(frozen=True)
class CometIntent:
    """Collateral (whole tokens) and base borrowed on the Comet stand-in (USDC base)."""

    collateral: dict[str, Decimal] = field(default_factory=dict)
    borrow: Decimal = Decimal(0)


#: 3 WETH collateral vs 4,000 USDC (liquidate CF 0.90: liquidatable below ETH = 1,481.48).
COMET_BOOK: dict[str, CometIntent] = {
    "fund": CometIntent(collateral={"WETH": Decimal(3)}, borrow=Decimal(4_000)),
}

#: wallet -> token -> whole tokens minted to the wallet and left there (idle wallet balances).
IDLE_BOOK: dict[str, dict[str, Decimal]] = {
    "hedged": {"USDC": Decimal(2_500), "WETH": Decimal("1.5")},
    "near_liquidation": {"USDC": Decimal(1_000), "WETH": Decimal("0.5")},
}

_DECIMALS = {t.symbol: t.decimals for t in TOKENS}


def to_base_units(symbol: str, amount: Decimal) -> int:
    """Whole tokens -> integer base units (exact; more precision than the token has is an error)."""
    scaled = amount * (10 ** _DECIMALS[symbol])
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {symbol} has more than {_DECIMALS[symbol]} decimals")
    return int(scaled)


def seed_aave(
    txs: Txs,
    aave: AaveDeployment,
    tokens: dict[str, ChecksumAddress],
    wallets: dict[str, ChecksumAddress],
) -> None:
    """Seed ``AAVE_BOOK`` with real transactions: mint, approve, supply, then e-mode, then borrow.

    All supplies go first (the LP's liquidity must be there before anyone borrows); then
    ``IDLE_BOOK`` is minted (:func:`seed_idle`).
    """
    for name, intent in AAVE_BOOK.items():
        for symbol, amount in intent.supply.items():
            supply(txs, aave, wallets[name], tokens[symbol], to_base_units(symbol, amount))
    for name, intent in AAVE_BOOK.items():
        if intent.emode:
            set_user_emode(txs, aave, wallets[name], intent.emode)
        for symbol, amount in intent.borrow.items():
            borrow(txs, aave, wallets[name], tokens[symbol], to_base_units(symbol, amount))
    seed_idle(txs, tokens, wallets)


def seed_idle(txs: Txs, tokens: dict[str, ChecksumAddress], wallets: dict[str, ChecksumAddress]) -> None:
    """Mint ``IDLE_BOOK`` to the wallets (real ``mint`` transactions), left idle in the wallet."""
    for name, held in IDLE_BOOK.items():
        for symbol, amount in held.items():
            mint(txs, tokens[symbol], wallets[name], to_base_units(symbol, amount))
