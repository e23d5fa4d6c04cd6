"""Idle wallet balances on the devnet: read, used by the rebalancing advice, and applied for real.

The demo book (``aggregator.devnet.book``) leaves tokens in two wallets, outside every account:
``IDLE_BOOK`` (minted) plus what each borrowed on Aave (borrowed tokens land in the wallet). The
balances ``run_cycle`` reports must equal ``balanceOf`` read directly with web3 at the scan's block and
those funded amounts. The advice must use them: idle USDC repays the weakest Aave account
(``near_liquidation``, HF 1.0501). Sending the advised moves to the real Pool and scanning again gives
the CHF the advice predicted (one block of interest between the reads: tolerance 1e-6).

A token whose ``balanceOf`` reverts or returns garbage is a warning in the report, never a failed scan
and never a zero.
"""

from __future__ import annotations

import asyncio
import copy
import math
from decimal import Decimal
from pathlib import Path

import pytest
from web3 import Web3

from adapters.addresses import ChecksumAddress
from aggregator.config import Settings, load_config
from aggregator.devnet import aave as devnet_aave
from aggregator.devnet.book import AAVE_BOOK, IDLE_BOOK, to_base_units
from aggregator.devnet.market import TOKENS
from aggregator.devnet.network import Devnet
from aggregator.devnet.tokens import erc20
from aggregator.devnet.user_config import DEVNET_CHAIN, render_user_config
from aggregator.pipeline import CycleResult, run_cycle
from risk.assessment import RebalanceMove
from tests.devnet.lending_support import fund_wallet
from tests.devnet.test_lending_fidelity import _send
from tests.support.rpc_proxy import RpcProxy

pytestmark = pytest.mark.devnet

DECIMALS = {t.symbol: t.decimals for t in TOKENS}
NAMES = ("near_liquidation", "hedged")


def _settings(tmp_path: Path, devnet: Devnet, extra_tokens: dict[str, str] | None = None) -> Settings:
    state = copy.deepcopy(devnet.state)
    state.tokens.update(extra_tokens or {})
    text = render_user_config(state)
    path = tmp_path / "config.toml"
    path.write_text(text + "\n[risk]\nmc_paths = 200\nmc_steps = 4\n")
    return load_config(path, environ={}).settings


def _cycle(settings: Settings, wallets: list[ChecksumAddress]) -> CycleResult:
    return asyncio.run(
        run_cycle(settings, portfolio="idle", wallets=wallets, only="aave_v3:devnet", rng_seed=7)
    )


def _wallets(devnet: Devnet) -> list[ChecksumAddress]:
    return [ChecksumAddress(Web3.to_checksum_address(devnet.wallets[n])) for n in NAMES]


def test_devnet_config_lists_the_devnet_tokens(devnet: Devnet, tmp_path: Path) -> None:
    spec = _settings(tmp_path, devnet).chains[DEVNET_CHAIN]
    assert spec.tokens == {s: Web3.to_checksum_address(a) for s, a in devnet.tokens.items()}


