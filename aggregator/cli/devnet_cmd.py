"""``crossmargin devnet``: a local chain with real Aave V3 (and Morpho / Comet stand-in / venue API
servers where present) for trying everything offline.

- ``up``: start anvil and the venue server detached (they outlive the command), deploy, seed the demo
  book, write the state file and a user config pointing every family and venue at the devnet.
- ``price FACTOR USD``: move a factor everywhere at once (``aggregator.devnet.network.Devnet.set_price``).
- ``warp DURATION``: ``evm_increaseTime`` + mine, so interest accrues.
- ``status``: processes, RPC, block, prices, each demo wallet's Aave health factor.
- ``down``: stop only the PIDs recorded in the state file (checked to be anvil / the venue server).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aggregator.cli.app import out_console
from aggregator.devnet.aave import pool
from aggregator.devnet.anvil import pid_alive, stop_pid
from aggregator.devnet.network import connect, parse_duration, start_devnet
from aggregator.devnet.paths import default_state_path
from aggregator.devnet.state import DevnetNotRunning, DevnetState, load_state, remove_state, save_state
from aggregator.devnet.user_config import default_config_path, write_user_config
from aggregator.errors import InputError

__all__ = ["devnet_app"]

devnet_app = typer.Typer(
    help="Local devnet: anvil with real Aave V3 and local venue APIs.", no_args_is_help=True
)

StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state", help="State file (default: $XDG_DATA_HOME/crossmargin/devnet/state.json).", dir_okay=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

_PROCESS_MARKERS = {"anvil": "anvil", "venue": "aggregator.devnet.venues"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ours(pid: int | None, kind: str) -> bool:
    """The PID is alive and still runs what the devnet started (not a recycled PID)."""
    return bool(pid) and pid_alive(pid) and _PROCESS_MARKERS[kind] in _cmdline(pid)  # type: ignore[arg-type]


def _summary(state: DevnetState, state_path: Path) -> dict[str, Any]:
    return {
        "rpc_url": state.rpc_url,
        "api_url": state.api_url,
        "chain_id": state.chain_id,
        "state_file": str(state_path),
        "config_file": state.config_path,
        "wallets": state.wallets,
        "factor_prices": state.factor_prices,
        "aave_pool_addresses_provider": state.aave["pool_addresses_provider"],
        "notes": state.notes,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    out_console.print(f"RPC URL : {summary['rpc_url']}  (chain id {summary['chain_id']})")
    out_console.print(f"API URL : {summary['api_url'] or '-'}")
    out_console.print(f"config  : {summary['config_file']}  (use --config or CROSSMARGIN_CONFIG)")
    out_console.print(f"state   : {summary['state_file']}")
    table = Table("wallet", "address", title="demo wallets")
    for name, address in summary["wallets"].items():
        table.add_row(name, address)
    out_console.print(table)
    for note in summary["notes"]:
        out_console.print(f"note: {note}")


def _load_running(state_path: Path | None) -> DevnetState:
    state = load_state(state_path)
    if not _ours(state.anvil_pid, "anvil"):
        raise DevnetNotRunning(
            f"the devnet's anvil (pid {state.anvil_pid}) is not running: "
            "run `crossmargin devnet down`, then `up`"
        )
    return state


@devnet_app.command("up")
def up(
    state_file: StateOption = None,
    config_out: Annotated[
        Path | None,
        typer.Option("--config-out", help="Where to write the user config (default: next to the state)."),
    ] = None,
    no_venues: Annotated[bool, typer.Option("--no-venues", help="Do not start the venue server.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start the devnet detached, deploy and seed it, write the state file and a user config.

    Examples:
      crossmargin devnet up
      crossmargin devnet status
    """
    state_path = state_file or default_state_path()
    if state_path.exists():
        try:
            existing = load_state(state_path)
        except DevnetNotRunning:
            existing = None
        if existing is not None and _ours(existing.anvil_pid, "anvil"):
            raise InputError(
                f"the devnet is already up at {existing.rpc_url}: `crossmargin devnet down` first"
            )
    net = start_devnet(detached=True, log_dir=state_path.parent / "logs", with_venues=not no_venues)
    try:
        config_path = write_user_config(net.state, config_out or default_config_path(state_path))
        net.state.config_path = str(config_path)
        save_state(net.state, state_path)
    except BaseException:
        net.stop()
        raise
    summary = _summary(net.state, state_path)
    if as_json:
        out_console.print_json(json.dumps(summary))
    else:
        _print_summary(summary)


