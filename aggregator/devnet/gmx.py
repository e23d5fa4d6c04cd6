"""Deploy the GMX v2 STAND-INs (``solidity/GmxReaderStandIn.sol``, ``GmxDataStoreStandIn.sol``,
``GmxTypes.sol``; written for the devnet: GMX's Reader needs the whole synthetics deployment) and
seed markets, DataStore parameters and positions.

What the stand-ins reproduce (see the contracts' NatSpec): the Reader's read interface with the v2.2
ABI layouts (getMarket, getPosition, getAccountPositions, getAccountPositionInfoList, getPositionInfo,
isPositionLiquidatable) and the liquidation rule of ``PositionUtils.isPositionLiquidatable`` with the
DataStore's MIN_COLLATERAL_USD, MIN_COLLATERAL_FACTOR(_FOR_LIQUIDATION),
MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS and POSITION_FEE_FACTOR. What they do not: the price-impact
curve, borrowing / funding accrual (fixed per-position amounts the owner sets with ``set_costs``), the
positive-PnL cap, referral / UI fees, order execution; positions live in the Reader stand-in, not the
DataStore.

Markets: ``ETH/USD [WETH-USDC]`` (index WETH) and ``BTC/USD [WBTC-USDC]`` (index WBTC), market-token
addresses derived from their names (no code: GMX market tokens are only keys here). Prices are not
on-chain: readers pass them in, from the venue server's ``/prices/tickers`` (``seed_tickers`` points
it at the devnet's token addresses). ``GMX_BOOK``: the fund's demo position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Final

import httpx
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract

from aggregator.devnet.market import token_spec
from aggregator.devnet.solc import compile_devnet_contracts
from aggregator.devnet.txs import Txs
from aggregator.devnet.venue_client import VenueAdminError
from aggregator.errors import ConfigError

__all__ = [
    "GMX_BOOK",
    "GMX_MARKETS",
    "GmxDeployment",
    "GmxIntent",
    "data_store_contract",
    "deploy_gmx",
    "open_position",
    "reader_contract",
    "seed_gmx",
    "seed_tickers",
    "set_costs",
    "set_market_params",
    "set_uint",
]

P30: Final = 10**30
REFERRAL_STORAGE: Final = Web3.to_checksum_address("0x" + "00" * 19 + "42")  # unused by the stand-in
# (name, index token, long token, short token)
GMX_MARKETS: Final = (("ETH/USD", "WETH", "WETH", "USDC"), ("BTC/USD", "WBTC", "WBTC", "USDC"))
# ticker symbol and factor of each devnet token (GMX's tickers call WETH "ETH", WBTC "BTC")
TICKER_TOKENS: Final = {"WETH": ("ETH", "ETH"), "WBTC": ("BTC", "BTC"), "USDC": ("USDC", "USD")}
DEFAULT_PARAMS: Final = {
    "min_collateral_factor": Decimal("0.01"),
    "min_collateral_factor_for_liquidation": Decimal("0.01"),
    "max_position_impact_factor_for_liquidations": Decimal("0.01"),
    "position_fee_factor": Decimal("0.0007"),
}
DEFAULT_MIN_COLLATERAL_USD: Final = Decimal(1)


@dataclass(frozen=True)
class GmxIntent:
    """One demo position: ``size_usd`` at ``entry``, ``collateral`` whole tokens of ``collateral_symbol``."""

    market: str
    is_long: bool
    size_usd: Decimal
    entry: Decimal
    collateral_symbol: str
    collateral: Decimal


# fund: long 30,000 USD of ETH at 3,000 (10x) on 3,000 USDC: h = (3,000 - 21 fee) / 300 = 9.93;
# liquidated near ETH = 3,000 * (1 - 2,679 / 30,000) = 2,732
GMX_BOOK: Final = {
    "fund": (GmxIntent("ETH/USD", True, Decimal(30_000), Decimal(3000), "USDC", Decimal(3000)),)
}


@dataclass
class GmxDeployment:
    reader: str
    data_store: str
    referral_storage: str
    owner: str
    tokens: dict[str, str]  # devnet symbol -> address
    markets: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> market/index/long/short

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GmxDeployment:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _market_address(name: str) -> str:
    return Web3.to_checksum_address(keccak(text=f"crossmargin devnet GMX market {name}")[12:])


def _key(name: str) -> bytes:
    """``keccak256(abi.encode(name))`` (the dynamic encoding of a string, as Keys.sol)."""
    raw = name.encode()
    return bytes(
        keccak((32).to_bytes(32, "big") + len(raw).to_bytes(32, "big") + raw + bytes(-len(raw) % 32))
    )


def reader_contract(txs: Txs, deployment: GmxDeployment) -> Contract:
    return txs.contract(compile_devnet_contracts().get("GmxReaderStandIn").deployable, deployment.reader)


def data_store_contract(txs: Txs, deployment: GmxDeployment) -> Contract:
    return txs.contract(
        compile_devnet_contracts().get("GmxDataStoreStandIn").deployable, deployment.data_store
    )


def set_uint(txs: Txs, deployment: GmxDeployment, key: bytes, value: int) -> None:
    fn = data_store_contract(txs, deployment).functions.setUint(key, value)
    txs.transact(fn, deployment.owner, precheck=True)


def set_market_params(txs: Txs, deployment: GmxDeployment, market: str, **factors: Decimal) -> None:
    """Set DataStore factors of market ``market`` (name or address), fractions (0.01 = 1 %); names as
    ``DEFAULT_PARAMS``."""
    address = deployment.markets[market]["market"] if market in deployment.markets else market
    store = data_store_contract(txs, deployment).functions
    keys = {
        "min_collateral_factor": store.minCollateralFactorKey(address),
        "min_collateral_factor_for_liquidation": store.minCollateralFactorForLiquidationKey(address),
        "max_position_impact_factor_for_liquidations": store.maxPositionImpactFactorForLiquidationsKey(
            address
        ),
        "position_fee_factor": store.positionFeeFactorKey(address, False),
    }
    for name, value in factors.items():
        if name not in keys:
            raise ConfigError(
                f"unknown GMX market parameter {name!r} (one of {sorted(keys)})", source="devnet"
            )
        set_uint(txs, deployment, keys[name].call(), int(value * P30))


def set_min_collateral_usd(txs: Txs, deployment: GmxDeployment, usd: Decimal) -> None:
    set_uint(txs, deployment, _key("MIN_COLLATERAL_USD"), int(usd * P30))


def deploy_gmx(txs: Txs, owner: str, tokens: dict[str, str]) -> GmxDeployment:
    """Deploy the DataStore and Reader stand-ins, register ``GMX_MARKETS`` and set the default
    parameters (MIN_COLLATERAL_USD 1 USD, factors from ``DEFAULT_PARAMS``)."""
    compiled = compile_devnet_contracts()
    missing = sorted({s for m in GMX_MARKETS for s in m[1:]} - set(tokens))
    if missing:
        raise ConfigError(f"GMX stand-in: tokens {missing} missing from {sorted(tokens)}", source="devnet")
    store = txs.deploy(compiled.get("GmxDataStoreStandIn").deployable, owner, sender=owner)
    reader = txs.deploy(compiled.get("GmxReaderStandIn").deployable, owner, sender=owner)
    deployment = GmxDeployment(
        reader=reader.address,
        data_store=store.address,
        referral_storage=REFERRAL_STORAGE,
        owner=owner,
        tokens={s: tokens[s] for s in TICKER_TOKENS},
    )
    set_min_collateral_usd(txs, deployment, DEFAULT_MIN_COLLATERAL_USD)
    for name, index, long, short in GMX_MARKETS:
        props = {
            "market": _market_address(name),
            "index": tokens[index],
            "long": tokens[long],
            "short": tokens[short],
        }
        deployment.markets[name] = props
        fn = reader.functions.setMarket((props["market"], props["index"], props["long"], props["short"]))
        txs.transact(fn, owner, precheck=True)
        set_market_params(txs, deployment, name, **DEFAULT_PARAMS)
    return deployment


def _symbol_of(deployment: GmxDeployment, address: str) -> str:
    for symbol, token in deployment.tokens.items():
        if token.lower() == address.lower():
            return symbol
    raise ConfigError(f"{address} is not a GMX devnet token", source="devnet")


def open_position(
    txs: Txs,
    deployment: GmxDeployment,
    account: str,
    market: str,
    *,
    is_long: bool,
    size_in_usd: int,
    size_in_tokens: int,
    collateral_token: str,
    collateral_amount: int,
    pending_impact_amount: int = 0,
) -> bytes:
    """Write a position (raw GMX units: USD x 1e30, token base units) and return its key."""
    props = deployment.markets.get(market, {"market": market})
    reader = reader_contract(txs, deployment)
    addresses = (
        Web3.to_checksum_address(account),
        Web3.to_checksum_address(props["market"]),
        Web3.to_checksum_address(collateral_token),
    )
    fn = reader.functions.setPosition(
        addresses, is_long, size_in_usd, size_in_tokens, collateral_amount, pending_impact_amount
    )
    txs.transact(fn, deployment.owner, precheck=True)
    key: bytes = reader.functions.positionKey(*addresses, is_long).call()
    return key


def set_costs(
    txs: Txs,
    deployment: GmxDeployment,
    key: bytes,
    *,
    close_impact_usd: int = 0,
    borrowing_fee_usd: int = 0,
    funding_fee_amount: int = 0,
) -> None:
    """The position's close price impact and pending borrowing (USD x 1e30) and funding (collateral units)."""
    fn = reader_contract(txs, deployment).functions.setCosts(
        key, close_impact_usd, borrowing_fee_usd, funding_fee_amount
    )
    txs.transact(fn, deployment.owner, precheck=True)


