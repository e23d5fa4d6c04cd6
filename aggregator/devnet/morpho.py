"""Deploy the real Morpho Blue (``@morpho-org/morpho-blue`` 1.0.0, compiled here with solcjs 0.8.19)
with one ``FeedGetterOracle`` per market (``solidity/FeedGetterOracle.sol``) and its own ``IrmMock``,
create the devnet markets and seed them.

Compilation: every file of the package's ``src/`` is a standard-JSON source keyed ``src/...`` (the
package uses relative imports only), optimizer on (runs 999999 as upstream), viaIR off (3 s instead of
15 s; the upstream test profile builds this way too), evm ``paris``, no metadata hash. The artifact is
cached by :mod:`aggregator.devnet.solc`.

Setup as the owner (``Morpho(owner)``): ``enableIrm(IrmMock)``, ``enableLltv`` per distinct lltv,
``createMarket`` per entry of ``MORPHO_MARKETS``; then the supplier mints the loan token, approves and
``supply``s liquidity. Tokens are the devnet's ERC-20s (``aggregator.devnet.tokens``:
``MintableERC20`` with name / symbol / decimals and ``mint(address,uint256)``), passed in by symbol.

Prices (``lending.md`` §3.3): the oracle's ``price()`` is the price of one raw collateral unit in raw
loan units times 1e36, i.e. ``usd(collateral) / usd(loan) * 10**(36 + loanDecimals -
collateralDecimals)``, floored (:func:`oracle_price`), from the exact decimal USD prices (not from the
feeds' 8-decimal answers). ``FeedGetterOracle`` stores that value like morpho-blue's ``OracleMock``
(same ``price()`` / ``setPrice``), and also answers MorphoChainlinkOracleV2's ``BASE_FEED_1`` /
``QUOTE_FEED_1`` getters with the collateral / loan token feeds given to :func:`deploy_morpho` (the
devnet passes Aave's ``SettablePriceFeed`` sources, which ``Devnet.set_price`` moves in the same
call), so the adapter can measure the oracle's freshness; without feeds the getters are zero.
The market id is ``keccak256(abi.encode(loanToken, collateralToken,
oracle, irm, lltv))`` (:func:`market_id`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from eth_abi.abi import encode
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from aggregator.devnet.market import TOKENS, token_price, token_spec
from aggregator.devnet.paths import node_modules
from aggregator.devnet.solc import Compilation, compile_devnet_contracts, compile_sources, read_sources
from aggregator.devnet.tokens import approve, mint
from aggregator.devnet.txs import Txs
from aggregator.errors import ConfigError

__all__ = [
    "MORPHO_MARKETS",
    "MORPHO_SETTINGS",
    "ORACLE_PRICE_SCALE",
    "LiquidationResult",
    "MarketSpec",
    "MorphoDeployment",
    "MorphoMarket",
    "MorphoPosition",
    "compile_morpho",
    "deploy_morpho",
    "liquidate",
    "liquidation_incentive_factor",
    "market_id",
    "morpho_abi",
    "morpho_contract",
    "oracle_price",
    "position",
    "seed_borrower",
    "set_morpho_prices",
    "set_oracle_price",
    "supply_liquidity",
]

WAD = 10**18
ORACLE_PRICE_SCALE = 10**36
VIRTUAL_SHARES = 10**6
VIRTUAL_ASSETS = 1
LIQUIDATION_CURSOR = 3 * 10**17
MAX_LIQUIDATION_INCENTIVE_FACTOR = 115 * 10**16

MORPHO_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 999999},
    "viaIR": False,
    "evmVersion": "paris",
    "metadata": {"bytecodeHash": "none"},
}


@dataclass(frozen=True)
class MarketSpec:
    """One devnet market: collateral and loan token symbols, lltv as a wad."""

    collateral: str
    loan: str
    lltv: int

    @property
    def name(self) -> str:
        return f"{self.collateral}/{self.loan}"


MORPHO_MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("WETH", "USDC", 86 * 10**16),
    MarketSpec("wstETH", "USDC", 86 * 10**16),
    MarketSpec("WBTC", "USDC", 77 * 10**16),
)
_ZERO = "0x0000000000000000000000000000000000000000"
DEFAULT_LIQUIDITY = 5_000_000  # whole loan tokens the supplier puts in each market


@dataclass
class MorphoMarket:
    """A created market: its params (addresses, lltv), id and oracle."""

    name: str
    collateral: str  # token symbol
    loan: str
    loan_token: str
    collateral_token: str
    oracle: str
    irm: str
    lltv: int
    id: str  # 0x-prefixed 32-byte hex

    @property
    def params(self) -> tuple[str, str, str, str, int]:
        """``MarketParams(loanToken, collateralToken, oracle, irm, lltv)`` as a web3 tuple."""
        return (self.loan_token, self.collateral_token, self.oracle, self.irm, self.lltv)


@dataclass
class MorphoDeployment:
    """Everything deployed: Morpho, IrmMock, the markets by name, and the USD prices last set."""

    morpho: str
    irm: str
    owner: str
    tokens: dict[str, str]
    markets: dict[str, MorphoMarket] = field(default_factory=dict)
    token_prices: dict[str, str] = field(default_factory=dict)  # symbol -> USD price (Decimal text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MorphoDeployment:
        markets = {name: MorphoMarket(**m) for name, m in data["markets"].items()}
        return cls(**{**data, "markets": markets})


@dataclass(frozen=True)
class MorphoPosition:
    """``Morpho.position(id, user)``."""

    supply_shares: int
    borrow_shares: int
    collateral: int


@dataclass(frozen=True)
class LiquidationResult:
    """The ``Liquidate`` event of a successful ``Morpho.liquidate``."""

    repaid_assets: int
    repaid_shares: int
    seized_assets: int
    bad_debt_assets: int
    bad_debt_shares: int


@cache
def compile_morpho() -> Compilation:
    """Morpho Blue and its mocks from ``devnet/node_modules/@morpho-org/morpho-blue/src`` (cached)."""
    root = node_modules() / "@morpho-org" / "morpho-blue" / "src"
    return compile_sources(read_sources(root, "src/"), MORPHO_SETTINGS)


def market_id(loan_token: str, collateral_token: str, oracle: str, irm: str, lltv: int) -> str:
    """``MarketParamsLib.id``: keccak256 over the five static words."""
    words = encode(
        ["address", "address", "address", "address", "uint256"],
        [loan_token, collateral_token, oracle, irm, lltv],
    )
    return "0x" + Web3.keccak(words).hex().removeprefix("0x")


def oracle_price(
    collateral_usd: Decimal, loan_usd: Decimal, collateral_decimals: int, loan_decimals: int
) -> int:
    """``IOracle.price()`` for these USD prices: raw loan units per raw collateral unit × 1e36, floored."""
    if collateral_usd <= 0 or loan_usd <= 0:
        raise ConfigError(f"prices must be positive, got {collateral_usd} and {loan_usd}", source="devnet")
    exact = (
        Fraction(collateral_usd)
        / Fraction(loan_usd)
        * Fraction(10) ** (36 + loan_decimals - collateral_decimals)
    )
    return exact.numerator // exact.denominator


def liquidation_incentive_factor(lltv: int) -> int:
    """``min(1.15, 1 / (1 - 0.3 * (1 - lltv)))`` in wad, with Morpho's wMulDown / wDivDown."""
    return min(
        MAX_LIQUIDATION_INCENTIVE_FACTOR, WAD * WAD // (WAD - LIQUIDATION_CURSOR * (WAD - lltv) // WAD)
    )


