"""solcjs through node: the on-disk cache (no node process on a hit) and compile errors that name the
source file and line."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.devnet import solc
from aggregator.devnet.morpho import compile_morpho

pytestmark = pytest.mark.devnet

SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

contract Counter {
    uint256 public count;

    function bump(uint256 by) external returns (uint256) {
        count += by;
        return count;
    }
}
"""


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(solc, "cache_dir", lambda: tmp_path)
    return tmp_path / "solc"


def test_second_compile_is_a_cache_hit_without_node(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(args: list[str], **kwargs: Any) -> Any:
        calls.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(solc.subprocess, "run", counting_run)
    first = solc.compile_sources({"src/Counter.sol": SOURCE}, solc.STANDIN_SETTINGS)
    assert len(calls) == 1 and calls[0][1] == "-e"
    assert [p.name for p in tmp_cache.iterdir()] == [f"{first.key}.json"]

    def no_node(*_: Any, **__: Any) -> Any:
        raise AssertionError("node was spawned on a cache hit")

    monkeypatch.setattr(solc.subprocess, "run", no_node)
    second = solc.compile_sources({"src/Counter.sol": SOURCE}, solc.STANDIN_SETTINGS)
    assert second == first
    counter = second.get("Counter")
    assert {e["name"] for e in counter.abi if e["type"] == "function"} == {"count", "bump"}
    assert counter.bytecode.startswith("0x60") and counter.deployed_bytecode.startswith("0x60")
    assert len(counter.bytecode) > len(counter.deployed_bytecode)


def test_the_key_covers_sources_and_settings(tmp_cache: Path) -> None:
    a = solc.compile_sources({"src/Counter.sol": SOURCE}, solc.STANDIN_SETTINGS)
    b = solc.compile_sources(
        {"src/Counter.sol": SOURCE}, {**solc.STANDIN_SETTINGS, "optimizer": {"enabled": False}}
    )
    assert a.key != b.key
    assert a.get("Counter").deployed_bytecode != b.get("Counter").deployed_bytecode


def test_a_corrupt_cache_entry_is_rebuilt(tmp_cache: Path) -> None:
    first = solc.compile_sources({"src/Counter.sol": SOURCE}, solc.STANDIN_SETTINGS)
    (tmp_cache / f"{first.key}.json").write_text("{not json")
    again = solc.compile_sources({"src/Counter.sol": SOURCE}, solc.STANDIN_SETTINGS)
    assert again == first


def test_compile_error_names_the_file_and_line(tmp_cache: Path) -> None:
    broken = SOURCE.replace(
        "count += by;", "count += by"
    )  # line 8; solc reports it at the next token (line 9)
    with pytest.raises(solc.SolcError, match=r"src/Counter\.sol:9:\d+: ParserError: Expected ';'"):
        solc.compile_sources({"src/Counter.sol": broken}, solc.STANDIN_SETTINGS)
    assert not tmp_cache.exists() or not list(tmp_cache.iterdir())  # errors are never cached


def test_type_error_in_an_imported_file_names_that_file(tmp_cache: Path) -> None:
    lib = "// SPDX-License-Identifier: MIT\npragma solidity 0.8.19;\n\nlibrary L {\n    function f() internal pure returns (uint8) { return 300; }\n}\n"
    main = 'pragma solidity 0.8.19;\nimport "./L.sol";\ncontract M { function g() external pure returns (uint8) { return L.f(); } }\n'
    with pytest.raises(solc.SolcError, match=r"src/L\.sol:5:\d+: TypeError"):
        solc.compile_sources({"src/M.sol": main, "src/L.sol": lib}, solc.STANDIN_SETTINGS)


def test_morpho_compiles_from_the_package_sources() -> None:
    compiled = compile_morpho()
    runtime = len(compiled.get("Morpho").deployed_bytecode) // 2 - 1
    # lending.md §3.6 measured 22,533 B with the default ipfs metadata; we build with
    # bytecodeHash none, which drops 41 bytes of CBOR metadata.
    assert runtime == 22_533 - 41
    assert {"OracleMock", "IrmMock", "ERC20Mock", "EventsLib"} <= {
        a.name for a in compiled.contracts.values()
    }
    with pytest.raises(solc.SolcError, match="2 contracts named 'IERC20'"):
        compiled.get("IERC20")


@given(st.text(alphabet=st.sampled_from("ab\né€"), max_size=40), st.data())
def test_line_col_counts_utf8_bytes(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    offset = len(text[:cut].encode())
    line, col = solc._line_col(text, offset)
    before = text[:cut]
    assert line == before.count("\n") + 1
    assert col == len(before.split("\n")[-1]) + 1
