"""Start and stop an anvil node on 127.0.0.1.

``start_anvil`` picks a free port (or takes one), launches the binary from ``devnet/node_modules``
with chain id 31337, the default mnemonic (``test test ... junk``: the ten well-known dev accounts with
10,000 ETH each), no contract-size limit (Aave's Pool is larger than EIP-170 allows) and a
1e9 block gas limit, then polls ``eth_chainId`` until the node answers. With ``detached=True`` the
process gets its own session and outlives the Python process that started it (``crossmargin devnet
up``); ``stop_pid`` ends such a process later by its PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aggregator.devnet.multicall3 import MULTICALL3_ADDRESS, install_multicall3
from aggregator.devnet.paths import anvil_binary
from aggregator.errors import CrossmarginError

__all__ = [
    "CHAIN_ID",
    "MULTICALL3_ADDRESS",
    "AnvilError",
    "AnvilProcess",
    "free_port",
    "install_multicall3",
    "pid_alive",
    "start_anvil",
    "stop_pid",
]

CHAIN_ID = 31337
HOST = "127.0.0.1"
GAS_LIMIT = 1_000_000_000
START_TIMEOUT_S = 15.0


class AnvilError(CrossmarginError):
    """anvil could not be started or did not answer."""


@dataclass
class AnvilProcess:
    """A running anvil node. ``stop()`` terminates it (idempotent)."""

    port: int
    process: subprocess.Popen[bytes] | None = field(repr=False)
    pid: int
    log_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            self.process = None
        else:
            stop_pid(self.pid)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _answers(rpc_url: str) -> bool:
    try:
        response = httpx.post(
            rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1.0
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("result") == hex(CHAIN_ID)


def start_anvil(
    *,
    port: int | None = None,
    block_time: float | None = None,
    detached: bool = False,
    log_path: Path | None = None,
) -> AnvilProcess:
    """Launch anvil and wait until it answers ``eth_chainId`` (at most ``START_TIMEOUT_S``).

    With ``port=None`` a free port is chosen; if another process grabs it first, a new one is tried
    (three attempts). ``log_path`` receives anvil's stdout/stderr (otherwise they are discarded,
    stderr is kept for the error message).
    """
    attempts = 1 if port is not None else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        args = [
            str(anvil_binary()),
            "--host", HOST,
            "--port", str(chosen),
            "--chain-id", str(CHAIN_ID),
            "--gas-limit", str(GAS_LIMIT),
            "--disable-code-size-limit",
            "--silent",
        ]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out if log_path is not None else subprocess.PIPE,
                start_new_session=detached,
            )
        finally:
            if log_path is not None and not isinstance(out, int):
                out.close()
        anvil = AnvilProcess(port=chosen, process=process, pid=process.pid, log_path=log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                last_error = f"anvil exited with code {process.returncode}: {stderr.strip()[-500:]}"
                break
            if _answers(anvil.rpc_url):
                if process.stderr is not None:
                    # Nothing reads it from here on: stop a chatty node from blocking on a full pipe.
                    process.stderr.close()
                    process.stderr = None
                return anvil
            time.sleep(0.05)
        else:
            anvil.stop()
            last_error = f"anvil on port {chosen} did not answer within {START_TIMEOUT_S:.0f} s"
    raise AnvilError(last_error)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, *, timeout: float = 5.0) -> bool:
    """SIGTERM one process by PID, then SIGKILL after ``timeout``. Returns whether it was running."""
    if not pid_alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return True