@devnet_app.command("price")
def price(
    factor: Annotated[str, typer.Argument(help="Risk factor, e.g. ETH or BTC.")],
    usd: Annotated[str, typer.Argument(help="New USD price, e.g. 2500.")],
    state_file: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move a factor's price everywhere at once (Aave, Morpho, Comet stand-in, venue servers).

    Examples:
      crossmargin devnet price ETH 2500
      crossmargin devnet price BTC 55000
    """
    try:
        value = Decimal(usd)
    except InvalidOperation as exc:
        raise InputError(f"cannot read price {usd!r}: give a number such as 2500") from exc
    if not value.is_finite():
        raise InputError(f"price must be a finite number, got {usd!r}")
    state_path = state_file or default_state_path()
    net = connect(_load_running(state_path))
    moved = net.set_price(factor.upper() if factor.upper() in net.state.factor_prices else factor, value)
    save_state(net.state, state_path)
    if as_json:
        out_console.print_json(json.dumps({"factor_prices": net.state.factor_prices, "moved": moved}))
    else:
        for line in moved:
            out_console.print(line)


@devnet_app.command("warp")
def warp(
    duration: Annotated[str, typer.Argument(help="How far to move time: 90, 30s, 15m, 12h, 1d, 2w.")],
    state_file: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move chain time forward (evm_increaseTime + mine) so interest accrues.

    Examples:
      crossmargin devnet warp 30d
      crossmargin devnet warp 3600
    """
    seconds = parse_duration(duration)
    net = connect(_load_running(state_file))
    timestamp = net.warp(seconds)
    if as_json:
        out_console.print_json(json.dumps({"seconds": seconds, "block_timestamp": timestamp}))
    else:
        out_console.print(f"warped {seconds} s; block timestamp now {timestamp}")


@devnet_app.command("status")
def status(state_file: StateOption = None, as_json: JsonOption = False) -> None:
    """Is the devnet up; block, prices and each demo wallet's Aave health factor.

    Examples:
      crossmargin devnet status
    """
    state_path = state_file or default_state_path()
    net = connect(_load_running(state_path))
    block = net.w3.eth.get_block("latest")
    aave_pool = pool(net.txs, net.aave)
    health: dict[str, str] = {}
    for name, address in net.state.wallets.items():
        data = aave_pool.functions.getUserAccountData(address).call()
        health[name] = "-" if data[1] == 0 else f"{Decimal(data[5]) / Decimal(10**18):.4f}"
    result = {
        **_summary(net.state, state_path),
        "anvil_pid": net.state.anvil_pid,
        "venue_pid": net.state.venue_pid,
        "venue_running": _ours(net.state.venue_pid, "venue") if net.state.venue_pid else None,
        "block_number": block["number"],
        "block_timestamp": block["timestamp"],
        "aave_health_factors": health,
    }
    if as_json:
        out_console.print_json(json.dumps(result))
        return
    out_console.print(f"devnet up: block {result['block_number']} at {result['block_timestamp']}")
    out_console.print(f"RPC URL : {net.state.rpc_url}   API URL : {net.state.api_url or '-'}")
    out_console.print("prices  : " + ", ".join(f"{k} {v}" for k, v in net.state.factor_prices.items()))
    table = Table("wallet", "address", "Aave HF")
    for name, address in net.state.wallets.items():
        table.add_row(name, address, health[name])
    out_console.print(table)
    for note in net.state.notes:
        out_console.print(f"note: {note}")


@devnet_app.command("down")
def down(state_file: StateOption = None) -> None:
    """Stop the processes `up` started (by PID, from the state file) and remove the state file.

    Examples:
      crossmargin devnet down
    """
    state_path = state_file or default_state_path()
    state = load_state(state_path)
    stopped: list[str] = []
    for kind, pid in (("venue", state.venue_pid), ("anvil", state.anvil_pid)):
        if pid and _ours(pid, kind) and stop_pid(pid):
            stopped.append(f"{kind} (pid {pid})")
    remove_state(state_path)
    out_console.print(
        "stopped " + ", ".join(stopped) if stopped else "nothing was running; state file removed"
    )
