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

The liquidation rule is :mod:`risk.exact.gmx`; how a position becomes a margin account (and what
``raw`` keeps) is :mod:`adapters.gmx_v2.positions`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel

from adapters.addresses import ChecksumAddress
from adapters.base import AdapterContext, BlockRef, Call, CallResult, ChainReader, VenueAdapter
from adapters.errors import VenueError
from adapters.evm.abi import Function, load_contract
from adapters.gmx_v2.positions import (
    FLOAT_PRECISION_DIGITS,
    ISOLATED,
    MARKET_FACTORS,
    MIN_COLLATERAL_USD_KEY,
    VENUE,
    MarketParams,
    MarketTokens,
    Ticker,
    TokenView,
    VenueCheck,
    decode_position_info,
    decoded_address,
    market_key,
    parse_position_account,
    parse_tickers,
    position_key,
)
from adapters.http import VenueHttp
from adapters.lending_common import Batch, CallFailed, decode_result, read_pinned
from adapters.specs import GmxV2Deployment, VenueSpec
from risk.model import AsOf, IsolatedPerpModel, MarginAccount

__all__ = ["MAX_POSITIONS", "GmxV2Adapter"]

MAX_POSITIONS: Final = 500  # one page of an account's positions
ZERO_ADDRESS: Final = ChecksumAddress("0x0000000000000000000000000000000000000000")
READER: Final = load_contract("gmx_reader")
DATA_STORE: Final = load_contract("gmx_data_store")
TOKEN: Final = load_contract("lending_token")
INFO_LIST_GAS: Final = 4_000_000  # per wallet: Reader.getAccountPositionInfoList on mainnet GMX
LIQUIDATABLE_GAS: Final = 1_500_000

_Held = tuple[ChecksumAddress, ChecksumAddress, bool]  # (market, collateral token, isLong)


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

        async def read(
            reader: ChainReader, pinned: BlockRef, unique: list[ChecksumAddress]
        ) -> list[MarginAccount]:
            return await self._read(reader, pinned, unique, tickers)

        return await read_pinned(self, spec.chain, wallets, block, read)

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
            except (CallFailed, ValueError) as exc:  # RiskInputError is a ValueError
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
                held[w] = [(decoded_address(r[0][1]), decoded_address(r[0][2]), bool(r[2][0])) for r in rows]
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
            market = MarketTokens(*(decoded_address(x) for x in props))
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
