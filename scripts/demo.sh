#!/usr/bin/env bash
# The offline demo (make demo): a local devnet with real Aave V3 and Morpho Blue bytecode, a Comet
# stand-in and local venue APIs; scan the demo book, move ETH, scan again, assess a portfolio file,
# and stop everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
CM=.venv/bin/crossmargin
workdir=$(mktemp -d)
export XDG_DATA_HOME="$workdir/data"
state="$workdir/state.json"
cleanup() { "$CM" devnet down --state "$state" >/dev/null 2>&1 || true; rm -rf "$workdir"; }
trap cleanup EXIT

echo "== starting the devnet"
"$CM" devnet up --state "$state" --config-out "$workdir/config.toml" --json > "$workdir/up.json"
wallets=$(.venv/bin/python -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join(a for n, a in d['wallets'].items() if n in ('hedged','fund','near_liquidation','empty')))" "$workdir/up.json")
only="aave_v3:devnet,morpho_blue:devnet,compound_v3:devnet_usdc,hyperliquid,dydx_v4,derive"

echo "== scan at the seeded prices"
"$CM" scan $wallets --config "$workdir/config.toml" --only "$only" || true

echo "== ETH falls to 2500 everywhere (Aave and Morpho oracles, Comet feed, venue marks)"
"$CM" devnet price ETH 2500 --state "$state"
"$CM" scan $wallets --config "$workdir/config.toml" --only "$only" || true

echo "== the hedged book as a whole (portfolio file, no chain needed)"
"$CM" assess --portfolio config/examples/portfolio.toml
