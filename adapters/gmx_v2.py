"""GMX v2 (gmx-synthetics) perps, on-chain: every position of a wallet is its own margin account.

Reads, per cycle (``perps_options.md`` §3), all on-chain reads at the cycle's pinned block through the
``ChainReader`` (Multicall3 batches):

0. HTTP ``GET {tickers_url}`` (``/prices/tickers``): ``[{tokenAddress, tokenSymbol, minPrice, maxPrice,
   updatedAt, oracleDecimals?}]``; prices are integers, USD per smallest token unit x 1e30, so the USD
   price of one whole token is ``price / 10^(30 - decimals)``. These are the prices the adapter hands the
   Reader (``MarketPrices``: index, long and short token ``{min, max}``).
1. ``Reader.getAccountPositions(dataStore, account, 0, MAX_POSITIONS)`` per wallet, and the DataStore's
   ``getUint(MIN_COLLATERAL_USD)``.
2. ``Reader.getMarket(dataStore, market)`` for markets new to this adapter instance (cached: a
   market's tokens never change).
3. One batch: ``decimals()`` of tokens new to this instance (a token with no code, a synthetic index
   token, falls back to the ticker's ``oracleDecimals``: decimals = 30 - oracleDecimals); per market the
   DataStore's ``MIN_COLLATERAL_FACTOR``, ``MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION`` and
   ``MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS`` (keys as ``Keys.sol``:
   ``keccak256(abi.encode(keccak256(abi.encode(NAME)), market))``); per wallet
   ``Reader.getAccountPositionInfoList(dataStore, referralStorage, account, markets, marketPrices,
   address(0), 0, MAX_POSITIONS)``; per position the venue's own
   ``Reader.isPositionLiquidatable(dataStore, referralStorage, key, market, prices, true, true)`` (the
   keeper's check: MIN_COLLATERAL_USD validated, the liquidation factor).

Liquidation rule (``PositionUtils.isPositionLiquidatable``), all amounts USD x 1e30 integers::

    remaining = (collateralAmount - fees.totalCostAmount) * collateral.min
                + basePnlUsd        # long at index.min, short at index.max
                + impact            # totalImpactUsd: 0 if >= 0, else floored at
                                    # -sizeInUsd * MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS
    requirement = max(MIN_COLLATERAL_USD, sizeInUsd * MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION)
    liquidatable iff remaining < requirement (or remaining <= 0)

``h = remaining / requirement`` (``+inf`` without a requirement and remaining > 0; ``0`` when
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

import decimal
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final, Literal

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from pydantic import BaseModel, BeforeValidator

from adapters.addresses import ChecksumAddress, parse_address
from adapters.assets import AssetMap
from adapters.base import AdapterContext, BlockRef, Call, CallResult, ChainReader, VenueAdapter
from adapters.errors import VenueDataError, VenueError
from adapters.evm.abi import Function, load_contract
from adapters.http import JsonModel, VenueHttp, parse_model
from adapters.lending_common import Batch, CallFailed, decode_result, units
from adapters.specs import GmxV2Deployment, VenueSpec
from adapters.venue_common import Warnings, resolve_symbol
from risk.errors import RiskInputError
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
    "FLOAT_PRECISION",
    "GmxV2Adapter",
    "LiquidationFigures",
    "MarketParams",
    "PositionData",
    "Ticker",
    "VenueCheck",
    "apply_factor",
    "data_store_key",
    "decode_position_info",
    "exact_health",
    "liquidation_figures",
    "liquidation_impact",
    "market_key",
    "parse_position_account",
    "parse_tickers",
    "position_key",
]

VENUE: Final = "gmx_v2"
FLOAT_PRECISION: Final = 10**30
FLOAT_PRECISION_DIGITS: Final = 30
MAX_POSITIONS: Final = 500  # one page of an account's positions
ZERO_ADDRESS: Final = ChecksumAddress("0x0000000000000000000000000000000000000000")
READER: Final = load_contract("gmx_reader")
DATA_STORE: Final = load_contract("gmx_data_store")
TOKEN: Final = load_contract("lending_token")
INFO_LIST_GAS: Final = 4_000_000  # per wallet: Reader.getAccountPositionInfoList on mainnet GMX
LIQUIDATABLE_GAS: Final = 1_500_000
ISOLATED: Final = IsolatedPerpModel()
LEVERAGE_REASON: Final = "min collateral for leverage"  # the venue's reason once every check ran
_EXACT = decimal.Context(prec=100)  # USD x 1e30 ratios are exact to far below the boundary


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


_Held = tuple[ChecksumAddress, ChecksumAddress, bool]  # (market, collateral token, isLong)


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


def _address(value: object) -> ChecksumAddress:
    return parse_address(str(value))


def decode_position_info(info: Sequence[Any]) -> PositionData:
    """One decoded ``PositionInfo`` tuple (``positionKey, position, fees, executionPriceResult,
    basePnlUsd, uncappedBasePnlUsd, pnlAfterPriceImpactUsd``)."""
    key, position, fees, execution, base_pnl, uncapped_pnl, _ = info
    addresses, numbers, flags = position
    return PositionData(
        key=bytes(key),
        account=_address(addresses[0]),
        market=_address(addresses[1]),
        collateral_token=_address(addresses[2]),
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


# --- the rule (pure integer math, USD x 1e30) --------------------------------------------------------


def apply_factor(value: int, factor: int) -> int:
    """``Precision.applyFactor``: ``value * factor / 1e30``, rounded down."""
    return value * factor // FLOAT_PRECISION


def liquidation_impact(total_impact_usd: int, size_in_usd: int, max_factor: int) -> int:
    """A gain counts as 0; a loss is floored at
    ``-sizeInUsd * MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS``."""
    if total_impact_usd >= 0:
        return 0
    return max(total_impact_usd, -apply_factor(size_in_usd, max_factor))


@dataclass(frozen=True, slots=True)
class LiquidationFigures:
    net_collateral_amount: int  # collateral tokens after pending fees
    collateral_usd: int  # net collateral * collateral.min
    impact_usd: int  # capped, as the liquidation check counts it
    pnl_cap_usd: int  # basePnlUsd - uncappedBasePnlUsd (<= 0)
    remaining_usd: int
    min_collateral_usd: int
    min_collateral_usd_for_leverage: int

    @property
    def requirement_usd(self) -> int:
        return max(self.min_collateral_usd, self.min_collateral_usd_for_leverage)

    @property
    def is_liquidatable(self) -> bool:
        r = self.remaining_usd
        return r < self.min_collateral_usd or r <= 0 or r < self.min_collateral_usd_for_leverage


def liquidation_figures(pos: PositionData, collateral_min: int, params: MarketParams) -> LiquidationFigures:
    """``PositionUtils.isPositionLiquidatable(..., shouldValidateMinCollateralUsd=true,
    forLiquidation=true)`` from the Reader's PositionInfo and the DataStore factors."""
    net = pos.collateral_amount - pos.total_cost_amount
    impact = liquidation_impact(
        pos.total_impact_usd, pos.size_in_usd, params.max_position_impact_factor_for_liquidations
    )
    collateral_usd = net * collateral_min
    remaining = collateral_usd + pos.base_pnl_usd + impact
    return LiquidationFigures(
        net_collateral_amount=net,
        collateral_usd=collateral_usd,
        impact_usd=impact,
        pnl_cap_usd=pos.base_pnl_usd - pos.uncapped_base_pnl_usd,
        remaining_usd=remaining,
        min_collateral_usd=params.min_collateral_usd,
        min_collateral_usd_for_leverage=apply_factor(
            pos.size_in_usd, params.min_collateral_factor_for_liquidation
        ),
    )