def morpho_abi() -> list[dict[str, Any]]:
    """Morpho's ABI plus its events (declared in ``EventsLib``, so absent from Morpho's own ABI)."""
    compiled = compile_morpho()
    events = [e for e in compiled.get("EventsLib").abi if e.get("type") == "event"]
    return [*compiled.get("Morpho").abi, *events]


def morpho_contract(txs: Txs, deployment: MorphoDeployment) -> Contract:
    """The Morpho singleton bound to :func:`morpho_abi`."""
    return txs.w3.eth.contract(address=Web3.to_checksum_address(deployment.morpho), abi=morpho_abi())


def deploy_morpho(
    txs: Txs,
    owner: str,
    tokens: dict[str, ChecksumAddress],
    factor_prices: dict[str, Decimal],
    *,
    supplier: str | None = None,
    liquidity: int = DEFAULT_LIQUIDITY,
    markets: tuple[MarketSpec, ...] = MORPHO_MARKETS,
    feeds: dict[str, str] | None = None,
) -> MorphoDeployment:
    """Deploy Morpho(owner) + IrmMock + one FeedGetterOracle per market (its price set at deployment),
    enable the IRM and lltvs, create ``markets`` and have ``supplier`` (default ``owner``) supply
    ``liquidity`` whole loan tokens each.

    ``tokens`` maps symbols to deployed devnet ERC-20s; ``factor_prices`` are the factor USD prices
    (``market.INITIAL_FACTOR_PRICES``), turned into token prices by ``market.token_price``; ``feeds``
    (symbol -> Chainlink-style feed) gives each oracle's ``BASE_FEED_1`` (collateral) and
    ``QUOTE_FEED_1`` (loan), the zero address for a token without one.
    """
    compiled = compile_morpho()
    morpho = txs.deploy(compiled.get("Morpho").deployable, owner, sender=owner)
    irm = txs.deploy(compiled.get("IrmMock").deployable, sender=owner).address
    txs.transact(morpho.functions.enableIrm(irm), owner, precheck=True)
    for lltv in sorted({m.lltv for m in markets}):
        txs.transact(morpho.functions.enableLltv(lltv), owner, precheck=True)
    prices = {s.symbol: token_price(s, factor_prices) for s in TOKENS if s.symbol in tokens}
    deployment = MorphoDeployment(
        morpho=morpho.address,
        irm=irm,
        owner=owner,
        tokens=dict(tokens),
        token_prices={k: str(v) for k, v in prices.items()},
    )
    oracle_artifact = compile_devnet_contracts().get("FeedGetterOracle").deployable
    feed_of = {k: Web3.to_checksum_address(v) for k, v in (feeds or {}).items()}
    for spec in markets:
        if spec.collateral not in tokens or spec.loan not in tokens:
            raise ConfigError(
                f"Morpho market {spec.name}: token missing from {sorted(tokens)}", source="devnet"
            )
        oracle = txs.deploy(
            oracle_artifact,
            feed_of.get(spec.collateral, _ZERO),
            feed_of.get(spec.loan, _ZERO),
            _market_price(deployment, spec.collateral, spec.loan),
            sender=owner,
        )
        market = MorphoMarket(
            name=spec.name,
            collateral=spec.collateral,
            loan=spec.loan,
            loan_token=tokens[spec.loan],
            collateral_token=tokens[spec.collateral],
            oracle=oracle.address,
            irm=irm,
            lltv=spec.lltv,
            id=market_id(tokens[spec.loan], tokens[spec.collateral], oracle.address, irm, spec.lltv),
        )
        deployment.markets[spec.name] = market
        txs.transact(morpho.functions.createMarket(market.params), owner, precheck=True)
        amount = liquidity * 10 ** token_spec(spec.loan).decimals
        if amount:
            supply_liquidity(txs, deployment, spec.name, supplier or owner, amount)
    return deployment


