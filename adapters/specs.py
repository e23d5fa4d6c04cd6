"""Configuration shapes the adapters consume: chains, deployments per protocol family, HTTP venues.

These are validated by ``aggregator.config`` from ``config/*.toml`` layered with the user's file.
Deployments hold only root addresses; everything derivable is read on-chain.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, SecretStr, field_validator

from adapters.addresses import Address

__all__ = [
    "DEPLOYMENT_SPECS",
    "AaveV3Deployment",
    "ChainSpec",
    "CompoundV3Deployment",
    "DeploymentSpec",
    "GmxV2Deployment",
    "MorphoBlueDeployment",
    "RateLimit",
    "VenueSpec",
]

MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"


def _none_if_blank(value: object) -> object:
    """TOML has no null: ``""`` or ``"none"`` means "no Multicall3 on this chain"."""
    if isinstance(value, str) and value.strip().lower() in ("", "none"):
        return None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChainSpec(_Strict):
    chain_id: Annotated[int, Field(gt=0)]
    rpc_urls: Annotated[tuple[str, ...], Field(min_length=1)]
    # None (TOML: multicall3 = "" or "none"): the chain has no Multicall3, use JSON-RPC batches
    multicall3: Annotated[Address | None, BeforeValidator(_none_if_blank)] = MULTICALL3
    block_time_seconds: Annotated[float, Field(gt=0)] = 12.0
    native_token: str = "ETH"
    max_call_gas: Annotated[int, Field(gt=0)] = 30_000_000  # split multicall batches under this
    explorer: str | None = None
    # a read not answered after this long is also sent to the next RPC URL, first good answer wins
    # (0: never hedge); an RPC URL more than max_lag_blocks behind the best head is skipped per cycle
    hedge_after_seconds: Annotated[float, Field(ge=0)] = 1.5
    max_lag_blocks: Annotated[int, Field(ge=0)] = 3
    # ENS registry used to resolve *.eth names on this chain (adapters.ens); unset: the mainnet
    # registry when chain_id = 1, no ENS on any other chain
    ens_registry: Address | None = None
    # ERC-20 tokens whose idle wallet balances are read (adapters.wallet_balances), SYMBOL = address
    # (``[chains.<name>.tokens]``); the lending adapters' own tokens are read too
    tokens: dict[Annotated[str, Field(min_length=1, pattern=r"^\S+$")], Address] = {}
    # oracle freshness (lending adapters, ``oracle_stale`` alert metric): a price feed whose last
    # update (Chainlink ``latestRoundData().updatedAt``) is older than its heartbeat at the pinned block
    # is stale; ``[chains.<name>.oracle_heartbeats]`` overrides it per token, SYMBOL or "0x..." = seconds
    oracle_heartbeat_seconds: Annotated[int, Field(gt=0)] = 86_400
    oracle_heartbeats: dict[
        Annotated[str, Field(min_length=1, pattern=r"^\S+$")], Annotated[int, Field(gt=0)]
    ] = {}

    @field_validator("oracle_heartbeats")
    @classmethod
    def _heartbeat_keys(cls, value: dict[str, int]) -> dict[str, int]:
        seen: dict[str, str] = {}
        for key in value:
            if key.lower().startswith("0x") and not re.fullmatch(r"0x[0-9a-fA-F]{40}", key):
                raise ValueError(f"oracle_heartbeats key {key!r} looks like an address but is not 0x+40 hex")
            folded = key.lower()
            if folded in seen:
                raise ValueError(f"oracle_heartbeats keys {seen[folded]!r} and {key!r} name the same token")
            seen[folded] = key
        return value

    def oracle_heartbeat_for(self, symbol: str | None, token: str | None = None) -> int:
        """Heartbeat (seconds) of ``token``'s price feed: the override for its address, else for its
        symbol (case-insensitive), else ``oracle_heartbeat_seconds``."""
        folded = {k.lower(): v for k, v in self.oracle_heartbeats.items()}
        for key in (token, symbol):
            if key is not None and key.lower() in folded:
                return folded[key.lower()]
        return self.oracle_heartbeat_seconds


class DeploymentSpec(_Strict):
    chain: str
    label: str | None = None
    enabled: bool = True


class AaveV3Deployment(DeploymentSpec):
    """Aave V3 family (Aave, Spark, forks): only the PoolAddressesProvider; Pool, oracle and data
    provider are derived on-chain."""

    pool_addresses_provider: Address


class CompoundV3Deployment(DeploymentSpec):
    """One Comet market per instance (the proxy address)."""

    comet: Address
    base_symbol: str


class MorphoBlueDeployment(DeploymentSpec):
    """The Morpho singleton; wallets' markets are discovered from logs after ``start_block``."""

    morpho: Address
    start_block: Annotated[int, Field(ge=0)] = 0
    markets: tuple[str, ...] = ()  # market ids (bytes32 hex) always read
    log_chunk_blocks: Annotated[int, Field(gt=0)] = 50_000


class GmxV2Deployment(DeploymentSpec):
    """GMX v2 on one chain: Reader, DataStore and ReferralStorage, and the oracle API's tickers URL
    (``https://<chain>-api.gmxinfra.io/prices/tickers``); markets and factors are read on-chain."""

    reader: Address
    data_store: Address
    referral_storage: Address
    tickers_url: str


DEPLOYMENT_SPECS: dict[str, type[DeploymentSpec]] = {
    "aave_v3": AaveV3Deployment,
    "compound_v3": CompoundV3Deployment,
    "morpho_blue": MorphoBlueDeployment,
    "gmx_v2": GmxV2Deployment,
}
"""Protocol family -> the shape of one of its deployments (``[deployments.<family>.<instance>]``)."""


class RateLimit(_Strict):
    requests: Annotated[int, Field(gt=0)]
    per_seconds: Annotated[float, Field(gt=0)]


class VenueSpec(_Strict):
    """An HTTP venue (``[venues.<name>]``)."""

    api_url: HttpUrl
    enabled: bool = True
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    rate_limit: RateLimit = RateLimit(requests=10, per_seconds=1.0)
    max_in_flight: Annotated[int, Field(gt=0)] = 8  # this venue's requests on the wire at once
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    client_id: SecretStr | None = None  # Deribit: OAuth client credentials (else api_key / api_secret)
    client_secret: SecretStr | None = None
    subaccounts: dict[str, tuple[int, ...]] = {}  # wallet -> subaccount ids, where the venue cannot list them
    # wallet -> the venue's own account addresses, where they are not the EVM wallet (dYdX ``dydx1...``)
    accounts: dict[str, tuple[str, ...]] = {}