def exact_health(remaining: int, requirement: int) -> Decimal:
    """``remaining / requirement``; no requirement: ``+inf`` if remaining > 0 else 0 (``h < 1`` iff
    liquidatable either way)."""
    if requirement <= 0:
        return Decimal("Infinity") if remaining > 0 else Decimal(0)
    return _EXACT.divide(Decimal(remaining), Decimal(requirement))


def usd_price(raw: int, decimals: int) -> Decimal:
    """USD per whole token from a GMX price (USD per smallest unit x 1e30)."""
    return units(raw, FLOAT_PRECISION_DIGITS - decimals)


# --- normalization -------------------------------------------------------------------------------------


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


# --- the adapter -------------------------------------------------------------------------------------------


def _call(fn: Function, target: ChecksumAddress, *args: Any, gas: int | None = None) -> Call:
    return Call(target=target, data=fn.encode(*args), gas=gas)


def _view(views: Mapping[ChecksumAddress, TokenView], token: ChecksumAddress) -> TokenView:
    view = views.get(token)
    if view is None:
        raise CallFailed(f"token {token}: decimals() failed and its ticker has no oracleDecimals")
    return view


class GmxV2Adapter(VenueAdapter):
    """One GMX v2 deployment (Reader, DataStore, ReferralStorage on one chain, plus its tickers URL)."""

    family: ClassVar[str] = VENUE
    kind: ClassVar[Literal["evm", "http"]] = "evm"
    margin_model: ClassVar[IsolatedPerpModel] = ISOLATED
    capabilities: ClassVar[frozenset[str]] = frozenset({"venue_liquidatable", "venue_health", "exact_health"})

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        if not isinstance(spec, GmxV2Deployment):
            raise TypeError(f"gmx_v2:{instance} needs a GmxV2Deployment, got {type(spec).__name__}")
        super().__init__(instance=instance, spec=spec, context=context)
        self.deployment_spec = spec
        self.http = VenueHttp(context.http, venue=self.deployment, spec=VenueSpec(api_url=spec.tickers_url))
        self._markets: dict[ChecksumAddress, MarketTokens] = {}
        self._decimals: dict[ChecksumAddress, int] = {}

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        wallets = list(dict.fromkeys(wallets))
        spec = self.deployment_spec
        as_of = block.as_of() if block is not None else AsOf(timestamp=self.context.now(), chain=spec.chain)
        try:
            response = await self.http.get("")
            assert response is not None  # allow_404 is off
            tickers = parse_tickers(response.body)
        except VenueError as exc:
            return [self.unavailable(w, f"tickers: {exc}", as_of) for w in wallets]
        try:
            reader = self.context.chains.get(spec.chain)
            if reader is None:
                raise CallFailed(f"no reader for chain {spec.chain!r}")
            block = block or await reader.pin()
            as_of = block.as_of()
            return await self._read(reader, block, wallets, tickers)
        except (VenueError, CallFailed) as exc:
            return [self.unavailable(w, f"{self.deployment}: {exc}", as_of) for w in wallets]

    async def _read(
        self,
        reader: ChainReader,
        block: BlockRef,
        wallets: list[ChecksumAddress],
        tickers: Mapping[ChecksumAddress, Ticker],
    ) -> list[MarginAccount]:
        min_usd, held, failed = await self._read_positions(reader, block, wallets)
        await self._read_markets(reader, block, {m for rows in held.values() for m, _, _ in rows})
        rc, views, params = await self._read_details(
            reader, block=block, held=held, failed=failed, tickers=tickers, min_usd=min_usd
        )
        out: list[MarginAccount] = []
        for w in wallets:
            if w in failed:
                out.append(self.unavailable(w, f"{self.deployment}: {failed[w]}", block.as_of()))
                continue
            try:
                out.extend(self._accounts(w, rc, views, params, block))
            except (CallFailed, RiskInputError, ValueError) as exc:
                out.append(self.unavailable(w, f"{self.deployment}: {exc}", block.as_of()))
        return out

    async def _read_positions(
        self, reader: ChainReader, block: BlockRef, wallets: list[ChecksumAddress]
    ) -> tuple[int, dict[ChecksumAddress, list[_Held]], dict[ChecksumAddress, str]]:
        """Round 1: MIN_COLLATERAL_USD and each wallet's positions (market, collateral, side)."""
        spec = self.deployment_spec
        store = ChecksumAddress(spec.data_store)
        get_positions = READER.function("getAccountPositions")
        a = Batch()
        a.add("min_usd", _call(DATA_STORE.function("getUint"), store, MIN_COLLATERAL_USD_KEY))
        for w in wallets:
            a.add(
                ("positions", w),
                _call(get_positions, ChecksumAddress(spec.reader), store, w, 0, MAX_POSITIONS),
            )
        ra = await a.run(reader, block)
        min_usd = int(decode_result(DATA_STORE.function("getUint"), ra["min_usd"], "DataStore")[0])
        held: dict[ChecksumAddress, list[_Held]] = {}
        failed: dict[ChecksumAddress, str] = {}
        for w in wallets:
            try:
                rows = decode_result(get_positions, ra[("positions", w)], "Reader")[0]
                held[w] = [(_address(r[0][1]), _address(r[0][2]), bool(r[2][0])) for r in rows]
            except (CallFailed, ValueError) as exc:
                failed[w] = str(exc)
        return min_usd, held, failed

    async def _read_markets(
        self, reader: ChainReader, block: BlockRef, markets: set[ChecksumAddress]
    ) -> None:
        """Round 2 (markets new to this instance): ``Reader.getMarket`` -> its four tokens."""
        new = sorted(markets - set(self._markets))
        if not new:
            return
        spec = self.deployment_spec
        b = Batch()
        for m in new:
            b.add(m, _call(READER.function("getMarket"), ChecksumAddress(spec.reader), spec.data_store, m))
        rb = await b.run(reader, block)
        for m in new:
            props = decode_result(READER.function("getMarket"), rb[m], f"market {m}")[0]
            market = MarketTokens(*(_address(x) for x in props))
            if market.market_token != m:
                raise CallFailed(f"Reader.getMarket({m}) returned market {market.market_token}")
            self._markets[m] = market

    async def _read_details(
        self,
        reader: ChainReader,
        *,
        block: BlockRef,
        held: Mapping[ChecksumAddress, list[_Held]],
        failed: dict[ChecksumAddress, str],
        tickers: Mapping[ChecksumAddress, Ticker],
        min_usd: int,
    ) -> tuple[
        Mapping[Hashable, CallResult], dict[ChecksumAddress, TokenView], dict[ChecksumAddress, MarketParams]
    ]:
        """Round 3: decimals of new tokens, market factors, position infos and the venue's checks.
        A wallet holding a market without a ticker for one of its tokens is marked failed here."""
        store = ChecksumAddress(self.deployment_spec.data_store)
        markets = sorted({m for rows in held.values() for m, _, _ in rows})
        tokens = sorted(
            {t for m in markets for t in self._markets[m].price_tokens}
            | {col for rows in held.values() for _, col, _ in rows}
        )
        c = Batch()
        for t in tokens:
            if t not in self._decimals:
                c.add(("decimals", t), _call(TOKEN.function("decimals"), t))
        for m in markets:
            for name in MARKET_FACTORS:
                c.add((name, m), _call(DATA_STORE.function("getUint"), store, market_key(name, m)))
        for w, rows in held.items():
            gaps = [
                t for m, col, _ in rows for t in (*self._markets[m].price_tokens, col) if t not in tickers
            ]
            if gaps:
                failed[w] = f"no GMX ticker for token {gaps[0]}"
            elif rows and w not in failed:
                self._add_wallet_calls(c, w, rows, tickers)
        rc = await c.run(reader, block)
        for t in tokens:
            if ("decimals", t) in rc:
                self._resolve_decimals(t, rc[("decimals", t)], tickers.get(t))
        views = {
            t: TokenView(tickers[t].tokenSymbol, self._decimals[t], tickers[t].minPrice, tickers[t].maxPrice)
            for t in tokens
            if t in tickers and t in self._decimals
        }
        return rc, views, {m: self._params(m, rc, min_usd) for m in markets}

    def _add_wallet_calls(
        self, c: Batch, wallet: ChecksumAddress, rows: list[_Held], tickers: Mapping[ChecksumAddress, Ticker]
    ) -> None:
        spec = self.deployment_spec
        reader_addr = ChecksumAddress(spec.reader)

        def prices(m: ChecksumAddress) -> tuple[tuple[int, int], ...]:
            return tuple((tickers[t].minPrice, tickers[t].maxPrice) for t in self._markets[m].price_tokens)

        wallet_markets = sorted({m for m, _, _ in rows})
        info_list = READER.function("getAccountPositionInfoList")
        c.add(
            ("info", wallet),
            _call(
                info_list,
                reader_addr,
                spec.data_store,
                spec.referral_storage,
                wallet,
                wallet_markets,
                [prices(m) for m in wallet_markets],
                ZERO_ADDRESS,
                0,
                MAX_POSITIONS,
                gas=INFO_LIST_GAS,
            ),
        )
        for m, col, is_long in rows:
            mk = self._markets[m]
            props = (mk.market_token, mk.index_token, mk.long_token, mk.short_token)
            key = position_key(wallet, m, col, is_long)
            c.add(
                ("liq", wallet, m, col, is_long),
                _call(
                    READER.function("isPositionLiquidatable"),
                    reader_addr,
                    spec.data_store,
                    spec.referral_storage,
                    key,
                    props,
                    prices(m),
                    True,
                    True,
                    gas=LIQUIDATABLE_GAS,
                ),
            )

    def _resolve_decimals(self, token: ChecksumAddress, result: CallResult, ticker: Ticker | None) -> None:
        """ERC-20 ``decimals()``; for a token without code (synthetic index), the ticker's oracleDecimals."""
        try:
            self._decimals[token] = int(
                decode_result(TOKEN.function("decimals"), result, f"token {token}")[0]
            )
        except CallFailed:
            if ticker is not None and ticker.oracleDecimals is not None and 0 <= ticker.oracleDecimals <= 30:
                self._decimals[token] = FLOAT_PRECISION_DIGITS - ticker.oracleDecimals

    def _params(
        self, market: ChecksumAddress, rc: Mapping[Hashable, CallResult], min_usd: int
    ) -> MarketParams:
        values = [
            int(decode_result(DATA_STORE.function("getUint"), rc[(name, market)], f"DataStore {name}")[0])
            for name in MARKET_FACTORS
        ]
        return MarketParams(values[0], values[1], values[2], min_usd)

    def _accounts(
        self,
        wallet: ChecksumAddress,
        rc: Mapping[Hashable, CallResult],
        views: Mapping[ChecksumAddress, TokenView],
        params: Mapping[ChecksumAddress, MarketParams],
        block: BlockRef,
    ) -> list[MarginAccount]:
        if ("info", wallet) not in rc:
            return []  # no positions
        infos = decode_result(READER.function("getAccountPositionInfoList"), rc[("info", wallet)], "Reader")[
            0
        ]
        accounts: list[MarginAccount] = []
        for raw in infos:
            pos = decode_position_info(raw)
            if pos.account != wallet or pos.key != position_key(
                wallet, pos.market, pos.collateral_token, pos.is_long
            ):
                raise CallFailed(f"Reader returned position 0x{pos.key.hex()} that is not {wallet}'s")
            liq_key = ("liq", wallet, pos.market, pos.collateral_token, pos.is_long)
            if liq_key not in rc or pos.market not in params:
                raise CallFailed(f"position 0x{pos.key.hex()} appeared between two reads of one block")
            check = decode_result(
                READER.function("isPositionLiquidatable"), rc[liq_key], f"position 0x{pos.key.hex()}"
            )
            info = check[2]
            venue = VenueCheck(bool(check[0]), str(check[1]), int(info[0]), int(info[1]), int(info[2]))
            market = self._markets[pos.market]
            account = parse_position_account(
                wallet=wallet,
                deployment=self.deployment,
                pos=pos,
                index=_view(views, market.index_token),
                collateral=_view(views, pos.collateral_token),
                params=params[pos.market],
                venue=venue,
                assets=self.context.assets,
                as_of=block.as_of(),
            )
            if len(infos) >= MAX_POSITIONS:
                warnings = account.raw["warnings"]
                assert isinstance(warnings, list)
                warnings.append(
                    f"{VENUE}: {wallet} holds {MAX_POSITIONS}+ positions; only the first page is read"
                )
            accounts.append(account)
        return accounts
