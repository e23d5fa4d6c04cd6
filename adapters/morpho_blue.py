"""``MorphoBlueAdapter``: one margin account per (market, wallet) on one Morpho Blue singleton.

Markets of a wallet (lending.md §3.4): ``SupplyCollateral`` / ``Supply`` logs with ``onBehalf`` =
topic3 and ``Borrow`` logs with ``onBehalf`` = topic2, chunked ``eth_getLogs`` from the deployment's
``start_block``; results are cached per instance (wallet -> market ids, scanned up to a block), so a
later cycle only scans the new blocks. The configured ``markets`` are always read.

Per cycle, all (market, wallet) pairs batched: round A ``idToMarketParams`` (cached: immutable),
``market(id)``, ``position(id, wallet)``; round B ``oracle.price()``, ``irm.borrowRateView(params,
market)`` at the pinned block, and the tokens' ``symbol()`` / ``decimals()`` (cached).

Health (:mod:`risk.exact.morpho`): the market accrued exactly to the pinned block's timestamp
(``expectedMarketBalances``), ``maxBorrow = wMulDown(collateral*price // 1e36, lltv)`` over
``borrowed = toAssetsUp(borrowShares)``; ``< 1`` exactly when ``liquidate`` would be allowed at that
timestamp and price. Morpho publishes no health figure: ``venue_health`` is ``None``; ``raw`` holds
``exact_health`` (Decimal, Infinity without borrow), ``exact_is_healthy``, ``borrowed_assets``,
``max_borrow``, ``lltv``, ``liquidation_incentive_factor`` (wads/raw units), ``market_id``.

Positions are priced in the loan token (quote = the loan token's factor): collateral at
``price * 10**collateralDecimals / 10**loanDecimals / 1e36``, loan-token supply and debt at 1.

Oracle freshness (:mod:`adapters.oracle_freshness`): a market oracle's feeds are oracle-specific.
When the oracle answers MorphoChainlinkOracle(V2)'s ``BASE_FEED_1/2`` and ``QUOTE_FEED_1/2`` getters
(read once per oracle in round B, allowFailure, kept in ``DISCOVERY``: they are immutables), the
non-zero feeds' ``latestRoundData()`` is read in round B of later cycles (first cycle: one more
batch). Base feeds use the collateral token's heartbeat, quote feeds the loan token's. An oracle
without those getters, or with none set, gives an unknown freshness (``oracle_feeds`` says why).
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
    DISCOVERY,
    Batch,
    CallFailed,
    decode_result,
    encode_call,
    read_pinned,
    units,
)
from adapters.oracle_freshness import AGGREGATOR, FeedReading, chain_spec_of, freshness_raw, reading, unknown
from adapters.specs import MorphoBlueDeployment
from risk.exact import morpho as exact
from risk.exact.wadray import to_decimal
from risk.model import LendingModel, LendingParams, MarginAccount, Position, PositionKind

__all__ = ["BORROW_TOPIC", "SUPPLY_COLLATERAL_TOPIC", "SUPPLY_TOPIC", "MorphoBlueAdapter"]

MORPHO = load_contract("morpho_blue")
ORACLE = load_contract("morpho_oracle")
IRM = load_contract("morpho_irm")
TOKEN = load_contract("lending_token")
CHAINLINK_ORACLE = load_contract("morpho_chainlink_oracle_v2")
FEED_GETTERS = ("BASE_FEED_1", "BASE_FEED_2", "QUOTE_FEED_1", "QUOTE_FEED_2")

SUPPLY_COLLATERAL_TOPIC = "0xa3b9472a1399e17e123f3c2e6586c23e504184d504de59cdaa2b375e880c6184"
BORROW_TOPIC = "0x570954540bed6b1304a87dfe815a5eda4a648f7097a16240dcd85c9b5fd42a43"
SUPPLY_TOPIC = "0xedf8870433c83823eb071d3df1caa8d008f12f6440918c20d75a3602cda30fe0"

Results = Mapping[Hashable, CallResult]


@dataclass(frozen=True, slots=True)
class _Params:
    loan_token: ChecksumAddress
    collateral_token: ChecksumAddress
    oracle: ChecksumAddress
    irm: ChecksumAddress
    lltv: int


@dataclass(frozen=True, slots=True)
class _Shares:
    supply: int
    borrow: int
    collateral: int  # raw collateral units (no shares)


@dataclass(frozen=True, slots=True)
class _OracleFeeds:
    """A market oracle's Chainlink feeds (getter, feed), or why it has none we can read."""

    feeds: tuple[tuple[str, ChecksumAddress], ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    symbol: str
    decimals: int


def _topic_of(wallet: str) -> str:
    return "0x" + "0" * 24 + wallet[2:].lower()


class MorphoBlueAdapter(VenueAdapter):
    family: ClassVar[str] = "morpho_blue"
    kind: ClassVar[Literal["evm", "http"]] = "evm"
    margin_model: ClassVar[LendingModel] = LendingModel(liquidation_close_factor=Decimal(1))
    capabilities: ClassVar[frozenset[str]] = frozenset({"exact_health"})

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        if not isinstance(spec, MorphoBlueDeployment):
            raise TypeError(f"morpho_blue:{instance} needs a MorphoBlueDeployment, got {type(spec).__name__}")
        super().__init__(instance=instance, spec=spec, context=context)
        self.deployment_spec = spec
        self._params: dict[str, _Params] = {}
        self._tokens: dict[str, _Token] = {}
        self._wallet_markets: dict[str, set[str]] = {}
        self._scanned_to: dict[str, int] = {}

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        async def discover_and_read(
            reader: ChainReader, pinned: BlockRef, unique: list[ChecksumAddress]
        ) -> list[MarginAccount]:
            await self._discover(reader, pinned, unique)
            return await self._read(reader, pinned, unique)

        return await read_pinned(self, self.deployment_spec.chain, wallets, block, discover_and_read)

    async def _discover(self, reader: ChainReader, block: BlockRef, wallets: list[ChecksumAddress]) -> None:
        """Scan the logs each wallet has not been scanned for yet (grouped by where they stopped)."""
        morpho = ChecksumAddress(self.deployment_spec.morpho)
        groups: dict[int, list[ChecksumAddress]] = {}
        for w in wallets:
            start = self._scanned_to.get(w, self.deployment_spec.start_block - 1) + 1
            if start <= block.number:
                groups.setdefault(start, []).append(w)
        for start, group in groups.items():
            topics = [_topic_of(w) for w in group]
            found: list[Mapping[str, object]] = []
            found += await reader.get_logs(
                address=morpho,
                topics=[[SUPPLY_COLLATERAL_TOPIC, SUPPLY_TOPIC], None, None, topics],
                from_block=start,
                to_block=block.number,
            )
            found += await reader.get_logs(
                address=morpho, topics=[BORROW_TOPIC, None, topics], from_block=start, to_block=block.number
            )
            by_topic = {_topic_of(w): w for w in group}
            for log in found:
                log_topics = [str(t).lower() for t in _as_list(log.get("topics"))]
                if len(log_topics) < 3:
                    continue
                on_behalf = log_topics[2] if log_topics[0] == BORROW_TOPIC else log_topics[-1]
                wallet = by_topic.get(on_behalf)
                if wallet is not None:
                    self._wallet_markets.setdefault(wallet, set()).add(log_topics[1])
            for w in group:
                self._scanned_to[w] = block.number

    async def _read(
        self, reader: ChainReader, block: BlockRef, wallets: list[ChecksumAddress]
    ) -> list[MarginAccount]:
        morpho = ChecksumAddress(self.deployment_spec.morpho)
        configured = {m.lower() for m in self.deployment_spec.markets}
        pairs = [(w, m) for w in wallets for m in sorted(configured | self._wallet_markets.get(w, set()))]
        ids = sorted({m for _, m in pairs})
        a = Batch()
        for m in ids:
            key = bytes.fromhex(m[2:])
            if m not in self._params:
                a.add(("params", m), encode_call(MORPHO.function("idToMarketParams"), morpho, key))
            a.add(("market", m), encode_call(MORPHO.function("market"), morpho, key))
        for w, m in pairs:
            a.add(
                ("position", w, m), encode_call(MORPHO.function("position"), morpho, bytes.fromhex(m[2:]), w)
            )
        ra = await a.run(reader, block)
        markets: dict[str, exact.MorphoMarket] = {}
        bad_markets: dict[str, str] = {}
        for m in ids:
            try:
                if m not in self._params:
                    raw = decode_result(MORPHO.function("idToMarketParams"), ra[("params", m)], f"market {m}")
                    if int(raw[4]) == 0:
                        raise CallFailed(f"market {m} does not exist on this Morpho")
                    self._params[m] = _Params(
                        address(raw[0]), address(raw[1]), address(raw[2]), address(raw[3]), int(raw[4])
                    )
                t = decode_result(MORPHO.function("market"), ra[("market", m)], f"market {m}")
                markets[m] = exact.MorphoMarket(*(int(x) for x in t))
            except CallFailed as exc:
                bad_markets[m] = str(exc)

        b = Batch()
        for m, market in markets.items():
            mp = self._params[m]
            b.add(("price", m), encode_call(ORACLE.function("price"), mp.oracle))
            if int(mp.irm, 16) != 0:
                b.add(
                    ("rate", m),
                    encode_call(
                        IRM.function("borrowRateView"), mp.irm, _params_tuple(mp), _market_tuple(market)
                    ),
                )
            for token in (mp.loan_token, mp.collateral_token):
                if token not in self._tokens:
                    b.add(("symbol", token), encode_call(TOKEN.function("symbol"), token))
                    b.add(("decimals", token), encode_call(TOKEN.function("decimals"), token))
        oracles = {self._params[m].oracle for m in markets}
        known = {o: self._oracle_feeds(reader, o) for o in oracles}
        for o, feeds in known.items():
            if feeds is None:
                for name in FEED_GETTERS:
                    b.add(("getter", o, name), encode_call(CHAINLINK_ORACLE.function(name), o))
            else:
                for _, feed in feeds.feeds:
                    b.add(("round", feed), encode_call(AGGREGATOR.function("latestRoundData"), feed))
        rb: Results = await b.run(reader, block)
        rb = await self._discover_feeds(reader, block, rb, [o for o, f in known.items() if f is None])
        for dkey in [k for k in rb if isinstance(k, tuple) and k[0] == "decimals"]:
            addr = str(dkey[1])
            try:
                (dec,) = decode_result(TOKEN.function("decimals"), rb[dkey], f"token {addr}")
            except CallFailed:
                continue  # positions in this token become UNAVAILABLE below
            self._tokens[addr] = _Token(decode_symbol(rb[("symbol", addr)], addr), int(dec))

        now = int(block.timestamp.timestamp())
        out: list[MarginAccount] = []
        for w, m in pairs:
            try:
                if m in bad_markets:
                    raise CallFailed(bad_markets[m])
                pos = decode_result(MORPHO.function("position"), ra[("position", w, m)], f"position in {m}")
                shares = _Shares(int(pos[0]), int(pos[1]), int(pos[2]))
                if shares.supply == shares.borrow == shares.collateral == 0:
                    continue
                account = self._account(w, m, shares, markets[m], rb, now=now, block=block, reader=reader)
            except (CallFailed, ValueError) as exc:
                out.append(
                    MarginAccount.unavailable(
                        venue=self.family,
                        deployment=self.deployment,
                        account_id=f"{w}/{m}",
                        wallet=w,
                        margin_model=self.margin_model,
                        as_of=block.as_of(),
                        reason=f"{self.deployment}: {exc}",
                    )
                )
                continue
            out.append(account)
        return out

    def _feeds_key(self, reader: ChainReader, oracle: str) -> tuple[object, ...]:
        urls = getattr(getattr(reader, "spec", None), "rpc_urls", ())
        return ("morpho_blue", "oracle_feeds", reader.chain_id, tuple(urls), oracle.lower())

    def _oracle_feeds(self, reader: ChainReader, oracle: str) -> _OracleFeeds | None:
        cached: _OracleFeeds | None = DISCOVERY.get(self._feeds_key(reader, oracle))
        return cached

    async def _discover_feeds(
        self, reader: ChainReader, block: BlockRef, rb: Results, oracles: list[ChecksumAddress]
    ) -> Results:
        """Decode the feed getters of ``oracles`` (new to the process), cache them, and read the new
        feeds' ``latestRoundData`` in one more batch; ``rb`` with those answers added."""
        extra = Batch()
        for o in oracles:
            feeds: list[tuple[str, ChecksumAddress]] = []
            answered = 0
            for name in FEED_GETTERS:
                try:
                    (value,) = decode_result(CHAINLINK_ORACLE.function(name), rb[("getter", o, name)], name)
                except CallFailed:
                    continue
                answered += 1
                if int(value, 16) != 0:
                    feeds.append((name, address(value)))
            reason = None
            if not answered:
                reason = f"oracle {o} has no BASE_FEED/QUOTE_FEED getters (not a Chainlink oracle)"
            elif not feeds:
                reason = f"oracle {o} has no Chainlink feed set (vault-only or constant price)"
            DISCOVERY.put(self._feeds_key(reader, o), _OracleFeeds(tuple(feeds), reason))
            for _, feed in feeds:
                extra.add(("round", feed), encode_call(AGGREGATOR.function("latestRoundData"), feed))
        if not len(extra):
            return rb
        return {**rb, **(await extra.run(reader, block))}

    def _freshness(
        self, reader: ChainReader, p: _Params, loan: _Token, coll: _Token, rb: Results
    ) -> list[FeedReading]:
        spec = chain_spec_of(reader)
        feeds = self._oracle_feeds(reader, p.oracle)
        if feeds is None or feeds.reason is not None:
            reason = (feeds.reason if feeds is not None else None) or f"oracle {p.oracle}: feeds not read"
            return [unknown(spec, label=f"oracle {p.oracle}", symbol=None, token=None, reason=reason)]
        out: list[FeedReading] = []
        for name, feed in feeds.feeds:
            token, symbol = (
                (p.collateral_token, coll.symbol) if name.startswith("BASE") else (p.loan_token, loan.symbol)
            )
            out.append(
                reading(
                    spec, label=f"{symbol} {name}", symbol=symbol, token=token, feed=feed,
                    result=rb.get(("round", feed)),
                )
            )
        return out

    def _account(
        self,
        wallet: ChecksumAddress,
        market_id: str,
        shares: _Shares,
        market: exact.MorphoMarket,
        rb: Results,
        *,
        now: int,
        block: BlockRef,
        reader: ChainReader,
    ) -> MarginAccount:
        supply_shares, borrow_shares, collateral = shares.supply, shares.borrow, shares.collateral
        p = self._params[market_id]
        loan, coll = self._tokens.get(p.loan_token), self._tokens.get(p.collateral_token)
        if loan is None or coll is None:
            raise CallFailed(f"market {market_id}: a token has no readable decimals()")
        (price,) = decode_result(ORACLE.function("price"), rb[("price", market_id)], f"oracle of {market_id}")
        rate = 0
        if ("rate", market_id) in rb:
            (rate,) = decode_result(
                IRM.function("borrowRateView"), rb[("rate", market_id)], f"IRM of {market_id}"
            )
        accrued = exact.expected_market(market, int(rate), now, has_irm=int(p.irm, 16) != 0)
        health = exact.health(borrow_shares, collateral, int(price), p.lltv, accrued)
        assets = self.context.assets
        loan_info, coll_info = assets.resolve(loan.symbol), assets.resolve(coll.symbol)
        coll_price = Decimal(int(price)).scaleb(coll.decimals - loan.decimals - 36)
        lif = exact.liquidation_incentive_factor(p.lltv)
        lltv = units(p.lltv, 18)
        positions: list[Position] = []
        if collateral:
            positions.append(
                Position(
                    token=coll.symbol,
                    factor=coll_info.factor,
                    kind=PositionKind.COLLATERAL,
                    quantity=units(collateral, coll.decimals),
                    price=coll_price,
                    basis_factor=coll_info.basis,
                    lending=LendingParams(
                        ltv=lltv, liquidation_threshold=lltv, liquidation_bonus=units(lif, 18) - 1
                    ),
                )
            )
        supplied = exact.supplied_assets(supply_shares, accrued)
        if supplied:
            positions.append(
                Position(
                    token=loan.symbol,
                    factor=loan_info.factor,
                    kind=PositionKind.SUPPLY,
                    quantity=units(supplied, loan.decimals),
                    price=Decimal(1),
                    basis_factor=loan_info.basis,
                )
            )
        borrowed = exact.borrowed_assets(borrow_shares, accrued) if borrow_shares else 0
        if borrowed:
            positions.append(
                Position(
                    token=loan.symbol,
                    factor=loan_info.factor,
                    kind=PositionKind.DEBT,
                    quantity=-units(borrowed, loan.decimals),
                    price=Decimal(1),
                    basis_factor=loan_info.basis,
                )
            )
        return MarginAccount(
            venue=self.family,
            deployment=self.deployment,
            account_id=f"{wallet}/{market_id}",
            wallet=wallet,
            margin_model=self.margin_model,
            positions=tuple(positions),
            as_of=block.as_of(),
            venue_health=None,
            quote=loan_info.factor,
            raw={
                "market_id": market_id,
                "exact_health": to_decimal(health),
                "exact_is_healthy": exact.is_healthy(borrow_shares, collateral, int(price), p.lltv, accrued),
                "borrowed_assets": borrowed,
                "max_borrow": exact.max_borrow(collateral, int(price), p.lltv),
                "lltv": p.lltv,
                "liquidation_incentive_factor": lif,
                "oracle_price": int(price),
                "borrow_rate": int(rate),
                # symbol -> token address of the loan and collateral (adapters.wallet_balances)
                "token_addresses": {loan.symbol: p.loan_token, coll.symbol: p.collateral_token},
                **freshness_raw(self._freshness(reader, p, loan, coll, rb), block),
            },
        )


def _params_tuple(p: _Params) -> tuple[str, str, str, str, int]:
    return (p.loan_token, p.collateral_token, p.oracle, p.irm, p.lltv)


def _market_tuple(m: exact.MorphoMarket) -> tuple[int, int, int, int, int, int]:
    return (
        m.total_supply_assets,
        m.total_supply_shares,
        m.total_borrow_assets,
        m.total_borrow_shares,
        m.last_update,
        m.fee,
    )


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []
