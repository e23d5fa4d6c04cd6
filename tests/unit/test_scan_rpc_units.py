"""Pure parts of the EVM read layer: batch planning, aggregate3 codec, breaker, URL redaction."""

from __future__ import annotations

from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from adapters.addresses import ChecksumAddress
from adapters.base import Call
from adapters.evm import load_contract
from adapters.evm.breaker import CircuitBreaker
from adapters.evm.multicall import BatchLimits, decode_aggregate3, encode_aggregate3, plan_batches
from adapters.evm.redact import redact_url, scrub
from adapters.evm.rpc import RpcError, _retry_after, is_log_range_error

TARGET = ChecksumAddress("0xcA11bde05977b3631167028862bE2a173976CA11")


def test_selectors_match_the_known_values() -> None:
    mc = load_contract("multicall3")
    assert mc.function("aggregate3").selector.hex() == "82ad56cb"  # shared/protocols/lending.md §4
    assert mc.function("getEthBalance").selector.hex() == "4d2301cc"


@given(st.lists(st.integers(1, 5_000_000), max_size=60), st.integers(1, 20_000_000), st.integers(1, 50))
def test_plan_batches_covers_in_order_under_the_cap(gases: list[int], cap: int, max_calls: int) -> None:
    calls = [Call(target=TARGET, data=i.to_bytes(4, "big")) for i in range(len(gases))]
    weight = {c.data: g for c, g in zip(calls, gases, strict=True)}
    slices = plan_batches(calls, BatchLimits(max_gas=cap, max_calls=max_calls), lambda c: weight[c.data])
    flat = [i for a, b in slices for i in range(a, b)]
    assert flat == list(range(len(calls)))
    for a, b in slices:
        assert 1 <= b - a <= max_calls
        assert b - a == 1 or sum(gases[a:b]) <= cap  # only a lone over-weight call may exceed it


def test_plan_batches_respects_response_size() -> None:
    calls = [Call(target=TARGET, data=b"") for _ in range(10)]
    limits = BatchLimits(max_gas=10**9, gas_per_call=1, max_response_bytes=2 * (512 + 128) * 3, return_bytes_per_call=512)
    assert plan_batches(calls, limits) == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_aggregate3_round_trip_and_empty_data_is_failure() -> None:
    calls = [Call(target=TARGET, data=b"\x01\x02"), Call(target=TARGET, data=b"")]
    data = encode_aggregate3(calls)
    assert data[:4].hex() == "82ad56cb"
    answer = encode(["(bool,bytes)[]"], [[(True, b"\x00" * 32), (True, b"")]])
    results = decode_aggregate3(answer, 2)
    assert [r.success for r in results] == [True, False]
    reverted = decode_aggregate3(encode(["(bool,bytes)[]"], [[(False, b"\x08\xc3\x79\xa0"), (True, b"1")]]), 2)
    assert [r.success for r in reverted] == [False, True]


def test_aggregate3_decoding_rejects_garbage() -> None:
    import pytest

    with pytest.raises(ValueError, match="Multicall3 deployed"):
        decode_aggregate3(b"", 1)
    with pytest.raises(ValueError, match="cannot decode"):
        decode_aggregate3(b"\xff" * 40, 1)
    with pytest.raises(ValueError, match="1 results for 2 calls"):
        decode_aggregate3(encode(["(bool,bytes)[]"], [[(True, b"1")]]), 2)


def test_breaker_opens_cools_down_and_half_opens() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30, clock=lambda: now[0])
    breaker.record_failure("x")
    breaker.record_failure("x")
    assert breaker.available()
    breaker.record_failure("x")
    assert not breaker.available() and breaker.state == "open"
    now[0] = 30.0
    assert breaker.available() and breaker.state == "half-open"
    breaker.before_request()
    assert not breaker.available()  # one trial at a time
    breaker.record_failure("still down")
    assert breaker.state == "open" and breaker.seconds_until_available() == 30
    now[0] = 61.0
    breaker.before_request()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0


def test_breaker_rate_limit_opens_at_once_for_retry_after_capped() -> None:
    now = [100.0]
    breaker = CircuitBreaker(max_cooldown_s=300, clock=lambda: now[0])
    breaker.record_failure("429", rate_limited=True, retry_after_s=7)
    assert breaker.seconds_until_available() == 7
    breaker.record_failure("429", rate_limited=True, retry_after_s=10_000)
    assert breaker.seconds_until_available() == 300
    breaker.disable("wrong chain")
    assert not breaker.available() and breaker.seconds_until_available() is None


def test_retry_after_forms() -> None:
    assert _retry_after("12") == 12.0
    assert _retry_after(None) is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after("soon") is None


def test_redaction_hides_keys_and_keeps_the_host() -> None:
    key = "9aB3cD4eF5a6B7c8D9e0F1a2B3c4D5e6"
    assert redact_url(f"https://eth-mainnet.g.alchemy.com/v2/{key}") == "https://eth-mainnet.g.alchemy.com/v2/***"
    assert redact_url(f"https://mainnet.infura.io/v3/{key}") == "https://mainnet.infura.io/v3/***"
    assert redact_url(f"https://u:{key}@rpc.example.org:8545/?apikey={key}") == "https://rpc.example.org:8545?***"
    assert redact_url("https://api.avax.network/ext/bc/C/rpc") == "https://api.avax.network/ext/bc/C/rpc"
    message = f"ConnectError for url 'https://mainnet.infura.io/v3/{key}' (key {key})"
    assert key not in scrub(message, f"https://mainnet.infura.io/v3/{key}")


def test_log_range_errors_are_recognized() -> None:
    assert is_log_range_error(RpcError(-32005, "query returned more than 10000 results"))
    assert is_log_range_error(RpcError(-32600, "eth_getLogs block range too large, max 2000"))
    assert not is_log_range_error(RpcError(-32602, "invalid params"))
