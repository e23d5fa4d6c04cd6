"""The EVM read layer shared by every on-chain adapter.

- :class:`EvmChainReader` (``reader``): the ``ChainReader`` of one chain: pinned block, Multicall3
  ``aggregate3`` batching (or JSON-RPC batches), chunked ``eth_getLogs``.
- :class:`RpcPool` (``rpc``): endpoints with timeouts, failover, full-jitter retries, circuit breakers
  (``breaker``) and a scan-cycle deadline.
- ``abi``: minimal ABIs from ``adapters/abi/*.json`` with typed encode/decode.
- ``redact``: RPC URLs without their secrets, for messages.
"""

from adapters.evm.abi import Contract, Function, load_contract
from adapters.evm.reader import EvmChainReader, ReaderOptions
from adapters.evm.redact import redact_url
from adapters.evm.rpc import RpcError, RpcOptions, RpcPool

__all__ = [
    "Contract",
    "EvmChainReader",
    "Function",
    "ReaderOptions",
    "RpcError",
    "RpcOptions",
    "RpcPool",
    "load_contract",
    "redact_url",
]
