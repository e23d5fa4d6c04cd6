"""Bring the whole devnet up, move prices, warp time, tear it down.

``start_devnet`` does, in order: anvil on a free port; Multicall3 at its canonical address; the test
tokens; Aave V3 (``aave.deploy_aave``); Morpho Blue and the Comet stand-in when the solidity helper's
``aggregator.devnet.morpho`` / ``aggregator.devnet.comet`` modules exist (otherwise a note in the state
says they were skipped); the demo book seeded with block timestamps frozen so the seeded figures are
exact (``anvil_setBlockTimestampInterval 0``; time follows the wall clock again afterwards); the venue
API server process (``python -m aggregator.devnet.venues --port N``) when that package exists.
With the venue server, the GMX v2 Reader / DataStore stand-ins (``aggregator.devnet.gmx``) are
deployed and seeded, and the server's GMX tickers point at the devnet tokens (``state.gmx``); and the
Aevo / Deribit server process (``python -m aggregator.devnet.venues.aevo --port M --exit-with
<anvil pid>``, so it also ends when ``crossmargin devnet down`` stops anvil) is started and seeded with
the devnet's own throwaway credentials (``state.credentials``, ``venue_client.seed_credentialed``);
``state.venues["api_urls"]`` gets ``aevo`` (its root) and ``deribit`` (``/api/v2``).

``Devnet.set_price(factor, usd)`` moves a factor everywhere at once: the Aave price source of every
token priced in that factor (``market.TOKENS``: price = factor price × ratio), the Morpho and Comet
oracles, and both venue servers' marks/oracles/indexes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from eth_typing import ChecksumAddress
from web3 import Web3

from aggregator.devnet import venue_client
from aggregator.devnet.aave import AaveDeployment, deploy_aave, set_aave_prices
from aggregator.devnet.anvil import CHAIN_ID, AnvilError, AnvilProcess, free_port, start_anvil, stop_pid
from aggregator.devnet.book import WALLET_INDEX, seed_aave
from aggregator.devnet.gmx import deploy_and_seed as deploy_gmx_and_seed
from aggregator.devnet.market import INITIAL_FACTOR_PRICES, TOKENS, token_price
from aggregator.devnet.multicall3 import install_multicall3
from aggregator.devnet.state import DevnetNotRunning, DevnetState
from aggregator.devnet.tokens import deploy_tokens
from aggregator.devnet.txs import Txs
from aggregator.errors import InputError

__all__ = ["Devnet", "connect", "parse_duration", "start_devnet"]

VENUE_START_TIMEOUT_S = 15.0


@dataclass
class Devnet:
    """A running devnet: its state plus, when this process started it, the process handles."""

    state: DevnetState
    w3: Web3
    txs: Txs
    anvil: AnvilProcess | None = None
    venue_process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    cred_venue_process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def rpc_url(self) -> str:
        return self.state.rpc_url

    @property
    def api_url(self) -> str | None:
        return self.state.api_url

    @property
    def aave(self) -> AaveDeployment:
        return AaveDeployment.from_dict(self.state.aave)

    @property
    def tokens(self) -> dict[str, ChecksumAddress]:
        return {k: Web3.to_checksum_address(v) for k, v in self.state.tokens.items()}

    @property
    def wallets(self) -> dict[str, ChecksumAddress]:
        return {k: Web3.to_checksum_address(v) for k, v in self.state.wallets.items()}

    @property
    def factor_prices(self) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in self.state.factor_prices.items()}

    def set_price(self, factor: str, price: Decimal) -> list[str]:
        """Move ``factor`` to ``price`` USD everywhere; returns what was moved (for the CLI)."""
        if factor not in self.state.factor_prices:
            known = ", ".join(sorted(self.state.factor_prices))
            raise InputError(f"unknown factor {factor!r}: the devnet prices {known}")
        if price <= 0:
            raise InputError(f"price must be positive, got {price}")
        prices = {**self.factor_prices, factor: price}
        moved: list[str] = []
        aave_prices = {t.symbol: token_price(t, prices) for t in TOKENS if t.factor == factor}
        set_aave_prices(self.txs, self.aave, aave_prices)
        moved += [f"aave oracle {s} = {p}" for s, p in aave_prices.items()]
        moved += _optional_price_hooks(self, factor, prices)
        if self.state.api_url:
            venue_client.set_price(self.state.api_url, factor, price)
            moved.append(f"venue servers {factor} mark/oracle/index = {price}")
        if self.state.cred_api_url:
            venue_client.set_price(self.state.cred_api_url, factor, price)
            moved.append(f"aevo/deribit server {factor} mark/index = {price}")
        self.state.factor_prices = {k: str(v) for k, v in prices.items()}
        return moved

    def warp(self, seconds: int) -> int:
        """``evm_increaseTime`` + ``evm_mine``; returns the new block timestamp."""
        if seconds <= 0:
            raise InputError(f"warp needs a positive duration, got {seconds} s")
        self.txs.rpc("evm_increaseTime", [seconds])
        self.txs.rpc("evm_mine", [])
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def stop(self) -> None:
        """Stop the processes this devnet started (handles if held, else PIDs from the state)."""
        if self.cred_venue_process is not None:
            _terminate(self.cred_venue_process)
            self.cred_venue_process = None
        elif self.state.cred_venue_pid:
            stop_pid(self.state.cred_venue_pid)
        if self.venue_process is not None:
            _terminate(self.venue_process)
            self.venue_process = None
        elif self.state.venue_pid:
            stop_pid(self.state.venue_pid)
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None
        elif self.state.anvil_pid:
            stop_pid(self.state.anvil_pid)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _optional_price_hooks(devnet: Devnet, factor: str, prices: dict[str, Decimal]) -> list[str]:
    """Morpho / Comet price moves, when those parts were deployed (see ``optional_parts``)."""
    from aggregator.devnet import optional_parts

    return optional_parts.set_prices(devnet.txs, devnet.state, factor, prices)


def _web3(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def _venue_server_available(module: str = "aggregator.devnet.venues.__main__") -> bool:
    """The venue server module is there and runnable (``python -m aggregator.devnet.venues``)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


