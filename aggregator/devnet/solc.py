"""Compile Solidity with solcjs (``devnet/node_modules/solc``, 0.8.19) through node, cached on disk.

``compile_sources(sources, settings)`` builds a standard-JSON input (``language: Solidity``; the
output selection is forced to ABI + creation + runtime bytecode), hashes it together with the solc
version read from ``node_modules/solc/package.json`` (sha256 of the canonical JSON), and looks for
``devnet/.cache/solc/<hash>.json``. On a miss it runs ``node -e <script> <path to solc>``: the script
reads the input on stdin, calls ``require(solc).compile`` and writes the output JSON on stdout. Only
the artifacts are cached (written atomically, so parallel test workers never read half a file): a
test session compiles each unit at most once, and later sessions not at all.

A compile error raises :class:`SolcError` whose message names ``file:line:col`` of each error (the
line is computed from solc's byte offset into the source we passed). Bytecode that still holds an
unlinked library placeholder (``__$...$__``) is refused: the devnet's contracts use internal libraries
only.

``compile_devnet_contracts()`` compiles this package's own stand-ins (``aggregator/devnet/solidity``:
``SettablePriceFeed``, ``CometStandIn``, the GMX Reader / DataStore stand-ins).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aggregator.devnet.artifacts import Artifact
from aggregator.devnet.paths import cache_dir, node_modules
from aggregator.errors import ConfigError, CrossmarginError

__all__ = [
    "STANDIN_SETTINGS",
    "Compilation",
    "ContractArtifact",
    "SolcError",
    "compile_devnet_contracts",
    "compile_sources",
    "read_sources",
    "solc_version",
]

# The node side: stdin -> solc.compile -> stdout. argv[1] is the absolute path of the solc package.
_NODE_SCRIPT = """
const solc = require(process.argv[1]);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8')));
});
"""
_OUTPUT_SELECTION = {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}}
_COMPILE_TIMEOUT_S = 300.0
_SOLIDITY_DIR = Path(__file__).parent / "solidity"

# Settings for our own stand-in contracts: small, readable, optimized, no metadata hash so the
# bytecode (and therefore the cache) does not depend on comments.
STANDIN_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "paris",
    "metadata": {"bytecodeHash": "none"},
}


class SolcError(CrossmarginError):
    """solc rejected the input (the message names file:line:col), or node / solcjs could not run."""


@dataclass(frozen=True)
class ContractArtifact:
    """One compiled contract: its ABI and creation / runtime bytecode as ``0x`` hex."""

    source: str
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str

    @property
    def deployable(self) -> Artifact:
        """The same contract as an :class:`~aggregator.devnet.artifacts.Artifact` for ``Txs.deploy``."""
        return Artifact(name=self.name, abi=self.abi, bytecode=self.bytecode, link_references={})


@dataclass(frozen=True)
class Compilation:
    """Every contract of one compile, keyed ``"<source path>:<ContractName>"``."""

    key: str
    contracts: dict[str, ContractArtifact]

    def get(self, name: str) -> ContractArtifact:
        """The contract called ``name`` (or ``"path:Name"``); an error if absent or ambiguous."""
        if name in self.contracts:
            return self.contracts[name]
        found = [a for a in self.contracts.values() if a.name == name]
        if len(found) != 1:
            what = "no contract" if not found else f"{len(found)} contracts"
            raise SolcError(f"{what} named {name!r} in compilation {self.key[:12]}")
        return found[0]


def solc_version() -> str:
    """The solcjs version installed in ``devnet/node_modules/solc`` (from its package.json)."""
    path = node_modules() / "solc" / "package.json"
    try:
        version = json.loads(path.read_text())["version"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the solc version from {path}: {exc}", source="devnet") from exc
    return str(version)


def read_sources(root: Path, prefix: str) -> dict[str, str]:
    """Every ``*.sol`` under ``root``, keyed ``prefix + relative path`` (POSIX separators), sorted."""
    files = sorted(root.rglob("*.sol"))
    if not files:
        raise ConfigError(f"no Solidity sources under {root}", source="devnet")
    return {prefix + f.relative_to(root).as_posix(): f.read_text() for f in files}


def compile_sources(sources: Mapping[str, str], settings: Mapping[str, Any]) -> Compilation:
    """Compile ``sources`` (path -> content) with ``settings`` (standard-JSON ``settings`` without
    ``outputSelection``), from the on-disk cache when this exact input was compiled before."""
    input_json: dict[str, Any] = {
        "language": "Solidity",
        "sources": {path: {"content": sources[path]} for path in sorted(sources)},
        "settings": {**settings, "outputSelection": _OUTPUT_SELECTION},
    }
    canonical = json.dumps({"solc": solc_version(), "input": input_json}, sort_keys=True)
    key = hashlib.sha256(canonical.encode()).hexdigest()
    cached = _cache_path(key)
    if cached.is_file():
        try:
            return _from_cache(key, json.loads(cached.read_text()))
        except (ValueError, KeyError, TypeError):
            cached.unlink(missing_ok=True)  # a corrupt entry is rebuilt, never trusted
    output = _run_solcjs(json.dumps(input_json))
    _raise_on_errors(output, sources)
    compilation = _collect(key, output)
    _write_cache(cached, compilation)
    return compilation


@cache
def compile_devnet_contracts() -> Compilation:
    """This package's stand-in contracts (``aggregator/devnet/solidity/*.sol``), keyed ``solidity/...``."""
    return compile_sources(read_sources(_SOLIDITY_DIR, "solidity/"), STANDIN_SETTINGS)


