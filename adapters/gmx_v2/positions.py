"""GMX v2 decoding and normalization: DataStore keys (``Keys.sol``), the ``/prices/tickers`` answer,
the Reader's ``PositionInfo`` and ``isPositionLiquidatable`` answers, and one position as its own
margin account. The liquidation rule itself (integers, USD x 1e30) is :mod:`risk.exact.gmx`.

Tickers: ``[{tokenAddress, tokenSymbol, minPrice, maxPrice, updatedAt, oracleDecimals?}]``; prices are
integers, USD per smallest token unit x 1e30, so the USD price of one whole token is
``price / 10^(30 - decimals)``.

Health: ``h = remaining / requirement`` (``+inf`` without a requirement and remaining > 0; ``0`` when
remaining <= 0 without one), so ``h < 1`` iff liquidatable. ``raw`` keeps our exact integer figures
(``exact_remaining_usd``, ``exact_requirement_usd``, ``exact_health``, ``exact_is_liquidatable``) and
the venue's answer (``venue_is_liquidatable``, ``venue_reason``, ``venue_remaining_usd``,
``venue_min_collateral_usd``, ``venue_min_collateral_usd_for_leverage``, ``venue_requirement_usd``).
``venue_health`` is the venue's own ``remaining / max(minCollateralUsd, minCollateralUsdForLeverage)``
(when the venue returned early with "min collateral" or "< 0" it leaves minCollateralUsdForLeverage at 0: then
``sizeInUsd x MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION`` from the same block stands in), when it agrees
with the venue's boolean (``None`` otherwise, with ``raw["venue_inconsistent"]``);
``raw["liquidatable_mismatch"]`` says our rule and the venue's disagree.

Positions (IsolatedPerpModel, quote USD): the PERP (index token, ``+-sizeInTokens``, priced at the
side's PnL price: long ``index.min``, short ``index.max``; entry ``sizeInUsd / sizeInTokens`` so the
requirement is on ``sizeInUsd``, one tier at MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION, floor
MIN_COLLATERAL_USD; the mid price as ``oracle_price``); the collateral token net of pending fees
(SPOT, at ``collateral.min``); the USD cash leg (``-+sizeInUsd`` plus the capped impact and the
positive-PnL cap ``basePnlUsd - uncappedBasePnlUsd``). Their values sum to ``remaining``. Tokens map to
factors through ``config/assets.toml`` by ticker symbol; an unknown symbol is its own factor (warning
in ``raw["warnings"]``). A token without a ticker makes its wallet UNAVAILABLE (no price to read with).

Gaps: the impact and the PnL cap are held at their current USD values under scenario moves; the
position fee factor the Reader's PositionInfo uses (for positive impact when the close improves the
balance) can differ from the liquidation check's; UI fee receiver is ``address(0)``; one page of
``MAX_POSITIONS`` positions per wallet (a warning when full).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Final

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from pydantic import BaseModel, BeforeValidator

from adapters.addresses import ChecksumAddress, parse_address
from adapters.assets import AssetMap
from adapters.errors import VenueDataError
from adapters.http import JsonModel, parse_model
from adapters.lending_common import units
from adapters.venue_common import Warnings, resolve_symbol
from risk.exact import gmx
from risk.exact.gmx import LiquidationFigures, exact_health
from risk.model import (
    USD,
    AsOf,
    IsolatedPerpModel,
    MarginAccount,
    MarginTier,
    PerpParams,
    Position,
    PositionKind,
    PriceSource,
)

__all__ = [
    "ISOLATED",
    "MARKET_FACTORS",
    "MIN_COLLATERAL_USD_KEY",
    "VENUE",
    "MarketParams",
    "MarketTokens",
    "PositionData",
    "Ticker",
    "TokenView",
    "VenueCheck",
    "data_store_key",
    "decode_position_info",
    "decoded_address",
    "liquidation_figures",
    "market_key",
    "parse_position_account",
    "parse_tickers",
    "position_key",
    "usd_price",
]

VENUE: Final = "gmx_v2"
FLOAT_PRECISION_DIGITS: Final = 30
ISOLATED: Final = IsolatedPerpModel()
LEVERAGE_REASON: Final = "min collateral for leverage"  # the venue's reason once every check ran


# --- DataStore keys (Keys.sol) ---------------------------------------------------------------------


def data_store_key(name: str) -> bytes:
    """``keccak256(abi.encode(NAME))``: ``abi.encode`` of a string is its dynamic encoding."""
    return bytes(keccak(abi_encode(["string"], [name])))


def market_key(name: str, market: str) -> bytes:
    """``keccak256(abi.encode(keccak256(abi.encode(NAME)), market))``."""
    return bytes(keccak(abi_encode(["bytes32", "address"], [data_store_key(name), market])))


def position_key(account: str, market: str, collateral_token: str, is_long: bool) -> bytes:
    """``keccak256(abi.encode(account, market, collateralToken, isLong))`` (PositionUtils.getPositionKey)."""
    return bytes(
        keccak(
            abi_encode(
                ["address", "address", "address", "bool"], [account, market, collateral_token, is_long]
            )
        )
    )


MIN_COLLATERAL_USD_KEY: Final = data_store_key("MIN_COLLATERAL_USD")
MARKET_FACTORS: Final = (
    "MIN_COLLATERAL_FACTOR",
    "MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION",
    "MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS",
)


# --- tickers ----------------------------------------------------------------------------------------


def _int_string(value: object) -> int:
    """GMX prices are integer strings (a JSON number would already have lost digits)."""
    if not isinstance(value, str) or not value.isdigit():
        raise ValueError(f"expected an integer string, got {str(value)[:40]!r}")
    return int(value)


IntString = Annotated[int, BeforeValidator(_int_string)]


class Ticker(JsonModel):
    tokenAddress: str  # noqa: N815 (the API's field names)
    tokenSymbol: str  # noqa: N815
    minPrice: IntString  # noqa: N815
    maxPrice: IntString  # noqa: N815
    updatedAt: int | None = None  # noqa: N815
    oracleDecimals: int | None = None  # noqa: N815


class _Tickers(BaseModel):
    tickers: list[Ticker]


def parse_tickers(raw: object) -> dict[ChecksumAddress, Ticker]:
    """``/prices/tickers`` -> token address -> ticker; a bad shape or price is a ``VenueDataError``."""
    parsed = parse_model(_Tickers, {"tickers": raw}, venue=VENUE, what="tickers").tickers
    out: dict[ChecksumAddress, Ticker] = {}
    for i, t in enumerate(parsed):
        try:
            address = parse_address(t.tokenAddress)
        except ValueError as exc:
            raise VenueDataError(
                f"unexpected tickers shape: tickers.{i}.tokenAddress: {exc}", venue=VENUE
            ) from None
        if not 0 < t.minPrice <= t.maxPrice:
            raise VenueDataError(
                f"tickers.{i} ({t.tokenSymbol}): need 0 < minPrice <= maxPrice,"
                f" got {t.minPrice} / {t.maxPrice}",
                venue=VENUE,
            )
        out.setdefault(address, t)
    return out


# --- decoded Reader answers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketTokens:
    market_token: ChecksumAddress
    index_token: ChecksumAddress
    long_token: ChecksumAddress
    short_token: ChecksumAddress

    @property
    def price_tokens(self) -> tuple[ChecksumAddress, ChecksumAddress, ChecksumAddress]:
        """The tokens of ``MarketPrices``, in its order: index, long, short."""
        return (self.index_token, self.long_token, self.short_token)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """DataStore factors of one market (x 1e30) and the global MIN_COLLATERAL_USD (USD x 1e30)."""

    min_collateral_factor: int
    min_collateral_factor_for_liquidation: int
    max_position_impact_factor_for_liquidations: int
    min_collateral_usd: int


@dataclass(frozen=True, slots=True)
class PositionData:
    """The parts of ``ReaderPositionUtils.PositionInfo`` the rule uses (raw integers)."""

    key: bytes
    account: ChecksumAddress
    market: ChecksumAddress
    collateral_token: ChecksumAddress
    is_long: bool
    size_in_usd: int
    size_in_tokens: int
    collateral_amount: int
    pending_impact_amount: int
    total_cost_amount: int  # collateral token units: position + borrowing + funding (+ UI) - discounts
    price_impact_usd: int
    total_impact_usd: int
    base_pnl_usd: int
    uncapped_base_pnl_usd: int


@dataclass(frozen=True, slots=True)
class VenueCheck:
    """``Reader.isPositionLiquidatable(..., true, true)``: (bool, reason, info)."""

    liquidatable: bool
    reason: str
    remaining_collateral_usd: int
    min_collateral_usd: int
    min_collateral_usd_for_leverage: int


def decoded_address(value: object) -> ChecksumAddress:
    return parse_address(str(value))


def decode_position_info(info: Sequence[Any]) -> PositionData:
    """One decoded ``PositionInfo`` tuple (``positionKey, position, fees, executionPriceResult,
    basePnlUsd, uncappedBasePnlUsd, pnlAfterPriceImpactUsd``)."""
    key, position, fees, execution, base_pnl, uncapped_pnl, _ = info
    addresses, numbers, flags = position
    return PositionData(
        key=bytes(key),
        account=decoded_address(addresses[0]),
        market=decoded_address(addresses[1]),
        collateral_token=decoded_address(addresses[2]),
        is_long=bool(flags[0]),
        size_in_usd=int(numbers[0]),
        size_in_tokens=int(numbers[1]),
        collateral_amount=int(numbers[2]),
        pending_impact_amount=int(numbers[3]),
        total_cost_amount=int(fees[15]),
        price_impact_usd=int(execution[0]),
        total_impact_usd=int(execution[4]),
        base_pnl_usd=int(base_pnl),
        uncapped_base_pnl_usd=int(uncapped_pnl),
    )


# --- normalization -------------------------------------------------------------------------------------


def liquidation_figures(pos: PositionData, collateral_min: int, params: MarketParams) -> LiquidationFigures:
    """:func:`risk.exact.gmx.liquidation_figures` from the Reader's PositionInfo and the DataStore
    factors."""
    return gmx.liquidation_figures(
        size_in_usd=pos.size_in_usd,
        collateral_amount=pos.collateral_amount,
        total_cost_amount=pos.total_cost_amount,
        total_impact_usd=pos.total_impact_usd,
        base_pnl_usd=pos.base_pnl_usd,
        uncapped_base_pnl_usd=pos.uncapped_base_pnl_usd,
        collateral_min=collateral_min,
        min_collateral_usd=params.min_collateral_usd,
        min_collateral_factor_for_liquidation=params.min_collateral_factor_for_liquidation,
        max_position_impact_factor_for_liquidations=params.max_position_impact_factor_for_liquidations,
    )


def usd_price(raw: int, decimals: int) -> Decimal:
    """USD per whole token from a GMX price (USD per smallest unit x 1e30)."""
    return units(raw, FLOAT_PRECISION_DIGITS - decimals)


@dataclass(frozen=True, slots=True)
class TokenView:
    """One token as the adapter prices it: symbol (ticker), decimals, GMX price range."""

    symbol: str
    decimals: int
    min: int
    max: int


def _usd(value: int) -> Decimal:
    return units(value, FLOAT_PRECISION_DIGITS)


def parse_position_account(
    *,
    wallet: str,
    deployment: str,
    pos: PositionData,
    index: TokenView,
    collateral: TokenView,
    params: MarketParams,
    venue: VenueCheck,
    assets: AssetMap,
    as_of: AsOf,
) -> MarginAccount:
    """One GMX position as its own margin account (see the module docstring)."""
    warnings: Warnings = []
    figures = liquidation_figures(pos, collateral.min, params)
    index_info = resolve_symbol(assets, index.symbol, VENUE, warnings)
    coll_info = resolve_symbol(assets, collateral.symbol, VENUE, warnings)
    side = 1 if pos.is_long else -1
    pnl_price = index.min if pos.is_long else index.max
    mark = usd_price(pnl_price, index.decimals)
    size_tokens = units(pos.size_in_tokens, index.decimals)
    entry = _usd(pos.size_in_usd) / size_tokens if pos.size_in_tokens > 0 else mark
    perp = Position(
        token=index.symbol,
        factor=index_info.factor,
        basis_factor=index_info.basis,
        kind=PositionKind.PERP,
        quantity=side * size_tokens,
        price=mark,
        price_source=PriceSource.TICKER,
        perp=PerpParams(
            entry_price=entry,
            margin_tiers=(MarginTier(Decimal(0), _usd(params.min_collateral_factor_for_liquidation)),),
            requirement_basis="entry_notional",
            min_requirement=_usd(params.min_collateral_usd),
            oracle_price=usd_price(index.min + index.max, index.decimals) / 2,
        ),
    )
    collateral_leg = Position(
        token=collateral.symbol,
        factor=coll_info.factor,
        basis_factor=coll_info.basis,
        kind=PositionKind.SPOT,
        quantity=units(figures.net_collateral_amount, collateral.decimals),
        price=usd_price(collateral.min, collateral.decimals),
        price_source=PriceSource.TICKER,
    )
    cash = Position(
        token="USD",  # noqa: S106 (a token symbol)
        factor=USD,
        kind=PositionKind.SPOT,
        quantity=_usd(-side * pos.size_in_usd + figures.impact_usd + figures.pnl_cap_usd),
        price=Decimal(1),
        price_source=PriceSource.ORACLE,
    )
    ours = exact_health(figures.remaining_usd, figures.requirement_usd)
    # the venue returns early ("min collateral", "< 0") before computing minCollateralUsdForLeverage;
    # it is then sizeInUsd x the DataStore factor read at the same block
    for_leverage = (
        venue.min_collateral_usd_for_leverage
        if not venue.liquidatable or venue.reason == LEVERAGE_REASON
        else figures.min_collateral_usd_for_leverage
    )
    venue_requirement = max(venue.min_collateral_usd, for_leverage)
    venue_ratio = exact_health(venue.remaining_collateral_usd, venue_requirement)
    consistent = (venue_ratio < 1) == venue.liquidatable
    key_hex = "0x" + pos.key.hex()
    return MarginAccount(
        venue=VENUE,
        deployment=deployment,
        account_id=f"{wallet}/{key_hex}",
        wallet=wallet,
        margin_model=ISOLATED,
        positions=(perp, collateral_leg, cash),
        as_of=as_of,
        venue_health=venue_ratio if consistent else None,
        raw={
            "position_key": key_hex,
            "market": pos.market,
            "collateral_token": pos.collateral_token,
            "is_long": pos.is_long,
            "size_in_usd": str(_usd(pos.size_in_usd)),
            "index_price_min": str(usd_price(index.min, index.decimals)),
            "index_price_max": str(usd_price(index.max, index.decimals)),
            "collateral_price_min": str(usd_price(collateral.min, collateral.decimals)),
            "exact_remaining_usd": figures.remaining_usd,
            "exact_requirement_usd": figures.requirement_usd,
            "exact_health": ours,
            "exact_is_liquidatable": figures.is_liquidatable,
            "venue_is_liquidatable": venue.liquidatable,
            "venue_reason": venue.reason,
            "venue_remaining_usd": venue.remaining_collateral_usd,
            "venue_min_collateral_usd": venue.min_collateral_usd,
            "venue_min_collateral_usd_for_leverage": venue.min_collateral_usd_for_leverage,
            "venue_requirement_usd": venue_requirement,
            "venue_inconsistent": not consistent,
            "liquidatable_mismatch": figures.is_liquidatable != venue.liquidatable,
            "warnings": warnings,
        },
    )