CRED_MODULE = "aggregator.devnet.venues.aevo"


def _start_venue_server(
    *,
    detached: bool,
    log_path: Path | None,
    module: str = "aggregator.devnet.venues",
    extra_args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m <module> --port <free> [extra_args]``; returns once ``GET /`` answers."""
    port = free_port()
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=detached,
        )
    finally:
        if not isinstance(out, int):
            out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + VENUE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AnvilError(f"{module} exited with code {process.returncode} (log: {log_path})")
        try:
            httpx.get(url + "/", timeout=0.5)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    process.wait(timeout=5)
    raise AnvilError(f"{module} on {url} did not answer within {VENUE_START_TIMEOUT_S:.0f} s")


def start_devnet(
    *,
    detached: bool = False,
    log_dir: Path | None = None,
    with_venues: bool = True,
    block_time: float | None = None,
) -> Devnet:
    """Start and seed the whole devnet (see the module docstring). On failure nothing is left running."""
    notes: list[str] = []
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    anvil = start_anvil(
        detached=detached,
        block_time=block_time,
        log_path=log_dir / "anvil.log" if log_dir else None,
    )
    venue_process: subprocess.Popen[bytes] | None = None
    cred_process: subprocess.Popen[bytes] | None = None
    try:
        w3 = _web3(anvil.rpc_url)
        txs = Txs(w3)
        accounts = [Web3.to_checksum_address(a) for a in w3.eth.accounts]
        wallets = {name: accounts[i] for name, i in WALLET_INDEX.items()}
        deployer = wallets["deployer"]
        multicall3 = install_multicall3(w3)
        txs.rpc("anvil_setBlockTimestampInterval", [0])
        tokens = deploy_tokens(txs, deployer)
        aave = deploy_aave(txs, deployer, tokens, INITIAL_FACTOR_PRICES, treasury=wallets["treasury"])
        state = DevnetState(
            rpc_url=anvil.rpc_url,
            chain_id=CHAIN_ID,
            multicall3=multicall3,
            tokens=dict(tokens),
            wallets=dict(wallets),
            factor_prices={k: str(v) for k, v in INITIAL_FACTOR_PRICES.items()},
            aave=aave.to_dict(),
            seed_block=0,
            anvil_pid=anvil.pid,
            notes=notes,
            log_dir=str(log_dir) if log_dir else None,
        )
        from aggregator.devnet import optional_parts

        optional_parts.deploy(txs, state)
        seed_aave(txs, aave, tokens, wallets)
        optional_parts.seed(txs, state)
        state.seed_block = w3.eth.block_number
        txs.rpc("anvil_removeBlockTimestampInterval", [])
        if with_venues:
            if _venue_server_available():
                venue_process, state.api_url = _start_venue_server(
                    detached=detached, log_path=log_dir / "venues.log" if log_dir else None
                )
                state.venue_pid = venue_process.pid
                state.venues = venue_client.seed(state.api_url, state)
                state.gmx = deploy_gmx_and_seed(txs, deployer, dict(tokens), dict(wallets), state.api_url)
            else:
                notes.append("venue servers skipped: aggregator.devnet.venues is not installed")
            if _venue_server_available(CRED_MODULE):
                cred_process = _start_cred_server(state, anvil.pid, detached=detached, log_dir=log_dir)
            else:
                notes.append(f"Aevo / Deribit server skipped: {CRED_MODULE} is not installed")
        return Devnet(
            state=state,
            w3=w3,
            txs=txs,
            anvil=anvil,
            venue_process=venue_process,
            cred_venue_process=cred_process,
        )
    except BaseException:
        for process in (cred_process, venue_process):
            if process is not None:
                process.kill()
                process.wait(timeout=5)
        anvil.stop()
        raise


def _start_cred_server(
    state: DevnetState, anvil_pid: int, *, detached: bool, log_dir: Path | None
) -> subprocess.Popen[bytes]:
    """Start the Aevo / Deribit server (it exits with anvil), seed it with fresh throwaway
    credentials, and record URL, PID, credentials and the venues' API URLs / accounts in ``state``.
    On a seeding failure the process is stopped before the error propagates."""
    process, state.cred_api_url = _start_venue_server(
        detached=detached,
        log_path=log_dir / "venues-aevo-deribit.log" if log_dir else None,
        module=CRED_MODULE,
        extra_args=("--exit-with", str(anvil_pid)),
    )
    try:
        state.cred_venue_pid = process.pid
        state.credentials = venue_client.new_credentials()
        seeded = venue_client.seed_credentialed(state.cred_api_url, state, state.credentials)
        venues = state.venues or {}
        state.venues = {
            **venues,
            **{k: v for k, v in seeded.items() if k not in ("api_urls", "accounts")},
            "api_urls": {**venues.get("api_urls", {}), **seeded["api_urls"]},
            "accounts": {**venues.get("accounts", {}), **seeded["accounts"]},
        }
    except BaseException:
        process.kill()
        process.wait(timeout=5)
        raise
    return process


def connect(state: DevnetState) -> Devnet:
    """A handle on a devnet started elsewhere (by ``crossmargin devnet up``); checks the node answers."""
    w3 = _web3(state.rpc_url)
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:
        raise DevnetNotRunning(
            f"the devnet RPC {state.rpc_url} does not answer ({type(exc).__name__}): "
            "run `crossmargin devnet down`, then `up`"
        ) from exc
    if chain_id != state.chain_id:
        raise DevnetNotRunning(f"{state.rpc_url} answers chain id {chain_id}, expected {state.chain_id}")
    return Devnet(state=state, w3=w3, txs=Txs(w3))


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """``"90"``, ``"30s"``, ``"15m"``, ``"12h"``, ``"1d"``, ``"2w"`` -> seconds (positive integer)."""
    raw = text.strip().lower()
    unit = raw[-1] if raw and raw[-1] in _UNITS else "s"
    number = raw[:-1] if raw and raw[-1] in _UNITS else raw
    try:
        value = Decimal(number) * _UNITS[unit]
    except ArithmeticError as exc:
        raise InputError(f"cannot read duration {text!r}: use e.g. 90, 30s, 15m, 12h, 1d, 2w") from exc
    if value <= 0 or value != value.to_integral_value():
        raise InputError(f"duration {text!r} must be a positive whole number of seconds")
    return int(value)


def describe(state: DevnetState) -> dict[str, Any]:
    """A summary for `status` / `up` output."""
    return {
        "rpc_url": state.rpc_url,
        "api_url": state.api_url,
        "cred_api_url": state.cred_api_url,
        "chain_id": state.chain_id,
        "wallets": state.wallets,
        "factor_prices": state.factor_prices,
        "notes": state.notes,
    }
