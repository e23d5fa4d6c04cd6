"""`[chains.<name>] hedge_after_seconds / max_lag_blocks` reach the chain's RPC pool options."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from adapters.evm import EvmChainReader
from adapters.specs import ChainSpec
from aggregator.scan import _default_reader


async def test_chain_config_sets_hedging_and_lag_limit() -> None:
    async with httpx.AsyncClient() as http:
        spec = ChainSpec(chain_id=1, rpc_urls=("http://127.0.0.1:1",), hedge_after_seconds=0.4, max_lag_blocks=7)
        reader = _default_reader("ethereum", spec, http)
        assert isinstance(reader, EvmChainReader)
        assert (reader.options.rpc.hedge_after_s, reader.options.rpc.max_lag_blocks) == (0.4, 7)
        off = _default_reader("ethereum", spec.model_copy(update={"hedge_after_seconds": 0.0}), http)
        assert isinstance(off, EvmChainReader)
        assert off.options.rpc.hedge_after_s is None  # 0 = never hedge


def test_negative_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="max_lag_blocks"):
        ChainSpec(chain_id=1, rpc_urls=("http://127.0.0.1:1",), max_lag_blocks=-1)