def test_balances_equal_balance_of_and_the_funded_amounts(devnet: Devnet, tmp_path: Path) -> None:
    wallets = _wallets(devnet)
    result = _cycle(_settings(tmp_path, devnet), wallets)
    block = result.scan.blocks[DEVNET_CHAIN].number
    got = {(b.wallet, b.token): b for b in result.report.idle_balances}
    assert not [w for w in result.report.warnings if w.startswith("idle balances")]

    for name, wallet in zip(NAMES, wallets, strict=True):
        for symbol, address in devnet.tokens.items():
            direct = erc20(devnet.txs, address).functions.balanceOf(wallet).call(block_identifier=block)
            entry = got.get((wallet, symbol))
            if direct == 0:
                assert entry is None, (name, symbol)  # only non-zero balances
                continue
            assert entry is not None, (name, symbol)
            assert entry.amount == Decimal(direct).scaleb(-DECIMALS[symbol])
            assert entry.chain == DEVNET_CHAIN
            # the book: what was minted idle plus what was borrowed (unchanged since seeding)
            funded = IDLE_BOOK.get(name, {}).get(symbol, Decimal(0)) + AAVE_BOOK[name].borrow.get(
                symbol, Decimal(0)
            )
            assert direct == to_base_units(symbol, funded), (name, symbol)
        native = devnet.w3.eth.get_balance(Web3.to_checksum_address(wallet), block_identifier=block)
        assert got[(wallet, "ETH")].amount == Decimal(native).scaleb(-18)

    # priced at the cycle's factor prices: USDC on the USD factor, WETH on ETH
    eth = float(devnet.factor_prices["ETH"])
    usdc = got[(wallets[0], "USDC")]
    weth = got[(wallets[1], "WETH")]
    assert weth.price_usd == pytest.approx(eth, rel=1e-9)
    assert usdc.price_usd == pytest.approx(1.0, rel=1e-6)
    assert weth.value_usd == pytest.approx(float(weth.amount) * eth, rel=1e-9)


def _apply(devnet: Devnet, move: RebalanceMove, wallets: dict[str, ChecksumAddress]) -> None:
    """Send ``move`` to the real Pool: the source wallet pays (after withdrawing, for an account
    source); the destination account's wallet is ``onBehalfOf``."""
    token = devnet.tokens[move.token]
    pool = devnet_aave.pool(devnet.txs, devnet.aave)
    amount = int(Decimal(repr(move.amount)).scaleb(DECIMALS[move.token]))
    if move.source.startswith("wallet "):
        payer = next(w for w in wallets.values() if w in move.source)
    else:
        payer = next(w for w in wallets.values() if move.source.endswith(w))
        fund_wallet(devnet.w3, Web3.to_checksum_address(payer))
        _send(devnet, pool.functions.withdraw(token, amount, payer), payer)
    beneficiary = next(w for w in wallets.values() if move.destination.endswith(w))
    fund_wallet(devnet.w3, Web3.to_checksum_address(payer))
    _send(devnet, erc20(devnet.txs, token).functions.approve(devnet.aave.pool, amount), payer)
    if move.action == "repay":
        _send(devnet, pool.functions.repay(token, amount, 2, beneficiary), payer)
    else:
        _send(devnet, pool.functions.supply(token, amount, beneficiary, 0), payer)


def test_advice_uses_idle_balances_and_doing_it_gives_the_predicted_chf(
    fresh_devnet: Devnet, tmp_path: Path
) -> None:
    devnet = fresh_devnet
    wallets = _wallets(devnet)
    by_name = dict(zip(NAMES, wallets, strict=True))
    settings = _settings(tmp_path, devnet)
    result = _cycle(settings, wallets)
    assert result.assessment is not None
    weakest = f"aave_v3:{DEVNET_CHAIN}/{by_name['near_liquidation']}"
    assert result.assessment.chf_account == weakest
    price = float(devnet.factor_prices["ETH"])
    assert result.assessment.chf == pytest.approx(5 * price * 0.825 / 11_785, rel=1e-6)

    moves = result.assessment.rebalancing
    assert moves, "idle USDC can repay the weakest account's debt"
    idle_moves = [m for m in moves if m.source.startswith("wallet ")]
    assert idle_moves, [m.source for m in moves]
    first = next(m for m in idle_moves if m.destination == weakest)
    assert first.token == "USDC" and first.action == "repay"
    assert first.source_location == first.destination_location == DEVNET_CHAIN and not first.slow
    assert first.chf_after > first.chf_before
    # never more than the wallets hold
    held = {(b.wallet, b.token): b.amount for b in result.report.idle_balances}
    for m in idle_moves:
        wallet = next(w for w in wallets if w in m.source)
        assert Decimal(repr(m.amount)) <= held[(wallet, m.token)]
    # the report and the Rich line carry the same balances
    assert result.report.composite is not None
    assert len(result.report.composite.rebalancing) == len(moves)

    for move in moves:
        _apply(devnet, move, by_name)
    again = _cycle(settings, wallets)
    assert again.assessment is not None
    assert math.isfinite(moves[-1].chf_after)  # a debt left: a real figure, not "no debt anywhere"
    assert again.assessment.chf == pytest.approx(moves[-1].chf_after, rel=1e-6)


