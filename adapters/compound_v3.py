"""``CompoundV3Adapter``: every wallet of one Comet market (one instance per Comet proxy), one block.

Reads (lending.md §2), all wallets batched in each round's single ``call_many``:

1. Round A: ``baseToken``, ``baseScale``, ``baseTokenPriceFeed``, ``numAssets``, ``totalsBasic``
   (STORED indexes) and ``getAssetInfo(i)`` for the asset count known from the previous cycle; per
   wallet ``userBasic`` (principal, ``assetsIn``), ``balanceOf``, ``borrowBalanceOf`` (accrued) and the
   venue's own ``isLiquidatable``.
2. (first cycle, or when ``numAssets`` changed) ``getAssetInfo(i)`` for every asset.
3. Round B: ``getPrice(feed)`` for the base feed and every asset feed (8 decimals, in the market's
   numeraire: ETH for WETH markets), the underlying ``symbol()`` of assets new to this instance, and
   ``userCollateral(wallet, asset)`` for every asset whose ``assetsIn`` bit is set.

Positions: base supply -> ``SUPPLY`` (``balanceOf``), base borrow -> ``DEBT`` (``-borrowBalanceOf``),
collateral -> ``COLLATERAL`` with LTV = borrowCollateralFactor, LT = liquidateCollateralFactor,
bonus = 1 - liquidationFactor; price = ``getPrice / 1e8``; quote ``ETH`` when the configured base
symbol is WETH/ETH, else ``USD``.

Health (:mod:`risk.exact.comet`): ``Σ collateral·price·liquidateCF / |debt value|`` with Comet's own
roundings and the stored ``baseBorrowIndex``; ``< 1`` exactly when ``isLiquidatable``. The venue's
boolean is kept in ``raw["venue_is_liquidatable"]``; ``venue_health`` is our exact ratio when our
``is_liquidatable`` agrees with the venue's, else ``None`` with ``raw["liquidatable_mismatch"] = True``.
``raw`` also holds ``exact_health`` (Decimal, ``Infinity`` for no debt), ``exact_liquidity`` (int,
price units), ``principal`` and ``base_borrow_index``.

Oracle freshness (:mod:`adapters.oracle_freshness`): round B also reads ``latestRoundData()`` of the
base feed and every asset feed (Comet's own ``getPrice`` reads the same function); an account's
figures cover the base feed when it supplies or borrows base and the feed of each collateral it holds.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel

from adapters.aave_v3.contracts import address, decode_symbol
from adapters.addresses import ChecksumAddress
from adapters.base import AdapterContext, BlockRef, CallResult, ChainReader, VenueAdapter
from adapters.evm.abi import load_contract
from adapters.lending_common import (
    Batch,
    build_each,
    decode_each,
    decode_result,
    encode_call,
    read_pinned,
    units,
)
from adapters.oracle_freshness import AGGREGATOR, FeedReading, chain_spec_of, freshness_raw, reading
from adapters.specs import CompoundV3Deployment
from risk.exact.comet import CometCollateral, health_ratio, is_liquidatable, liquidity
from risk.exact.wadray import to_decimal
from risk.model import (
    USD,
    FactorId,
    LendingModel,
    LendingParams,
    MarginAccount,
    Position,
    PositionKind,
)

__all__ = ["CompoundV3Adapter"]

COMET = load_contract("comet")
TOKEN = load_contract("lending_token")
PRICE_DECIMALS = 8
_ETH_BASES = frozenset({"WETH", "ETH"})

Results = Mapping[Hashable, CallResult]


@dataclass(frozen=True, slots=True)
class _Asset:
    offset: int
    asset: ChecksumAddress
    price_feed: ChecksumAddress
    scale: int
    borrow_cf: int
    liquidate_cf: int
    liquidation_factor: int


@dataclass(frozen=True, slots=True)
class _Market:
    infos: list[_Asset]
    prices: Mapping[str, int]  # price feed -> getPrice
    base_token: ChecksumAddress
    base_scale: int
    base_feed: ChecksumAddress
    borrow_index: int  # stored totalsBasic().baseBorrowIndex
    feeds: Mapping[str, FeedReading]  # token address -> its price feed's freshness


def _decimals_of(scale: int) -> int | None:
    digits = len(str(scale)) - 1
    return digits if scale > 0 and 10**digits == scale else None


def _quantity(amount: int, scale: int) -> Decimal:
    decimals = _decimals_of(scale)
    return units(amount, decimals) if decimals is not None else Decimal(amount) / Decimal(scale)


def _wad(value: int) -> Decimal:
    return units(value, 18)


class CompoundV3Adapter(VenueAdapter):
    family: ClassVar[str] = "compound_v3"
    kind: ClassVar[Literal["evm", "http"]] = "evm"
    margin_model: ClassVar[LendingModel] = LendingModel(liquidation_close_factor=Decimal(1))  # absorb
    capabilities: ClassVar[frozenset[str]] = frozenset({"venue_liquidatable", "exact_health"})

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        if not isinstance(spec, CompoundV3Deployment):
            raise TypeError(f"compound_v3:{instance} needs a CompoundV3Deployment, got {type(spec).__name__}")
        super().__init__(instance=instance, spec=spec, context=context)
        self.deployment_spec = spec
        self._num_assets = 0
        self._symbols: dict[str, str] = {}

    @property
    def quote(self) -> FactorId:
        return FactorId("ETH") if self.deployment_spec.base_symbol.upper() in _ETH_BASES else USD

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        return await read_pinned(self, self.deployment_spec.chain, wallets, block, self._read)

    async def _read(
        self, reader: ChainReader, block: BlockRef, wallets: list[ChecksumAddress]
    ) -> list[MarginAccount]:
        comet = ChecksumAddress(self.deployment_spec.comet)
        a = Batch()
        for name in ("baseToken", "baseScale", "baseTokenPriceFeed", "numAssets", "totalsBasic"):
            a.add(name, encode_call(COMET.function(name), comet))
        for i in range(self._num_assets):
            a.add(("info", i), encode_call(COMET.function("getAssetInfo"), comet, i))
        for w in wallets:
            for name in ("userBasic", "balanceOf", "borrowBalanceOf", "isLiquidatable"):
                a.add((name, w), encode_call(COMET.function(name), comet, w))
        ra = await a.run(reader, block)

        def one(name: str) -> int:
            return int(decode_result(COMET.function(name), ra[name], "Comet")[0])

        base_token = address(decode_result(COMET.function("baseToken"), ra["baseToken"], "Comet")[0])
        base_scale, num_assets = one("baseScale"), one("numAssets")
        base_feed = address(
            decode_result(COMET.function("baseTokenPriceFeed"), ra["baseTokenPriceFeed"], "Comet")[0]
        )
        totals = decode_result(COMET.function("totalsBasic"), ra["totalsBasic"], "Comet")[0]
        borrow_index = int(totals[1])
        if num_assets != self._num_assets:
            self._num_assets = num_assets
            again = Batch()
            for i in range(num_assets):
                again.add(("info", i), encode_call(COMET.function("getAssetInfo"), comet, i))
            ra = {**ra, **(await again.run(reader, block))}
        infos = [self._asset(ra[("info", i)], i) for i in range(num_assets)]

        def head(w: ChecksumAddress) -> tuple[int, int, int, int, bool]:
            basic = decode_result(COMET.function("userBasic"), ra[("userBasic", w)], "Comet")
            supplied = decode_result(COMET.function("balanceOf"), ra[("balanceOf", w)], "Comet")[0]
            owed = decode_result(COMET.function("borrowBalanceOf"), ra[("borrowBalanceOf", w)], "Comet")[0]
            flag = decode_result(COMET.function("isLiquidatable"), ra[("isLiquidatable", w)], "Comet")[0]
            assets_in = int(basic[3]) | (int(basic[4]) << 16)
            return int(basic[0]), assets_in, int(supplied), int(owed), bool(flag)

        heads, failed = decode_each(wallets, head)

        b = Batch()
        b.add(("price", base_feed), encode_call(COMET.function("getPrice"), comet, base_feed))
        for feed in dict.fromkeys([base_feed, *(i.price_feed for i in infos)]):
            b.add(("round", feed), encode_call(AGGREGATOR.function("latestRoundData"), feed))
        for info in infos:
            b.add(("price", info.price_feed), encode_call(COMET.function("getPrice"), comet, info.price_feed))
            if info.asset not in self._symbols:
                b.add(("symbol", info.asset), encode_call(TOKEN.function("symbol"), info.asset))
        for w, (_, assets_in, _, _, _) in heads.items():
            for info in infos:
                if (assets_in >> info.offset) & 1:
                    b.add(
                        ("coll", w, info.asset),
                        encode_call(COMET.function("userCollateral"), comet, w, info.asset),
                    )
        rb = await b.run(reader, block)
        for info in infos:
            if ("symbol", info.asset) in rb:
                self._symbols[info.asset] = decode_symbol(rb[("symbol", info.asset)], info.asset)
        prices: dict[str, int] = {
            feed: int(decode_result(COMET.function("getPrice"), rb[("price", feed)], f"price feed {feed}")[0])
            for feed in {base_feed, *(i.price_feed for i in infos)}
        }

        spec, base_symbol = chain_spec_of(reader), self.deployment_spec.base_symbol
        feeds: dict[str, FeedReading] = {
            base_token: reading(
                spec, label=base_symbol, symbol=base_symbol, token=base_token, feed=base_feed,
                result=rb.get(("round", base_feed)),
            )
        }
        for info in infos:
            symbol = self._symbols.get(info.asset, info.asset)
            feeds[info.asset] = reading(
                spec, label=symbol, symbol=symbol, token=info.asset, feed=info.price_feed,
                result=rb.get(("round", info.price_feed)),
            )
        market = _Market(infos, prices, base_token, base_scale, base_feed, borrow_index, feeds)
        return build_each(
            self, wallets, failed, block, lambda w: self._account(w, heads[w], rb, market, block)
        )

    def _asset(self, result: CallResult, i: int) -> _Asset:
        info = decode_result(COMET.function("getAssetInfo"), result, f"asset {i}")[0]
        return _Asset(
            int(info[0]),
            address(info[1]),
            address(info[2]),
            int(info[3]),
            int(info[4]),
            int(info[5]),
            int(info[6]),
        )

    def _account(
        self,
        wallet: ChecksumAddress,
        head: tuple[int, int, int, int, bool],
        rb: Results,
        market: _Market,
        block: BlockRef,
    ) -> MarginAccount | None:
        principal, _, supplied, owed, venue_flag = head
        infos, prices, base_scale = market.infos, market.prices, market.base_scale
        borrow_index = market.borrow_index
        assets = self.context.assets
        base_symbol = self.deployment_spec.base_symbol
        base_info = assets.resolve(base_symbol)
        base_price = prices[market.base_feed]
        positions: list[Position] = []
        collaterals: list[CometCollateral] = []
        held: list[FeedReading] = [market.feeds[market.base_token]] if supplied > 0 or owed > 0 else []
        if supplied > 0:
            positions.append(
                Position(
                    token=base_symbol,
                    factor=base_info.factor,
                    kind=PositionKind.SUPPLY,
                    quantity=_quantity(supplied, base_scale),
                    price=units(base_price, PRICE_DECIMALS),
                    basis_factor=base_info.basis,
                )
            )
        if owed > 0:
            positions.append(
                Position(
                    token=base_symbol,
                    factor=base_info.factor,
                    kind=PositionKind.DEBT,
                    quantity=-_quantity(owed, base_scale),
                    price=units(base_price, PRICE_DECIMALS),
                    basis_factor=base_info.basis,
                )
            )
        for info in infos:
            key = ("coll", wallet, info.asset)
            if key not in rb:
                continue
            balance = int(decode_result(COMET.function("userCollateral"), rb[key], "Comet")[0])
            price = prices[info.price_feed]
            collaterals.append(CometCollateral(balance, price, info.scale, info.liquidate_cf))
            if balance == 0:
                continue
            held.append(market.feeds[info.asset])
            symbol = self._symbols.get(info.asset, info.asset)
            resolved = assets.resolve(symbol)
            positions.append(
                Position(
                    token=symbol,
                    factor=resolved.factor,
                    kind=PositionKind.COLLATERAL,
                    quantity=_quantity(balance, info.scale),
                    price=units(price, PRICE_DECIMALS),
                    basis_factor=resolved.basis,
                    lending=LendingParams(
                        ltv=_wad(info.borrow_cf),
                        liquidation_threshold=_wad(info.liquidate_cf),
                        liquidation_bonus=max(Decimal(0), 1 - _wad(info.liquidation_factor)),
                    ),
                )
            )
        if not positions and principal == 0:
            return None
        ours = is_liquidatable(principal, borrow_index, base_price, base_scale, collaterals)
        ratio = health_ratio(principal, borrow_index, base_price, base_scale, collaterals)
        agree = ours == venue_flag
        return MarginAccount(
            venue=self.family,
            deployment=self.deployment,
            account_id=wallet,
            wallet=wallet,
            margin_model=self.margin_model,
            positions=tuple(positions),
            as_of=block.as_of(),
            venue_health=to_decimal(ratio) if agree else None,
            quote=self.quote,
            raw={
                "exact_health": to_decimal(ratio),
                "exact_liquidity": liquidity(principal, borrow_index, base_price, base_scale, collaterals),
                "exact_is_liquidatable": ours,
                "venue_is_liquidatable": venue_flag,
                "liquidatable_mismatch": not agree,
                "principal": principal,
                "base_borrow_index": borrow_index,
                "base_token": market.base_token,
                # symbol -> token address of the base and every collateral (adapters.wallet_balances)
                "token_addresses": {
                    self.deployment_spec.base_symbol: market.base_token,
                    **{self._symbols.get(i.asset, i.asset): i.asset for i in market.infos},
                },
                **freshness_raw(held, block),
            },
        )
