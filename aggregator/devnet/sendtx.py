"""Send a contract call from an unlocked anvil account with an explicit gas limit.

Why not ``Txs.transact``: it lets anvil estimate gas, and anvil estimates on the latest block's
timestamp while the transaction is mined in a new block whose timestamp may be a second or more later.
Any contract that writes ``block.timestamp`` or accrues interest over the elapsed time (Morpho's
``_accrueInterest``, the Comet stand-in's accrual, a price feed's ``updatedAt``) then costs more than
estimated and the transaction runs out of gas (seen on this machine: estimate 34,139, needed 36,846).
A fixed limit of 15M gas (below EIP-7825's 2**24 cap) avoids that; only the gas used is charged.
"""

from __future__ import annotations

from typing import Any

from eth_typing import HexStr
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from aggregator.devnet.txs import TxError, Txs

__all__ = ["GAS_LIMIT", "send_call"]

GAS_LIMIT = 15_000_000


def send_call(txs: Txs, fn: ContractFunction, sender: str, *, what: str | None = None) -> TxReceipt:
    """``eth_call`` first (a revert raises :class:`TxError` with the node's reason, nothing is mined),
    then send with ``GAS_LIMIT`` and return the successful receipt."""
    label = what or f"{fn.fn_name} on {fn.address}"
    sender = Web3.to_checksum_address(sender)
    try:
        fn.call({"from": sender})
    except ContractLogicError as exc:
        raise TxError(f"{label} from {sender}: {_reason(fn, exc)}") from exc
    tx: dict[str, Any] = {
        "from": sender,
        "to": fn.address,
        "data": fn._encode_transaction_data(),
        "gas": hex(GAS_LIMIT),
    }
    tx_hash = txs.rpc("eth_sendTransaction", [tx])
    receipt = txs.w3.eth.wait_for_transaction_receipt(HexStr(tx_hash), timeout=60, poll_latency=0.01)
    txs.count += 1
    if receipt["status"] != 1:
        raise TxError(f"{label} from {sender} reverted in tx {tx_hash} (gas used {receipt['gasUsed']})")
    return receipt


def _reason(fn: ContractFunction, exc: ContractLogicError) -> str:
    """The revert reason; a custom error of the contract's ABI is named (``NotLiquidatable()``)."""
    data = exc.data if isinstance(exc.data, str) else ""
    abi: list[dict[str, Any]] = list(fn.contract_abi)  # type: ignore[arg-type]
    for entry in abi:
        if entry.get("type") == "error":
            inputs = ",".join(str(i["type"]) for i in entry.get("inputs", []))
            signature = f"{entry['name']}({inputs})"
            if data[:10] == "0x" + Web3.keccak(text=signature).hex().removeprefix("0x")[:8]:
                return f"reverted {signature}"
    return exc.message or str(exc)
