"""The bare chain fixture: anvil answers on a free port and Multicall3 is the real contract."""

from __future__ import annotations

import pytest
from web3 import Web3

from aggregator.devnet.anvil import CHAIN_ID, free_port, pid_alive, start_anvil
from aggregator.devnet.multicall3 import MULTICALL3_ADDRESS, multicall3_abi
from tests.fixtures_devnet import AnvilChain

pytestmark = pytest.mark.devnet


def test_anvil_answers_with_dev_accounts(anvil: AnvilChain) -> None:
    assert anvil.w3.eth.chain_id == CHAIN_ID
    assert anvil.rpc_url.startswith("http://127.0.0.1:")
    # the default mnemonic's first account
    assert anvil.accounts[0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert anvil.w3.eth.get_balance(anvil.accounts[0]) == 10_000 * 10**18


def test_multicall3_views_match_the_node(fresh_anvil: AnvilChain) -> None:
    w3 = fresh_anvil.w3
    mc = w3.eth.contract(MULTICALL3_ADDRESS, abi=multicall3_abi())
    fresh_anvil.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    block = w3.eth.get_block("latest")
    assert mc.functions.getChainId().call() == CHAIN_ID
    assert mc.functions.getBlockNumber().call() == block["number"]
    assert mc.functions.getCurrentBlockTimestamp().call() == block["timestamp"]
    who = fresh_anvil.accounts[3]
    assert mc.functions.getEthBalance(who).call() == w3.eth.get_balance(who)


def test_multicall3_aggregate3_allows_failure_per_call(fresh_anvil: AnvilChain) -> None:
    w3 = fresh_anvil.w3
    mc = w3.eth.contract(MULTICALL3_ADDRESS, abi=multicall3_abi())
    good = (MULTICALL3_ADDRESS, False, bytes.fromhex(mc.encode_abi("getChainId")[2:]))
    bad = (MULTICALL3_ADDRESS, True, b"\xde\xad\xbe\xef")  # no such selector: reverts
    results = mc.functions.aggregate3([good, bad]).call()
    assert results[0][0] is True
    assert int.from_bytes(results[0][1], "big") == CHAIN_ID
    assert results[1][0] is False
    tried = mc.functions.tryAggregate(False, [(good[0], good[2]), (bad[0], bad[2])]).call()
    assert [ok for ok, _ in tried] == [True, False]
    with pytest.raises(Exception, match="revert"):
        mc.functions.aggregate3([good, (MULTICALL3_ADDRESS, False, b"\xde\xad\xbe\xef")]).call()


def test_snapshot_revert_restores_state(anvil: AnvilChain) -> None:
    w3 = anvil.w3
    snap = anvil.snapshot()
    target = Web3.to_checksum_address("0x" + "12" * 20)
    w3.eth.send_transaction({"from": anvil.accounts[0], "to": target, "value": 5})
    assert w3.eth.get_balance(target) == 5
    anvil.revert(snap)
    assert w3.eth.get_balance(target) == 0


def test_start_on_given_port_and_stop() -> None:
    port = free_port()
    node = start_anvil(port=port)
    try:
        assert node.rpc_url == f"http://127.0.0.1:{port}"
        assert Web3(Web3.HTTPProvider(node.rpc_url)).eth.chain_id == CHAIN_ID
        assert pid_alive(node.pid)
    finally:
        node.stop()
    assert not pid_alive(node.pid)
