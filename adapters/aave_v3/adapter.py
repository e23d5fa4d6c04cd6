"""``AaveV3Adapter``: every wallet of one Aave V3 family deployment, read at one pinned block.

Configured: only the PoolAddressesProvider (``AaveV3Deployment``). Per cycle, with every wallet's
calls in the same ``call_many`` of each round (lending.md §1):

1. (first cycle of the process only) ``provider.getPool()``: the proxy address never changes, so it is
   kept in the process-level ``DISCOVERY`` cache per (chain id, RPC URLs, provider). When the adapter
   pins the block itself, this call rides in the pin's own HTTP request (``EvmChainReader.pin_with``).
2. Round A: ``Pool.POOL_REVISION()``, ``getReservesList()``, ``provider.getPriceOracle()`` and
   ``getPoolDataProvider()``; per wallet ``getUserConfiguration``, ``getUserEMode``,
   ``getUserAccountData`` (kept as the venue's own figure).
3. (when a reserve is new to the process) ``getReserveData`` and the underlying's ``symbol()``:
   reserve id and token addresses are cached in ``DISCOVERY`` too (they never change for a listed
   reserve; every cycle checks them against round B's ``getReserveData`` and drops a changed one).
4. Round B: ``oracle.BASE_CURRENCY_UNIT()``, ``getAssetsPrices(reserves)``; per reserve
   ``getReserveData`` (configuration, id), ``getReserveNormalizedIncome/VariableDebt``; per e-mode
   category in use: ``getEModeCategoryData`` (revision <= 4) or ``getEModeCategoryCollateralConfig`` +
   ``...CollateralBitmap`` (+ ``...LtvzeroBitmap`` from v3.6, ``getIsEModeCategoryIsolated`` from
   v3.7); per wallet ``aToken.scaledBalanceOf`` for every reserve and, for reserves whose borrowing
   bit is set, ``variableDebtToken.scaledBalanceOf`` (+ ``stableDebtToken.balanceOf`` up to v3.1).
5. (revision <= 4, only if a category in use has a price source) ``oracle.getAssetPrice(source)``.

Oracle freshness (:mod:`adapters.oracle_freshness`): each reserve's price source
``oracle.getSourceOfAsset(asset)`` is discovered with the reserve statics (step 3, same batch) and
kept in ``DISCOVERY`` per (oracle, asset); round B reads ``latestRoundData()`` of every cached
source and ``getSourceOfAsset`` again (a changed source is re-cached and its freshness is unknown
this cycle). No extra HTTP request after the first cycle. A zero source (fallback oracle, base
currency) or one without ``latestRoundData`` (e.g. a CAPO price-cap adapter) is unknown. E-mode
category price sources (revision <= 4) are not covered.

A deployment-level failure makes every wallet UNAVAILABLE with the reason; a wallet-level revert or
garbage answer makes only that wallet UNAVAILABLE. A wallet with nothing here gives no account.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from adapters.aave_v3.accounts import WalletReads, build_account
from adapters.aave_v3.contracts import ORACLE, POOL, PROVIDER, TOKEN, ReserveStatic, address, decode_symbol
from adapters.addresses import ChecksumAddress
from adapters.base import AdapterContext, BlockRef, CallResult, ChainReader, VenueAdapter
from adapters.evm.abi import Function
from adapters.lending_common import (
    DISCOVERY,
    Batch,
    CallFailed,
    build_each,
    decode_each,
    decode_result,
    encode_call,
    read_pinned,
)
from adapters.oracle_freshness import AGGREGATOR, FeedReading, chain_spec_of, reading, unknown
from adapters.specs import AaveV3Deployment
from risk.exact.aave import AaveEModeCategory, AaveReserveState, user_config_flags
from risk.model import LendingModel, MarginAccount

__all__ = ["AaveV3Adapter"]

_LAST_PER_ASSET_EMODE_REVISION = 4
_FIRST_LTVZERO_REVISION = 10
_FIRST_ISOLATED_REVISION = 11

Results = Mapping[Hashable, CallResult]


class AaveV3Adapter(VenueAdapter):
    family: ClassVar[str] = "aave_v3"
    kind: ClassVar[Literal["evm", "http"]] = "evm"
    margin_model: ClassVar[LendingModel] = LendingModel()
    capabilities: ClassVar[frozenset[str]] = frozenset({"venue_health", "exact_health"})

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        if not isinstance(spec, AaveV3Deployment):
            raise TypeError(f"aave_v3:{instance} needs an AaveV3Deployment, got {type(spec).__name__}")
        super().__init__(instance=instance, spec=spec, context=context)
        self.deployment_spec = spec
        self._statics: dict[str, ReserveStatic] = {}

    def _key(self, reader: ChainReader, what: str) -> tuple[Any, ...]:
        urls = getattr(getattr(reader, "spec", None), "rpc_urls", ())
        provider = self.deployment_spec.pool_addresses_provider.lower()
        return ("aave_v3", what, reader.chain_id, tuple(urls), provider)

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        return await read_pinned(self, self.deployment_spec.chain, wallets, block, self._read, pin=self._pin)

    async def _pin(self, reader: ChainReader) -> BlockRef:
        """Pin the block; on the process's first cycle, discover the Pool in the same HTTP request."""
        pin_with = getattr(reader, "pin_with", None)
        if DISCOVERY.get(self._key(reader, "pool")) is not None or pin_with is None:
            return await reader.pin()
        provider = ChecksumAddress(self.deployment_spec.pool_addresses_provider)
        block, (result,) = await pin_with([encode_call(PROVIDER.function("getPool"), provider)])
        self._remember_pool(reader, result)
        return block  # type: ignore[no-any-return]

    def _remember_pool(self, reader: ChainReader, result: CallResult) -> ChecksumAddress:
        pool = address(decode_result(PROVIDER.function("getPool"), result, "provider")[0])
        DISCOVERY.put(self._key(reader, "pool"), pool)
        return pool

    async def _pool(self, reader: ChainReader, block: BlockRef) -> ChecksumAddress:
        cached: ChecksumAddress | None = DISCOVERY.get(self._key(reader, "pool"))
        if cached is not None:
            return cached
        provider = ChecksumAddress(self.deployment_spec.pool_addresses_provider)
        first = Batch()
        first.add("pool", encode_call(PROVIDER.function("getPool"), provider))
        return self._remember_pool(reader, (await first.run(reader, block))["pool"])

    async def _read(
        self, reader: ChainReader, block: BlockRef, wallets: list[ChecksumAddress]
    ) -> list[MarginAccount]:
        provider_address = ChecksumAddress(self.deployment_spec.pool_addresses_provider)
        statics_key = self._key(reader, "statics")
        shared = DISCOVERY.get(statics_key)
        if shared is None:
            shared = {}
            DISCOVERY.put(statics_key, shared)
        self._statics = shared
        pool = await self._pool(reader, block)

        # Round A: pool-level facts and every wallet's configuration, e-mode and account data.
        a = Batch()
        a.add("revision", encode_call(POOL.function("POOL_REVISION"), pool))
        a.add("reserves", encode_call(POOL.function("getReservesList"), pool))
        a.add("oracle", encode_call(PROVIDER.function("getPriceOracle"), provider_address))
        for w in wallets:
            a.add(("config", w), encode_call(POOL.function("getUserConfiguration"), pool, w))
            a.add(("emode", w), encode_call(POOL.function("getUserEMode"), pool, w))
            a.add(("account", w), encode_call(POOL.function("getUserAccountData"), pool, w))
        ra = await a.run(reader, block)
        try:
            revision = int(decode_result(POOL.function("POOL_REVISION"), ra["revision"], "Pool")[0])
        except CallFailed:
            DISCOVERY.forget(self._key(reader, "pool"))  # a stale or wrong Pool: rediscover next cycle
            raise
        assets = [
            address(x) for x in decode_result(POOL.function("getReservesList"), ra["reserves"], "Pool")[0]
        ]
        oracle = address(decode_result(PROVIDER.function("getPriceOracle"), ra["oracle"], "provider")[0])

        def head(w: ChecksumAddress) -> tuple[int, int, tuple[int, int, int, int, int, int]]:
            (config,) = decode_result(POOL.function("getUserConfiguration"), ra[("config", w)], "Pool")
            (emode,) = decode_result(POOL.function("getUserEMode"), ra[("emode", w)], "Pool")
            data = decode_result(POOL.function("getUserAccountData"), ra[("account", w)], "Pool")
            v = [int(x) for x in data]
            return int(config[0]), int(emode), (v[0], v[1], v[2], v[3], v[4], v[5])

        heads, failed = decode_each(wallets, head)

        sources = self._sources(reader)
        await self._ensure_statics(reader, block, pool, assets, oracle=oracle, sources=sources)
        statics = [self._statics[x] for x in assets]
        categories = sorted({h[1] for h in heads.values() if h[1] != 0})

        # Round B: reserves, prices, e-mode categories and every wallet's balances.
        b = Batch()
        b.add("unit", encode_call(ORACLE.function("BASE_CURRENCY_UNIT"), oracle))
        b.add("prices", encode_call(ORACLE.function("getAssetsPrices"), oracle, assets))
        for x in assets:
            b.add(("source", x), encode_call(ORACLE.function("getSourceOfAsset"), oracle, x))
            src = sources.get((oracle, x))
            if src is not None and int(src, 16) != 0:
                b.add(("round", x), encode_call(AGGREGATOR.function("latestRoundData"), src))
        for s in statics:
            b.add(("data", s.asset), encode_call(POOL.function("getReserveData"), pool, s.asset))
            b.add(
                ("income", s.asset), encode_call(POOL.function("getReserveNormalizedIncome"), pool, s.asset)
            )
            b.add(
                ("debt", s.asset),
                encode_call(POOL.function("getReserveNormalizedVariableDebt"), pool, s.asset),
            )
        for c in categories:
            for name in _category_functions(revision):
                b.add((name, c), encode_call(POOL.function(name), pool, c))
        for w, (config, _, _) in heads.items():
            for s in statics:
                b.add(("a", w, s.asset), encode_call(TOKEN.function("scaledBalanceOf"), s.a_token, w))
                borrowing, _ = user_config_flags(config, s.reserve_id)
                if borrowing:
                    b.add(
                        ("v", w, s.asset),
                        encode_call(TOKEN.function("scaledBalanceOf"), s.variable_debt_token, w),
                    )
                    if revision <= _LAST_PER_ASSET_EMODE_REVISION:
                        b.add(
                            ("s", w, s.asset),
                            encode_call(TOKEN.function("balanceOf"), s.stable_debt_token, w),
                        )
        rb = await b.run(reader, block)
        unit = int(decode_result(ORACLE.function("BASE_CURRENCY_UNIT"), rb["unit"], "oracle")[0])
        prices = [
            int(p) for p in decode_result(ORACLE.function("getAssetsPrices"), rb["prices"], "oracle")[0]
        ]
        if len(prices) != len(assets) or unit <= 0:
            raise CallFailed(f"oracle returned {len(prices)} prices for {len(assets)} reserves (unit {unit})")
        reserves = tuple(self._reserve_state(rb, s, price) for s, price in zip(statics, prices, strict=True))
        emodes = await self._emode_categories(
            reader, block, oracle=oracle, revision=revision, categories=categories, rb=rb
        )

        symbols: dict[str, str] = {s.asset: s.symbol for s in statics}
        feeds = self._feeds(reader, rb, oracle, statics, sources)

        def build(w: ChecksumAddress) -> MarginAccount | None:
            config, category, venue_data = heads[w]
            reads = WalletReads(
                user_config=config,
                emode_category=category,
                venue_account_data=venue_data,
                scaled_a=_balances(rb, "a", w, statics, TOKEN.function("scaledBalanceOf")),
                scaled_v=_balances(rb, "v", w, statics, TOKEN.function("scaledBalanceOf")),
                stable=_balances(rb, "s", w, statics, TOKEN.function("balanceOf")),
            )
            if category != 0 and category not in emodes:
                raise CallFailed(f"e-mode category {category} could not be read")
            return build_account(
                venue=self.family,
                deployment=self.deployment,
                wallet=w,
                as_of=block.as_of(),
                revision=revision,
                base_currency_unit=unit,
                reserves=reserves,
                symbols=symbols,
                emode=emodes.get(category),
                reads=reads,
                assets=self.context.assets,
                feeds=feeds,
                block=block,
            )

        return build_each(self, wallets, failed, block, build)

    def _sources(self, reader: ChainReader) -> dict[tuple[str, str], ChecksumAddress]:
        """The process-level (oracle, asset) -> price source cache of this deployment."""
        key = self._key(reader, "sources")
        shared: dict[tuple[str, str], ChecksumAddress] | None = DISCOVERY.get(key)
        if shared is None:
            shared = {}
            DISCOVERY.put(key, shared)
        return shared

    async def _ensure_statics(
        self,
        reader: ChainReader,
        block: BlockRef,
        pool: ChecksumAddress,
        assets: list[ChecksumAddress],
        *,
        oracle: ChecksumAddress,
        sources: dict[tuple[str, str], ChecksumAddress],
    ) -> None:
        """Reserve statics and price sources new to the process, in one batch."""
        missing = [x for x in assets if x not in self._statics]
        no_source = [x for x in assets if (oracle, x) not in sources]
        if not missing and not no_source:
            return
        batch = Batch()
        for x in missing:
            batch.add(("data", x), encode_call(POOL.function("getReserveData"), pool, x))
            batch.add(("symbol", x), encode_call(TOKEN.function("symbol"), x))
        for x in no_source:
            batch.add(("source", x), encode_call(ORACLE.function("getSourceOfAsset"), oracle, x))
        got = await batch.run(reader, block)
        for x in no_source:
            try:
                sources[(oracle, x)] = address(
                    decode_result(ORACLE.function("getSourceOfAsset"), got[("source", x)], "oracle")[0]
                )
            except CallFailed:
                continue  # freshness unknown; asked again next cycle
        for x in missing:
            data = decode_result(POOL.function("getReserveData"), got[("data", x)], f"reserve {x}")[0]
            self._statics[x] = ReserveStatic(
                asset=x,
                reserve_id=int(data[7]),
                a_token=address(data[8]),
                stable_debt_token=address(data[9]),
                variable_debt_token=address(data[10]),
                symbol=decode_symbol(got[("symbol", x)], x),
            )

    def _feeds(
        self,
        reader: ChainReader,
        rb: Results,
        oracle: ChecksumAddress,
        statics: list[ReserveStatic],
        sources: dict[tuple[str, str], ChecksumAddress],
    ) -> dict[str, FeedReading]:
        """Reserve asset -> its price source's freshness reading (see the module docstring)."""
        spec = chain_spec_of(reader)
        out: dict[str, FeedReading] = {}
        for s in statics:
            cached = sources.get((oracle, s.asset))
            try:
                now = address(
                    decode_result(ORACLE.function("getSourceOfAsset"), rb[("source", s.asset)], "oracle")[0]
                )
            except CallFailed as exc:
                out[s.asset] = unknown(spec, label=s.symbol, symbol=s.symbol, token=s.asset, reason=str(exc))
                continue
            if now != cached:
                sources[(oracle, s.asset)] = now
                reason = f"price source of {s.symbol} changed to {now}; read next cycle"
                out[s.asset] = unknown(spec, label=s.symbol, symbol=s.symbol, token=s.asset, reason=reason)
            elif int(now, 16) == 0:
                reason = f"no price source for {s.symbol} (fallback oracle or base currency)"
                out[s.asset] = unknown(spec, label=s.symbol, symbol=s.symbol, token=s.asset, reason=reason)
            else:
                out[s.asset] = reading(
                    spec, label=s.symbol, symbol=s.symbol, token=s.asset, feed=now,
                    result=rb.get(("round", s.asset)),
                )
        return out

    def _reserve_state(self, rb: Results, s: ReserveStatic, price: int) -> AaveReserveState:
        data = decode_result(POOL.function("getReserveData"), rb[("data", s.asset)], f"reserve {s.asset}")[0]
        if int(data[7]) != s.reserve_id or address(data[8]) != s.a_token:
            self._statics.pop(s.asset, None)
            raise CallFailed(f"reserve {s.asset} changed id or tokens; it is reread next cycle")
        (income,) = decode_result(
            POOL.function("getReserveNormalizedIncome"), rb[("income", s.asset)], "Pool"
        )
        (debt,) = decode_result(
            POOL.function("getReserveNormalizedVariableDebt"), rb[("debt", s.asset)], "Pool"
        )
        return AaveReserveState(s.asset, s.reserve_id, int(data[0][0]), price, int(income), int(debt))

    async def _emode_categories(
        self,
        reader: ChainReader,
        block: BlockRef,
        *,
        oracle: ChecksumAddress,
        revision: int,
        categories: list[int],
        rb: Results,
    ) -> dict[int, AaveEModeCategory]:
        out: dict[int, AaveEModeCategory] = {}
        if revision <= _LAST_PER_ASSET_EMODE_REVISION:
            sources: dict[int, ChecksumAddress] = {}
            raw: dict[int, tuple[int, int, int]] = {}
            for c in categories:
                try:
                    ltv, lt, lb, source, _label = decode_result(
                        POOL.function("getEModeCategoryData"), rb[("getEModeCategoryData", c)], "Pool"
                    )[0]
                except CallFailed:
                    continue  # the wallets in this category become UNAVAILABLE
                raw[c] = (int(ltv), int(lt), int(lb))
                if int(source, 16) != 0:
                    sources[c] = address(source)
            source_prices: dict[int, int] = {}
            if sources:
                batch = Batch()
                for c, src in sources.items():
                    batch.add(c, encode_call(ORACLE.function("getAssetPrice"), oracle, src))
                got = await batch.run(reader, block)
                for c in sources:
                    (p,) = decode_result(ORACLE.function("getAssetPrice"), got[c], "oracle")
                    source_prices[c] = int(p)
            for c, (ltv, lt, lb) in raw.items():
                out[c] = AaveEModeCategory(c, ltv, lt, lb, price_source_price=source_prices.get(c, 0))
            return out
        for c in categories:
            try:
                ltv, lt, lb = decode_result(
                    POOL.function("getEModeCategoryCollateralConfig"),
                    rb[("getEModeCategoryCollateralConfig", c)],
                    "Pool",
                )[0]
                (bitmap,) = decode_result(
                    POOL.function("getEModeCategoryCollateralBitmap"),
                    rb[("getEModeCategoryCollateralBitmap", c)],
                    "Pool",
                )
                ltvzero = isolated = 0
                if revision >= _FIRST_LTVZERO_REVISION:
                    (ltvzero,) = decode_result(
                        POOL.function("getEModeCategoryLtvzeroBitmap"),
                        rb[("getEModeCategoryLtvzeroBitmap", c)],
                        "Pool",
                    )
                if revision >= _FIRST_ISOLATED_REVISION:
                    (isolated,) = decode_result(
                        POOL.function("getIsEModeCategoryIsolated"),
                        rb[("getIsEModeCategoryIsolated", c)],
                        "Pool",
                    )
            except CallFailed:
                continue
            out[c] = AaveEModeCategory(
                c,
                int(ltv),
                int(lt),
                int(lb),
                collateral_bitmap=int(bitmap),
                ltvzero_bitmap=int(ltvzero),
                isolated=bool(isolated),
            )
        return out


def _category_functions(revision: int) -> tuple[str, ...]:
    if revision <= _LAST_PER_ASSET_EMODE_REVISION:
        return ("getEModeCategoryData",)
    names = ["getEModeCategoryCollateralConfig", "getEModeCategoryCollateralBitmap"]
    if revision >= _FIRST_LTVZERO_REVISION:
        names.append("getEModeCategoryLtvzeroBitmap")
    if revision >= _FIRST_ISOLATED_REVISION:
        names.append("getIsEModeCategoryIsolated")
    return tuple(names)


def _balances(
    rb: Results, tag: str, wallet: ChecksumAddress, statics: list[ReserveStatic], fn: Function
) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in statics:
        key = (tag, wallet, s.asset)
        if key in rb:
            (value,) = decode_result(fn, rb[key], f"{tag}Token of {s.symbol}")
            out[s.asset] = int(value)
    return out
