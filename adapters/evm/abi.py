"""Minimal ABIs kept as JSON data (``adapters/abi/<name>.json``) and typed encode/decode helpers.

``load_contract("multicall3").function("aggregate3")`` gives a :class:`Function` whose ``selector``
is ``keccak(canonical signature)[:4]`` and whose ``encode`` / ``decode`` use ``eth_abi`` with the
canonical input / output types (tuples written as ``(t1,t2,...)``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from adapters.addresses import ChecksumAddress
from adapters.base import Call

__all__ = ["ABI_DIR", "Contract", "Function", "canonical_type", "load_contract"]

ABI_DIR = Path(__file__).resolve().parent.parent / "abi"


def canonical_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of one parameter: ``tuple[]`` becomes ``(address,bool,bytes)[]``."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


@dataclass(frozen=True, slots=True)
class Function:
    """One ABI function: selector, canonical input and output types."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        return bytes(keccak(text=self.signature)[:4])

    def encode(self, *args: Any) -> bytes:
        """Selector followed by the ABI-encoded arguments."""
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.signature} takes {len(self.inputs)} arguments, got {len(args)}")
        return self.selector + bytes(abi_encode(list(self.inputs), list(args)))

    def call(self, target: ChecksumAddress, *args: Any) -> Call:
        """A :class:`adapters.base.Call` of this function on ``target``."""
        return Call(target=target, data=self.encode(*args))

    def decode(self, data: bytes) -> tuple[Any, ...]:
        """The decoded outputs (raises ``eth_abi`` decoding errors on malformed data)."""
        return tuple(abi_decode(list(self.outputs), data))


@dataclass(frozen=True, slots=True)
class Contract:
    name: str
    functions: Mapping[str, Function]

    def function(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f"{self.name} ABI has no function {name!r}") from None


def _function(entry: Mapping[str, Any]) -> Function:
    return Function(
        name=str(entry["name"]),
        inputs=tuple(canonical_type(p) for p in entry.get("inputs", ())),
        outputs=tuple(canonical_type(p) for p in entry.get("outputs", ())),
    )


def contract_from_abi(name: str, abi: Sequence[Mapping[str, Any]]) -> Contract:
    """A :class:`Contract` from ABI entries (overloaded names: the first wins)."""
    functions: dict[str, Function] = {}
    for entry in abi:
        if entry.get("type") == "function":
            functions.setdefault(str(entry["name"]), _function(entry))
    return Contract(name=name, functions=functions)


@cache
def load_contract(name: str) -> Contract:
    """The contract whose ABI is ``adapters/abi/<name>.json``."""
    path = ABI_DIR / f"{name}.json"
    data = json.loads(path.read_text())
    return contract_from_abi(name, data)