def _market(deployment: MorphoDeployment, name: str) -> MorphoMarket:
    try:
        return deployment.markets[name]
    except KeyError:
        raise ConfigError(
            f"no Morpho market {name!r}; have {sorted(deployment.markets)}", source="devnet"
        ) from None


def _market_price(deployment: MorphoDeployment, collateral: str, loan: str) -> int:
    """:func:`oracle_price` of the USD token prices last recorded in ``deployment``."""
    return oracle_price(
        Decimal(deployment.token_prices[collateral]),
        Decimal(deployment.token_prices[loan]),
        token_spec(collateral).decimals,
        token_spec(loan).decimals,
    )


def _set_market_price(txs: Txs, deployment: MorphoDeployment, market: MorphoMarket) -> None:
    set_oracle_price(txs, deployment, market.name, _market_price(deployment, market.collateral, market.loan))


def set_oracle_price(txs: Txs, deployment: MorphoDeployment, market_name: str, price: int) -> None:
    """``setPrice(price)`` on one market's oracle (``price`` already in the 1e36 scale; the
    ``OracleMock`` ABI, which ``FeedGetterOracle`` shares for ``price`` / ``setPrice``)."""
    market = _market(deployment, market_name)
    oracle = txs.contract(compile_morpho().get("OracleMock").deployable, market.oracle)
    txs.transact(oracle.functions.setPrice(price), deployment.owner, precheck=True)


def set_morpho_prices(txs: Txs, deployment: MorphoDeployment, token_prices: dict[str, Decimal]) -> None:
    """Record new USD token prices and reset the oracle of every market whose collateral or loan
    token moved (the other token's price is the one last recorded)."""
    deployment.token_prices.update({k: str(v) for k, v in token_prices.items()})
    for market in deployment.markets.values():
        if market.collateral in token_prices or market.loan in token_prices:
            _set_market_price(txs, deployment, market)


def supply_liquidity(
    txs: Txs, deployment: MorphoDeployment, market_name: str, supplier: str, amount: int
) -> None:
    """Mint ``amount`` raw loan units to ``supplier``, approve Morpho and ``supply`` them."""
    market = _market(deployment, market_name)
    mint(txs, market.loan_token, supplier, amount)
    approve(txs, market.loan_token, supplier, deployment.morpho, amount)
    morpho = morpho_contract(txs, deployment)
    txs.transact(morpho.functions.supply(market.params, amount, 0, supplier, b""), supplier, precheck=True)