REVERTS = "0x60006000fd"  # REVERT(0, 0)
SHORT = "0x60056000f3"  # RETURN(0, 5): five bytes, not an ABI word
HUGE = "0x7f" + "ff" * 32 + "60005260206000f3"  # returns 2**256 - 1 for every call (not a uint8)
WIDE = "0x60c860005260206000f3"  # returns 200 for every call: a uint8, but no token has 200 decimals


def test_bad_tokens_are_warnings_not_a_failed_scan(fresh_devnet: Devnet, tmp_path: Path) -> None:
    devnet = fresh_devnet
    bad = {
        "REVERTS": "0x00000000000000000000000000000000000b0001",
        "SHORT": "0x00000000000000000000000000000000000B0002",
        "HUGE": "0x00000000000000000000000000000000000b0003",
        "NOCODE": "0x00000000000000000000000000000000000b0004",
        "WIDE": "0x00000000000000000000000000000000000b0005",
    }
    for symbol, code in (("REVERTS", REVERTS), ("SHORT", SHORT), ("HUGE", HUGE), ("WIDE", WIDE)):
        devnet.txs.rpc("anvil_setCode", [bad[symbol], code])
    wallets = _wallets(devnet)
    result = _cycle(_settings(tmp_path, devnet, extra_tokens=bad), wallets)

    warnings = [w for w in result.report.warnings if w.startswith(f"idle balances on {DEVNET_CHAIN} unknown: ")]
    for symbol in bad:
        assert any(f": {symbol} (" in w for w in warnings), (symbol, warnings)
    assert "out of range" in next(w for w in warnings if ": HUGE (" in w)
    assert "decimals() returned 200" in next(w for w in warnings if ": WIDE (" in w)
    assert "reverted or returned nothing" in next(w for w in warnings if ": NOCODE (" in w)
    tokens = {b.token for b in result.report.idle_balances}
    assert not tokens & set(bad)  # never a zero, never a made-up amount
    assert {"USDC", "WETH", "ETH"} <= tokens  # the good tokens are still read
    assert result.assessment is not None and result.report.composite is not None
    assert not result.scan.any_unavailable


def test_a_chain_that_cannot_be_read_is_a_warning(devnet: Devnet, tmp_path: Path) -> None:
    """The scan pinned and read the chain, then its RPC endpoint started failing (HTTP 500 at the
    transport, ``tests.support.rpc_proxy``): the idle read is a warning, the figures stand."""
    wallets = _wallets(devnet)

    async def run() -> CycleResult:
        async with RpcProxy(devnet.rpc_url) as proxy:
            state = copy.deepcopy(devnet.state)
            state.rpc_url = proxy.url
            path = tmp_path / "config.toml"
            path.write_text(render_user_config(state) + "\n[risk]\nmc_paths = 200\nmc_steps = 4\n")
            settings = load_config(path, environ={}).settings

            def fail_after_scan(deployment: str, event: str) -> None:
                if event in ("done", "failed"):
                    proxy.mode = "http500"

            return await run_cycle(
                settings, portfolio="idle", wallets=wallets, only="aave_v3:devnet", progress=fail_after_scan
            )

    result = asyncio.run(run())
    assert not result.scan.any_unavailable  # the accounts were read before the endpoint failed
    warning = next(w for w in result.report.warnings if w.startswith(f"idle balances on {DEVNET_CHAIN} unknown: "))
    assert "500" in warning or "unavailable" in warning.lower(), warning
    assert result.report.idle_balances == ()
    assert result.assessment is not None
