"""``[chains.<name>.tokens]`` validation, the token list of a chain and the pricing of idle balances
(``adapters.wallet_balances``; the on-chain reads are tested on the devnet:
``tests/devnet/test_idle_balances.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from eth_utils.crypto import keccak

from adapters.addresses import ChecksumAddress, parse_address
from adapters.specs import ChainSpec
from adapters.wallet_balances import TOKEN_ADDRESSES_KEY, WalletBalance, chain_tokens, idle_balances
from aggregator.config import load_config
from aggregator.errors import ConfigError
from risk.model import AsOf, LendingModel, MarginAccount

USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
WETH = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
WALLET = ChecksumAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")

DEVNET = """
[chains.devnet]
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545"]

[chains.devnet.tokens]
USDC = "{usdc}"
WETH = "{weth}"
"""


def _load(tmp_path: Path, usdc: str = USDC, weth: str = WETH) -> ChainSpec:
    path = tmp_path / "config.toml"
    path.write_text(DEVNET.format(usdc=usdc, weth=weth))
    return load_config(path, environ={}).settings.chains["devnet"]


def _eip55(address: str) -> str:
    """EIP-55 written out from its definition (independent of eth_utils' checksum helper)."""
    body = address.lower().removeprefix("0x")
    digest = keccak(text=body).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(body))


def test_tokens_table_is_read_and_checksummed(tmp_path: Path) -> None:
    spec = _load(tmp_path, usdc=USDC.lower())
    assert spec.tokens == {"USDC": _eip55(USDC), "WETH": _eip55(WETH)}


@pytest.mark.parametrize(
    ("usdc", "needle"),
    [
        ("0x1234", "40 hex digits"),
        ("0x5FBdb2315678afecb367f032d93F642f64180aa3", "checksum"),
        ("not an address", "40 hex digits"),
    ],
)
def test_bad_token_address_names_the_chain_and_symbol(tmp_path: Path, usdc: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, usdc=usdc)
    message = str(info.value)
    assert "chains.devnet.tokens.USDC" in message
    assert needle in message
    assert str(tmp_path / "config.toml") in message


def test_blank_symbol_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(DEVNET.format(usdc=USDC, weth=WETH).replace("WETH =", '"W ETH" ='))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "chains.devnet.tokens" in str(info.value)


def test_shipped_chains_list_their_main_tokens() -> None:
    chains = load_config(environ={}).settings.chains
    for name in ("ethereum", "arbitrum", "optimism", "base", "polygon"):
        tokens = chains[name].tokens
        assert {"USDC", "WETH", "wstETH"} <= set(tokens), name
        for symbol, address in tokens.items():
            assert address == _eip55(address), (name, symbol)
    # OP-stack predeploy: WETH is 0x42..06 on Optimism and Base, nowhere else
    predeploy = "0x4200000000000000000000000000000000000006"
    assert chains["optimism"].tokens["WETH"] == chains["base"].tokens["WETH"] == predeploy
    assert chains["ethereum"].tokens["WETH"] != predeploy
    # one address per token per chain; native USDC differs on every chain
    usdc = [chains[n].tokens["USDC"] for n in chains]
    assert len(set(usdc)) == len(usdc)


def _account(chain: str | None, seen: dict[str, str] | None, *, down: bool = False) -> MarginAccount:
    as_of = AsOf(timestamp=datetime(2026, 11, 21, tzinfo=UTC), chain=chain)
    if down:
        return MarginAccount.unavailable(
            venue="aave_v3", deployment="aave_v3:devnet", account_id=WALLET, wallet=WALLET,
            margin_model=LendingModel(), as_of=as_of, reason="down",
        )
    return MarginAccount(
        venue="aave_v3", deployment="aave_v3:devnet", account_id=WALLET, wallet=WALLET,
        margin_model=LendingModel(), positions=(), as_of=as_of,
        raw={TOKEN_ADDRESSES_KEY: seen} if seen is not None else {},
    )


def test_chain_tokens_native_first_config_and_adapter_tokens_adapter_symbol_wins(tmp_path: Path) -> None:
    spec = _load(tmp_path)
    dai = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
    accounts = [
        _account("devnet", {"USDC.e": USDC.lower(), "DAI": dai}),  # same address as config USDC
        _account("other", {"OTHER": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"}),  # another chain
        _account("devnet", {"BAD": "0x12"}),
        _account("devnet", None, down=True),
    ]
    tokens, warnings = chain_tokens("devnet", spec, accounts)
    assert tokens[0].symbol == "ETH" and tokens[0].address is None
    got = {t.symbol: t.address for t in tokens[1:]}
    assert got == {"USDC.e": parse_address(USDC), "DAI": parse_address(dai), "WETH": parse_address(WETH)}
    assert len(warnings) == 1
    assert warnings[0].startswith("idle balances on devnet unknown: aave_v3:devnet reported token BAD")


def test_idle_balances_skip_zero_and_take_prices() -> None:
    def bal(token: str, amount: str) -> WalletBalance:
        return WalletBalance(WALLET, "devnet", token, None, Decimal(amount), 0, 6)

    prices = {"USDC": 0.9995, "WETH": 3000.0, "ODD": 0.0}
    out = idle_balances(
        [bal("USDC", "12.5"), bal("WETH", "0"), bal("ODD", "3"), bal("NEW", "1")], prices.get
    )
    assert [(b.token, b.amount, b.price_usd, b.location) for b in out] == [
        ("USDC", Decimal("12.5"), 0.9995, "devnet"),
        ("ODD", Decimal(3), None, "devnet"),  # a non-positive price is unknown, never 0
        ("NEW", Decimal(1), None, "devnet"),
    ]
