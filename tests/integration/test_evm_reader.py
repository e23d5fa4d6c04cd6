"""``EvmChainReader`` against a real anvil (with the real Multicall3), and through a faulty proxy.

Cross-checks: every batched result is compared with the node's own answer to a direct web3 call,
and the JSON-RPC batch path with the Multicall3 path.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from eth_abi.abi import decode

from adapters.addresses import ChecksumAddress, parse_address
from adapters.base import Call
from adapters.errors import VenueDataError, VenueUnavailable
from adapters.evm import EvmChainReader, ReaderOptions, RpcOptions, load_contract
from adapters.specs import ChainSpec
from aggregator.devnet.anvil import start_anvil
from tests.fixtures_devnet import AnvilChain
from tests.support.rpc_proxy import RpcProxy

pytestmark = pytest.mark.devnet

MC = load_contract("multicall3")
MC_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
NO_CODE = parse_address("0x" + "12" * 20)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        yield client


def reader_for(urls: list[str], http: httpx.AsyncClient, *, multicall: bool = True, max_call_gas: int = 30_000_000,
               **options: object) -> EvmChainReader:
    spec = ChainSpec(
        chain_id=31337, rpc_urls=tuple(urls), multicall3=None if not multicall else MC_ADDRESS,
        max_call_gas=max_call_gas,
    )
    rpc = options.pop("rpc", RpcOptions(timeout_s=2.0, rounds=2, backoff_base_s=0.01, backoff_cap_s=0.05))
    return EvmChainReader(chain="devnet", spec=spec, http=http, options=ReaderOptions(rpc=rpc, **options))  # type: ignore[arg-type]


def balance_calls(wallets: list[ChecksumAddress]) -> list[Call]:
    return [MC.function("getEthBalance").call(ChecksumAddress(MC_ADDRESS), w) for w in wallets]


def many_wallets(n: int) -> list[ChecksumAddress]:
    return [parse_address(f"0x{i + 1:040x}") for i in range(n)]


async def test_many_calls_batched_and_decoded(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    reader = reader_for([anvil.rpc_url], http, gas_per_call=20_000)
    block = await reader.pin()
    assert block.number == anvil.w3.eth.block_number
    assert block.hash == anvil.w3.eth.get_block(block.number)["hash"].to_0x_hex()
    wallets = [*anvil.accounts, *many_wallets(300)]
    before = reader.requests_sent
    results = await reader.call_many(balance_calls(wallets), block)
    assert reader.requests_sent - before == 1  # 310 calls, one eth_call
    assert all(r.success for r in results)
    got = [decode(["uint256"], r.data)[0] for r in results]
    assert got == [anvil.w3.eth.get_balance(w, block.number) for w in wallets]
    assert got[0] > 0 and got[-1] == 0


async def test_no_code_and_revert_fail_without_failing_the_batch(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    reader = reader_for([anvil.rpc_url], http)
    block = await reader.pin()
    good = MC.function("getChainId").call(ChecksumAddress(MC_ADDRESS))
    no_code = Call(target=NO_CODE, data=good.data)
    reverting = Call(target=ChecksumAddress(MC_ADDRESS), data=b"\xde\xad\xbe\xef")  # no such selector
    results = await reader.call_many([good, no_code, reverting, good], block)
    assert [r.success for r in results] == [True, False, False, True]
    assert decode(["uint256"], results[3].data)[0] == 31337
    assert results[1].data == b""


async def test_gas_cap_splits_into_several_requests_with_same_results(
    anvil: AnvilChain, http: httpx.AsyncClient
) -> None:
    wallets = [*anvil.accounts, *many_wallets(40)]
    calls = balance_calls(wallets)
    big = reader_for([anvil.rpc_url], http)
    block = await big.pin()
    expected = await big.call_many(calls, block)

    small = reader_for([anvil.rpc_url], http, max_call_gas=1_000_000, gas_per_call=200_000)
    await small.pin()
    before = small.requests_sent
    got = await small.call_many(calls, block)
    assert small.requests_sent - before == 10  # 50 calls, 5 per 1M-gas batch
    assert got == expected


async def test_out_of_gas_batch_is_halved(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    # The planner believes 1 gas per call; the node's cap makes the multicall fail; the reader halves.
    calls = balance_calls(many_wallets(64))
    reader = reader_for([anvil.rpc_url], http, max_call_gas=60_000, gas_per_call=1)
    block = await reader.pin()
    results = await reader.call_many(calls, block)
    assert len(results) == 64
    assert all(r.success and decode(["uint256"], r.data)[0] == 0 for r in results)
    assert reader.requests_sent > 3


async def test_reads_stay_pinned_after_new_blocks(fresh_anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    w3 = fresh_anvil.w3
    sender, receiver = fresh_anvil.accounts[1], fresh_anvil.accounts[2]
    reader = reader_for([fresh_anvil.rpc_url], http)
    block = await reader.pin()
    old_balance = w3.eth.get_balance(receiver)
    tx = w3.eth.send_transaction({"from": sender, "to": receiver, "value": 10**18})
    w3.eth.wait_for_transaction_receipt(tx)
    assert w3.eth.get_balance(receiver) == old_balance + 10**18
    calls = [*balance_calls([receiver]), MC.function("getBlockNumber").call(ChecksumAddress(MC_ADDRESS))]
    results = await reader.call_many(calls, block)
    assert decode(["uint256"], results[0].data)[0] == old_balance
    assert decode(["uint256"], results[1].data)[0] == block.number
    fresh = await reader.pin()
    assert fresh.number > block.number
    later = await reader.call_many(calls, fresh)
    assert decode(["uint256"], later[0].data)[0] == old_balance + 10**18


async def test_json_rpc_batch_path_equals_multicall_path(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    good = MC.function("getChainId").call(ChecksumAddress(MC_ADDRESS))
    calls = [
        *balance_calls([*anvil.accounts, *many_wallets(20)]),
        Call(target=NO_CODE, data=good.data),
        Call(target=ChecksumAddress(MC_ADDRESS), data=b"\xde\xad\xbe\xef"),
        good,
    ]
    multicall = reader_for([anvil.rpc_url], http)
    block = await multicall.pin()
    via_multicall = await multicall.call_many(calls, block)
    batch = reader_for([anvil.rpc_url], http, multicall=False, max_batch_requests=7)
    assert batch.multicall3 is None
    await batch.pin()
    before = batch.requests_sent
    via_batch = await batch.call_many(calls, block)
    assert batch.requests_sent - before == 5  # 33 calls in batches of 7
    assert [r.success for r in via_batch] == [r.success for r in via_multicall]
    assert [r.data for r in via_batch if r.success] == [r.data for r in via_multicall if r.success]
    assert via_batch[-3].success is False and via_batch[-2].success is False


async def test_missing_multicall3_is_a_clear_data_error(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    spec = ChainSpec(chain_id=31337, rpc_urls=(anvil.rpc_url,), multicall3=NO_CODE)
    reader = EvmChainReader(chain="devnet", spec=spec, http=http)
    block = await reader.pin()
    with pytest.raises(VenueDataError, match='multicall3 = ""'):
        await reader.call_many(balance_calls(anvil.accounts[:2]), block)


async def test_get_logs_chunks_and_matches_the_node(fresh_anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    w3 = fresh_anvil.w3
    # A contract whose runtime emits LOG1(topic = caller-supplied word) for each call: PUSH32 calldata
    # word, PUSH1 0, PUSH1 0, LOG1, STOP  ->  35 6000 6000 ... simpler: calldataload(0) as topic.
    runtime = "600035" + "6000" + "6000" + "a1" + "00"  # PUSH1 0 CALLDATALOAD PUSH1 0 PUSH1 0 LOG1 STOP
    emitter = parse_address("0x" + "e1" * 20)
    w3.provider.make_request("anvil_setCode", [emitter, "0x" + runtime])  # type: ignore[arg-type]
    start = w3.eth.block_number + 1
    for i in range(6):
        tx = w3.eth.send_transaction({"from": fresh_anvil.accounts[0], "to": emitter,
                                      "data": "0x" + f"{i + 1:064x}", "gas": 100_000})
        w3.eth.wait_for_transaction_receipt(tx)
    end = w3.eth.block_number
    reader = reader_for([fresh_anvil.rpc_url], http, log_chunk_blocks=2)
    await reader.pin()
    before = reader.requests_sent
    logs = await reader.get_logs(address=emitter, topics=[None], from_block=start, to_block=end)
    assert reader.requests_sent - before == 3
    assert [int(str(log["topics"][0]), 16) for log in logs] == [1, 2, 3, 4, 5, 6]  # type: ignore[index]
    only_three = await reader.get_logs(address=emitter, topics=["0x" + f"{3:064x}"], from_block=start, to_block=end)
    assert len(only_three) == 1


# ---------------------------------------------------------------------------------------------
# faults through the proxy


@pytest.mark.parametrize("mode", ["drop", "http429", "http500", "rpc32005", "garbage", "wrong_id", "hang"])
async def test_one_dead_url_fails_over_to_the_next(anvil: AnvilChain, http: httpx.AsyncClient, mode: str) -> None:
    async with RpcProxy(anvil.rpc_url, mode) as bad, RpcProxy(anvil.rpc_url) as good:  # type: ignore[arg-type]
        reader = reader_for([bad.url, good.url], http, rpc=RpcOptions(timeout_s=0.5, rounds=2, backoff_base_s=0.01))
        started = time.monotonic()
        block = await reader.pin()
        results = await reader.call_many(balance_calls(anvil.accounts[:3]), block)
        assert [decode(["uint256"], r.data)[0] for r in results] == [
            anvil.w3.eth.get_balance(w, block.number) for w in anvil.accounts[:3]
        ]
        assert time.monotonic() - started < 3.0
        assert bad.requests >= 1 and good.requests >= 2
        # the working endpoint is now preferred: the dead one is not asked again
        asked = bad.requests
        await reader.call_many(balance_calls(anvil.accounts[:1]), block)
        assert bad.requests == asked


async def test_rate_limit_opens_the_breaker_honoring_retry_after(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    async with RpcProxy(anvil.rpc_url, "http429", retry_after=60) as limited, RpcProxy(anvil.rpc_url) as good:
        reader = reader_for([limited.url, good.url], http)
        await reader.pin()
        breaker = reader.pool.endpoints[0].breaker
        assert breaker.state == "open"
        assert 55 < (breaker.seconds_until_available() or 0) <= 60
        assert "429" in (breaker.last_reason or "")


async def test_delay_within_timeout_is_served(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    async with RpcProxy(anvil.rpc_url, "delay", delay_s=0.2) as slow:
        reader = reader_for([slow.url], http, rpc=RpcOptions(timeout_s=2.0))
        block = await reader.pin()
        assert block.number == anvil.w3.eth.block_number


async def test_all_urls_dead_is_unavailable_with_reasons(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    async with RpcProxy(anvil.rpc_url, "drop") as a, RpcProxy(anvil.rpc_url, "http500") as b:
        reader = reader_for([a.url, b.url], http)
        with pytest.raises(VenueUnavailable) as info:
            await reader.pin()
        message = str(info.value)
        assert "all 2 RPC endpoints failed" in message
        assert "HTTP 500" in message and f"127.0.0.1:{a.port}" in message
        assert info.value.chain == "devnet"


async def test_deadline_bounds_a_blackholed_chain(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    async with RpcProxy(anvil.rpc_url, "hang") as a, RpcProxy(anvil.rpc_url, "hang") as b:
        reader = reader_for([a.url, b.url], http, cycle_deadline_s=1.0,
                            rpc=RpcOptions(timeout_s=5.0, rounds=5, backoff_base_s=0.01))
        started = time.monotonic()
        with pytest.raises(VenueUnavailable, match=r"deadline|failed"):
            await reader.pin()
        assert time.monotonic() - started < 2.0


async def test_wrong_chain_endpoint_is_disabled(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    spec = ChainSpec(chain_id=1, rpc_urls=(anvil.rpc_url,))
    reader = EvmChainReader(chain="ethereum", spec=spec, http=http)
    with pytest.raises(VenueUnavailable, match="chain id 31337, expected 1"):
        await reader.pin()


async def test_secret_url_parts_never_reach_messages(http: httpx.AsyncClient) -> None:
    secret = "AbCdEf0123456789SECRET"
    url = f"http://user:pw{secret}@127.0.0.1:9/v2/{secret}?apikey={secret}"  # port 9: nothing listens
    spec = ChainSpec(chain_id=1, rpc_urls=(url,))
    reader = EvmChainReader(chain="ethereum", spec=spec, http=http,
                            options=ReaderOptions(rpc=RpcOptions(timeout_s=0.5, rounds=1)))
    with pytest.raises(VenueUnavailable) as info:
        await reader.pin()
    assert secret not in str(info.value) and "pw" not in str(info.value)
    assert "127.0.0.1:9/v2/***?***" in str(info.value)


# ---------------------------------------------------------------------------------------------
# hedged requests, lagging nodes, discovery in the pin's request


async def test_slow_endpoint_is_hedged_to_the_next(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    """The first endpoint answers after 3 s: after ``hedge_after_s`` the same read also goes to the
    second one, whose answer (equal to the node's own) wins long before the slow one would."""
    async with RpcProxy(anvil.rpc_url, "delay", delay_s=3.0) as slow, RpcProxy(anvil.rpc_url) as fast:
        rpc = RpcOptions(timeout_s=5.0, rounds=1, hedge_after_s=0.3, max_lag_blocks=10**9)
        reader = reader_for([fast.url], http, rpc=rpc)
        block = await reader.pin()
        hedged = reader_for([slow.url, fast.url], http, rpc=rpc)
        hedged.pool.deadline = None
        started = time.monotonic()
        results = await hedged.call_many(balance_calls(anvil.accounts[:3]), block)
        elapsed = time.monotonic() - started
        assert [decode(["uint256"], r.data)[0] for r in results] == [
            anvil.w3.eth.get_balance(w, block.number) for w in anvil.accounts[:3]
        ]
        assert 0.3 <= elapsed < 2.0, elapsed
        assert hedged.pool.hedges_sent == 1 and slow.requests == 1 and fast.requests >= 1
        assert hedged.pool.endpoints[0].breaker.state == "closed"  # slow is not a fault
        # the fast endpoint is preferred from now on: no more hedging needed
        asked = slow.requests
        await hedged.call_many(balance_calls(anvil.accounts[:1]), block)
        assert slow.requests == asked and hedged.pool.hedges_sent == 1


async def test_without_hedging_the_slow_endpoint_is_waited_for(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    async with RpcProxy(anvil.rpc_url, "delay", delay_s=0.8) as slow, RpcProxy(anvil.rpc_url) as fast:
        rpc = RpcOptions(timeout_s=5.0, rounds=1, hedge_after_s=None)
        reader = reader_for([slow.url, fast.url], http, rpc=rpc)
        started = time.monotonic()
        block = await reader.pin()  # the head survey asks both at once
        await reader.call_many(balance_calls(anvil.accounts[:1]), block)
        assert time.monotonic() - started >= 1.6  # survey and call both waited for the slow one
        assert reader.pool.hedges_sent == 0 and fast.requests == 1


@pytest.fixture
def two_anvils() -> Iterator[tuple[str, str]]:
    """Two independent anvil nodes (same chain id): the first is mined 10 blocks ahead."""
    ahead, behind = start_anvil(), start_anvil()
    try:
        httpx.post(ahead.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0xa"]})
        yield ahead.rpc_url, behind.rpc_url
    finally:
        ahead.stop()
        behind.stop()


async def _head(url: str, http: httpx.AsyncClient) -> int:
    answer = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
    return int(answer.json()["result"], 16)


IDENTITY = parse_address("0x0000000000000000000000000000000000000004")  # the identity precompile


async def test_lagging_endpoint_is_skipped_for_the_cycle(
    two_anvils: tuple[str, str], http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    ahead, behind = two_anvils
    async with RpcProxy(behind) as lagging, RpcProxy(ahead) as best:
        reader = reader_for([lagging.url, best.url], http, multicall=False, rpc=RpcOptions(max_lag_blocks=3))
        with caplog.at_level("WARNING"):
            block = await reader.pin()
        assert block.number == await _head(ahead, http) == 10
        assert reader.lags() == {reader.pool.endpoints[0].label: 10, reader.pool.endpoints[1].label: 0}
        assert "10 blocks behind" in caplog.text
        asked = lagging.requests
        results = await reader.call_many([Call(target=IDENTITY, data=b"\x12\x34")] * 3, block)
        assert [r.data for r in results] == [b"\x12\x34"] * 3
        assert lagging.requests == asked  # skipped for the cycle, although it comes first


async def test_pinned_block_missing_on_an_endpoint_fails_over(
    two_anvils: tuple[str, str], http: httpx.AsyncClient
) -> None:
    """Within the allowed lag the behind endpoint stays in use, but a read of a block it does not have
    yet (anvil: "BlockOutOfRangeError") is not an error: it goes to the next endpoint."""
    ahead, behind = two_anvils
    async with RpcProxy(behind) as lagging, RpcProxy(ahead) as best:
        reader = reader_for([lagging.url, best.url], http, multicall=False, rpc=RpcOptions(max_lag_blocks=100))
        block = await reader.pin()
        assert block.number == 10 and reader.pool.lagging == {}
        reader.pool.heads.clear()  # as if the survey had not told us (e.g. a node that fell behind since)
        before = lagging.requests
        results = await reader.call_many([Call(target=IDENTITY, data=b"\xab")], block)
        assert results[0].data == b"\xab" and lagging.requests == before + 1
        assert "lags the pinned block" in (reader.pool.endpoints[0].breaker.last_reason or "")
        # knowing the heads, the behind endpoint is asked last for a block it does not have, even preferred
        await reader.pin()
        reader.pool._preferred = 0
        asked = lagging.requests
        await reader.call_many([Call(target=IDENTITY, data=b"\xcd")], block)
        assert lagging.requests == asked


async def test_pin_with_runs_the_calls_in_the_pin_request(anvil: AnvilChain, http: httpx.AsyncClient) -> None:
    reader = reader_for([anvil.rpc_url], http)
    calls = balance_calls(anvil.accounts[:2])
    before = reader.requests_sent
    block, results = await reader.pin_with(calls)
    assert reader.requests_sent - before == 1  # chain id check, head block and the calls: one request
    assert block.number == anvil.w3.eth.block_number
    assert [decode(["uint256"], r.data)[0] for r in results] == [
        anvil.w3.eth.get_balance(w, block.number) for w in anvil.accounts[:2]
    ]