def _cache_path(key: str) -> Path:
    return cache_dir() / "solc" / f"{key}.json"


def _run_solcjs(input_text: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node is not on PATH: it is needed to run solcjs", source="devnet")
    solc_path = node_modules() / "solc"
    try:
        proc = subprocess.run(
            [node, "-e", _NODE_SCRIPT, str(solc_path)],
            input=input_text.encode(),
            capture_output=True,
            timeout=_COMPILE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SolcError(f"solcjs did not finish within {_COMPILE_TIMEOUT_S:.0f} s") from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()[-1000:]
        raise SolcError(f"solcjs (node) exited with code {proc.returncode}: {stderr}")
    try:
        output: dict[str, Any] = json.loads(proc.stdout)
    except ValueError as exc:
        raise SolcError(f"solcjs wrote no JSON: {proc.stdout[:200]!r}") from exc
    return output


def _line_col(content: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset into ``content`` (solc counts UTF-8 bytes)."""
    before = content.encode()[: max(offset, 0)].decode(errors="replace")
    line = before.count("\n") + 1
    return line, len(before) - (before.rfind("\n") + 1) + 1


def _raise_on_errors(output: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    problems: list[str] = []
    for err in output.get("errors", []):
        if err.get("severity") != "error":
            continue
        where = "<input>"
        location = err.get("sourceLocation")
        if location and location.get("file") in sources:
            line, col = _line_col(sources[location["file"]], int(location.get("start", 0)))
            where = f"{location['file']}:{line}:{col}"
        elif location and location.get("file"):
            where = str(location["file"])
        problems.append(f"{where}: {err.get('type', 'Error')}: {err.get('message', '').strip()}")
    if problems:
        raise SolcError("solc compile failed:\n  " + "\n  ".join(problems))


def _collect(key: str, output: Mapping[str, Any]) -> Compilation:
    contracts: dict[str, ContractArtifact] = {}
    for source, by_name in sorted(output.get("contracts", {}).items()):
        for name, data in sorted(by_name.items()):
            evm = data.get("evm", {})
            bytecode = "0x" + evm.get("bytecode", {}).get("object", "")
            runtime = "0x" + evm.get("deployedBytecode", {}).get("object", "")
            if "__$" in bytecode:
                raise SolcError(f"{source}:{name} needs an external library linked; not supported")
            contracts[f"{source}:{name}"] = ContractArtifact(
                source=source,
                name=name,
                abi=data.get("abi", []),
                bytecode=bytecode,
                deployed_bytecode=runtime,
            )
    if not contracts:
        raise SolcError("solc produced no contracts")
    return Compilation(key=key, contracts=contracts)


def _from_cache(key: str, data: Mapping[str, Any]) -> Compilation:
    contracts = {
        full: ContractArtifact(
            source=c["source"],
            name=c["name"],
            abi=c["abi"],
            bytecode=c["bytecode"],
            deployed_bytecode=c["deployed_bytecode"],
        )
        for full, c in data["contracts"].items()
    }
    return Compilation(key=key, contracts=contracts)


def _write_cache(path: Path, compilation: Compilation) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "contracts": {
            full: {
                "source": a.source,
                "name": a.name,
                "abi": a.abi,
                "bytecode": a.bytecode,
                "deployed_bytecode": a.deployed_bytecode,
            }
            for full, a in compilation.contracts.items()
        }
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