def seed_tickers(api_url: str, deployment: GmxDeployment, *, spread: Decimal = Decimal(0)) -> None:
    """Point the venue server's ``/prices/tickers`` at the devnet tokens (symbol, decimals, factor)."""
    tokens = [
        {"address": deployment.tokens[s], "symbol": sym, "decimals": token_spec(s).decimals, "factor": factor}
        for s, (sym, factor) in TICKER_TOKENS.items()
    ]
    try:
        response = httpx.post(
            f"{api_url}/_devnet/seed/gmx", json={"tokens": tokens, "spread": str(spread)}, timeout=10.0
        )
    except httpx.HTTPError as exc:
        raise VenueAdminError(f"venue server {api_url} did not answer /_devnet/seed/gmx: {exc}") from exc
    if response.status_code != 200:
        raise VenueAdminError(
            f"venue server /_devnet/seed/gmx: HTTP {response.status_code}: {response.text[:300]}"
        )


def seed_gmx(txs: Txs, deployment: GmxDeployment, wallets: dict[str, str]) -> list[str]:
    """Open ``GMX_BOOK``'s positions; returns their keys (0x hex)."""
    keys = []
    for name, intents in GMX_BOOK.items():
        for intent in intents:
            index_symbol = next(m[1] for m in GMX_MARKETS if m[0] == intent.market)
            size_in_usd = int(intent.size_usd * P30)
            size_in_tokens = int(intent.size_usd / intent.entry * 10 ** token_spec(index_symbol).decimals)
            token = deployment.tokens[intent.collateral_symbol]
            amount = int(intent.collateral * 10 ** token_spec(_symbol_of(deployment, token)).decimals)
            key = open_position(
                txs,
                deployment,
                wallets[name],
                intent.market,
                is_long=intent.is_long,
                size_in_usd=size_in_usd,
                size_in_tokens=size_in_tokens,
                collateral_token=token,
                collateral_amount=amount,
            )
            keys.append("0x" + key.hex())
    return keys


def deploy_and_seed(
    txs: Txs, owner: str, tokens: dict[str, str], wallets: dict[str, str], api_url: str
) -> dict[str, Any]:
    """Everything ``start_devnet`` needs: stand-ins, demo book, tickers; returns what the state records
    as ``DevnetState.gmx`` (``GmxDeployment.to_dict()`` + ``positions`` keys + ``tickers_url``)."""
    deployment = deploy_gmx(txs, owner, tokens)
    keys = seed_gmx(txs, deployment, wallets)
    try:
        seed_tickers(api_url, deployment)
    except VenueAdminError as exc:
        raise ConfigError(f"GMX tickers could not be seeded: {exc}", source="devnet") from exc
    return {**deployment.to_dict(), "positions": keys, "tickers_url": f"{api_url}/prices/tickers"}