def seed_borrower(
    txs: Txs, deployment: MorphoDeployment, market_name: str, borrower: str, *, collateral: int, borrow: int
) -> None:
    """Mint and ``supplyCollateral`` ``collateral`` raw units, then ``borrow`` raw loan units to itself."""
    market = _market(deployment, market_name)
    morpho = morpho_contract(txs, deployment)
    if collateral:
        mint(txs, market.collateral_token, borrower, collateral)
        approve(txs, market.collateral_token, borrower, deployment.morpho, collateral)
        fn = morpho.functions.supplyCollateral(market.params, collateral, borrower, b"")
        txs.transact(fn, borrower, precheck=True)
    if borrow:
        fn = morpho.functions.borrow(market.params, borrow, 0, borrower, borrower)
        txs.transact(fn, borrower, precheck=True)


def position(txs: Txs, deployment: MorphoDeployment, market_name: str, user: str) -> MorphoPosition:
    """``Morpho.position(id, user)`` at the latest block."""
    market = _market(deployment, market_name)
    supply_shares, borrow_shares, collateral = (
        morpho_contract(txs, deployment).functions.position(market.id, user).call()
    )
    return MorphoPosition(int(supply_shares), int(borrow_shares), int(collateral))


def liquidate(
    txs: Txs,
    deployment: MorphoDeployment,
    market_name: str,
    liquidator: str,
    borrower: str,
    *,
    repaid_shares: int | None = None,
    seized_assets: int | None = None,
) -> LiquidationResult:
    """``Morpho.liquidate`` by ``liquidator`` (who gets the loan tokens minted and approves Morpho).

    Give exactly one of ``repaid_shares`` / ``seized_assets``, or neither: then half the borrow shares
    are repaid, or, when that would seize more than the collateral, all the collateral is seized (the
    rest of the debt becomes bad debt). Reverts (``TxError``) on a healthy position, as Morpho does.
    """
    market = _market(deployment, market_name)
    morpho = morpho_contract(txs, deployment)
    pos = position(txs, deployment, market_name, borrower)
    totals = morpho.functions.market(market.id).call()
    total_borrow_assets, total_borrow_shares = int(totals[2]), int(totals[3])
    if repaid_shares is None and seized_assets is None:
        repaid_shares = pos.borrow_shares // 2
        repaid = _to_assets_up(repaid_shares, total_borrow_assets, total_borrow_shares)
        price = int(
            txs.contract(compile_morpho().get("OracleMock").deployable, market.oracle)
            .functions.price()
            .call()
        )
        seize = (
            repaid * liquidation_incentive_factor(market.lltv) // WAD * ORACLE_PRICE_SCALE // max(price, 1)
        )
        if seize > pos.collateral:
            repaid_shares, seized_assets = None, pos.collateral
    budget = 2 * _to_assets_up(pos.borrow_shares, total_borrow_assets, total_borrow_shares) + 10**6
    mint(txs, market.loan_token, liquidator, budget)
    approve(txs, market.loan_token, liquidator, deployment.morpho, budget)
    fn = morpho.functions.liquidate(market.params, borrower, seized_assets or 0, repaid_shares or 0, b"")
    try:  # a revert names Morpho's reason ("position is healthy")
        receipt: TxReceipt = txs.transact(
            fn, liquidator, what=f"liquidate {borrower} on Morpho {market_name}", precheck=True
        )
    finally:
        approve(txs, market.loan_token, liquidator, deployment.morpho, 0)
    events = morpho.events.Liquidate().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise ConfigError(
            f"liquidate on {market_name}: expected one Liquidate event, got {len(events)}", source="devnet"
        )
    args = events[0]["args"]
    return LiquidationResult(
        repaid_assets=int(args["repaidAssets"]),
        repaid_shares=int(args["repaidShares"]),
        seized_assets=int(args["seizedAssets"]),
        bad_debt_assets=int(args["badDebtAssets"]),
        bad_debt_shares=int(args["badDebtShares"]),
    )


def _to_assets_up(shares: int, total_assets: int, total_shares: int) -> int:
    """``SharesMathLib.toAssetsUp``."""
    denominator = total_shares + VIRTUAL_SHARES
    return (shares * (total_assets + VIRTUAL_ASSETS) + denominator - 1) // denominator
