"""Oracle freshness of the on-chain lending adapters: how old each price feed behind an account is at
the pinned block, against its heartbeat, as the keys ``aggregator.alerts.decide`` reads for the
``oracle_stale`` metric.

Read: a Chainlink-style feed's ``latestRoundData()`` (``adapters/abi/chainlink_aggregator.json``)
-> ``updatedAt`` (seconds since the epoch), in the adapter's own pinned-block batch with
``allowFailure``. A feed that reverts or has no such function, an undecodable answer, or
``updatedAt == 0`` (Chainlink: round not complete) give an UNKNOWN freshness for that feed, never a
failure of the account.

Per feed: ``age = block.timestamp - updatedAt`` (the pinned block's timestamp, ``BlockRef.timestamp``)
and ``stale = age - heartbeat`` (heartbeat: ``ChainSpec.oracle_heartbeat_for(symbol, token)``).
Per account (:func:`freshness_raw`), over the feeds whose freshness is known:

- ``oracle_stale_seconds`` = ``max(0, max(stale))`` -- what the alert rule compares;
- ``oracle_age_seconds`` = ``max(age)``;
- ``oracle_updated_at`` / ``oracle_heartbeat_seconds`` / ``oracle_stalest``: ``updatedAt``,
  heartbeat and label of the feed with the largest ``stale``;
- ``oracle_feeds``: the per-feed breakdown (label -> token, feed, updated_at, age_seconds,
  heartbeat_seconds, stale_seconds, or reason when unknown), always present when the account has feeds.

No known feed: only ``oracle_feeds`` (the alert rule then observes nothing for the account).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adapters.base import BlockRef, CallResult, ChainReader
from adapters.evm.abi import load_contract
from adapters.lending_common import CallFailed, decode_result
from adapters.specs import ChainSpec

__all__ = [
    "AGGREGATOR",
    "FeedReading",
    "chain_spec_of",
    "freshness_raw",
    "reading",
    "unknown",
    "updated_at",
]

AGGREGATOR = load_contract("chainlink_aggregator")
_DEFAULTS = ChainSpec(chain_id=1, rpc_urls=("http://127.0.0.1",))


@dataclass(frozen=True, slots=True)
class FeedReading:
    """One price feed behind a position: ``updated_at`` None means its freshness is unknown."""

    label: str  # the token symbol, or "<symbol> <getter>" when an oracle has several feeds
    token: str | None  # the token address the feed prices
    feed: str | None  # the feed address (None: none could be found)
    heartbeat: int
    updated_at: int | None
    reason: str | None = None  # why the freshness is unknown

    def age(self, block: BlockRef) -> int | None:
        return None if self.updated_at is None else int(block.timestamp.timestamp()) - self.updated_at

    def stale(self, block: BlockRef) -> int | None:
        age = self.age(block)
        return None if age is None else age - self.heartbeat


def chain_spec_of(reader: ChainReader) -> ChainSpec:
    """The reader's ``ChainSpec`` (``EvmChainReader.spec``), else one with the default heartbeats."""
    spec = getattr(reader, "spec", None)
    return spec if isinstance(spec, ChainSpec) else _DEFAULTS


def updated_at(result: CallResult | None, what: str) -> tuple[int | None, str | None]:
    """``latestRoundData().updatedAt`` from one call result: (seconds, None) or (None, reason)."""
    if result is None:
        return None, f"{what}: latestRoundData not read"
    try:
        values = decode_result(AGGREGATOR.function("latestRoundData"), result, what)
    except CallFailed as exc:
        return None, str(exc)
    stamp = int(values[3])
    if stamp == 0:
        return None, f"{what}: latestRoundData updatedAt is 0 (round not complete)"
    return stamp, None


def reading(
    spec: ChainSpec, *, label: str, symbol: str | None, token: str | None, feed: str,
    result: CallResult | None,
) -> FeedReading:
    """A :class:`FeedReading` of ``feed`` from its ``latestRoundData`` result."""
    stamp, reason = updated_at(result, f"price feed {feed}")
    return FeedReading(label, token, feed, spec.oracle_heartbeat_for(symbol, token), stamp, reason)


def unknown(
    spec: ChainSpec, *, label: str, symbol: str | None, token: str | None, reason: str
) -> FeedReading:
    """A feed whose freshness cannot be read (no source, not a Chainlink-style feed)."""
    return FeedReading(label, token, None, spec.oracle_heartbeat_for(symbol, token), None, reason)


def freshness_raw(readings: Iterable[FeedReading], block: BlockRef) -> dict[str, object]:
    """The ``MarginAccount.raw`` entries of an account priced by ``readings`` (module docstring)."""
    feeds: dict[str, dict[str, object]] = {}
    stalest: FeedReading | None = None
    max_age: int | None = None
    for r in readings:
        age, stale = r.age(block), r.stale(block)
        entry: dict[str, object] = {"token": r.token, "feed": r.feed, "heartbeat_seconds": r.heartbeat}
        if age is None or stale is None:
            entry["reason"] = r.reason or "unknown"
        else:
            entry |= {"updated_at": r.updated_at, "age_seconds": age, "stale_seconds": max(0, stale)}
            max_age = age if max_age is None else max(max_age, age)
            best = stalest.stale(block) if stalest is not None else None
            if best is None or stale > best:
                stalest = r
        feeds[r.label] = entry
    if not feeds:
        return {}
    out: dict[str, object] = {"oracle_feeds": feeds}
    if stalest is not None and max_age is not None:
        worst = stalest.stale(block)
        assert worst is not None
        out |= {
            "oracle_stale_seconds": max(0, worst),
            "oracle_age_seconds": max_age,
            "oracle_updated_at": stalest.updated_at,
            "oracle_heartbeat_seconds": stalest.heartbeat,
            "oracle_stalest": stalest.label,
        }
    return out
