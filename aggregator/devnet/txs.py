"""Send transactions from anvil's unlocked dev accounts and wait for their receipts.

``eth_sendTransaction`` goes to the node with a fixed gas limit and no fee fields: anvil fills the
fees itself (one round trip instead of web3's three). A rejected transaction, or a receipt with
status 0 (the reason is then read by replaying the call on the previous block), raises
:class:`TxError` naming what was being done and the node's reason (Aave reverts with numeric
error codes, e.g. ``35`` = health factor below the liquidation threshold).
"""

from __future__ import annotations

from typing import Any

from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.types import RPCEndpoint, TxParams, TxReceipt, Wei

from aggregator.devnet.artifacts import Artifact
from aggregator.errors import CrossmarginError

__all__ = ["TX_GAS_LIMIT", "TxError", "Txs"]

TX_GAS_LIMIT = 25_000_000


class TxError(CrossmarginError):
    """A devnet transaction was rejected or reverted."""


class Txs:
    """Transaction helper bound to one node."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.count = 0

    def rpc(self, method: str, params: list[Any]) -> Any:
        """One raw JSON-RPC request; an error answer raises :class:`TxError`."""
        response = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in response:
            error = response["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise TxError(f"{method}: {message}")
        return response["result"]

    def send(
        self, sender: str, to: str | None, data: str, *, value: int = 0, what: str = "transaction"
    ) -> TxReceipt:
        """Send one transaction from an unlocked account and return its successful receipt."""
        # A fixed gas limit: anvil estimates against the latest block's timestamp, and a transaction
        # that accrues interest over a later second can need more gas than estimated.
        tx: dict[str, Any] = {"from": sender, "data": data, "gas": hex(TX_GAS_LIMIT)}
        if to is not None:
            tx["to"] = to
        if value:
            tx["value"] = hex(value)
        try:
            tx_hash = self.rpc("eth_sendTransaction", [tx])
        except TxError as exc:
            raise TxError(f"{what} from {sender} failed: {exc}") from exc
        receipt = self.w3.eth.wait_for_transaction_receipt(HexStr(tx_hash), timeout=60, poll_latency=0.01)
        self.count += 1
        if receipt["status"] != 1:
            reason = self._revert_reason(tx, receipt["blockNumber"])
            raise TxError(f"{what} from {sender} reverted in tx {tx_hash}: {reason}")
        return receipt

    def _revert_reason(self, tx: dict[str, Any], block_number: int) -> str:
        """Replay the call on the state before its block to read the revert reason."""
        params: list[Any] = [tx, hex(max(block_number - 1, 0))]
        response = self.w3.provider.make_request(RPCEndpoint("eth_call"), params)
        error = response.get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))
        return "no reason (the replayed call did not revert)"

    def transact(
        self,
        fn: ContractFunction,
        sender: str,
        *,
        value: int = 0,
        what: str | None = None,
        precheck: bool = False,
    ) -> TxReceipt:
        """Call a state-changing contract function as ``sender``.

        ``precheck``: ``eth_call`` it first, so that a revert raises :class:`TxError` with the reason
        (a custom error of the contract's ABI by name, e.g. ``NotLiquidatable()``) and nothing is
        mined (no failed transaction, no extra block).
        """
        address = fn.address
        label = what or f"{fn.fn_name} on {address}"
        sender = Web3.to_checksum_address(sender)
        if precheck:
            try:
                fn.call(TxParams({"from": sender, "value": Wei(value)}))
            except ContractLogicError as exc:
                raise TxError(f"{label} from {sender}: {_revert_name(fn, exc)}") from exc
        data = fn._encode_transaction_data()
        return self.send(sender, address, data, value=value, what=label)

    def deploy(
        self,
        artifact: Artifact,
        *args: Any,
        sender: str,
        libraries: dict[str, str] | None = None,
    ) -> Contract:
        """Deploy ``artifact`` with constructor ``args`` (libraries linked first) and bind its ABI."""
        bytecode = artifact.link(libraries or {}) if artifact.link_references else artifact.bytecode
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send(sender, None, data, what=f"deploying {artifact.name}")
        address = receipt["contractAddress"]
        if address is None:
            raise TxError(f"deploying {artifact.name}: the receipt has no contract address")
        return self.contract(artifact, address)

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """Bind ``artifact``'s ABI to an address."""
        checksum: ChecksumAddress = Web3.to_checksum_address(address)
        return self.w3.eth.contract(address=checksum, abi=artifact.abi)


def _revert_name(fn: ContractFunction, exc: ContractLogicError) -> str:
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
