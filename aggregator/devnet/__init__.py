"""The local devnet: anvil with real Aave V3 (and the solidity helper's Morpho Blue / Comet stand-in),
Multicall3 at its canonical address, the local venue API servers, and a seeded demo book.

Modules (one job each):

- ``paths``      where the npm install, the anvil binary, the build cache and the state file live
- ``anvil``      start / stop an anvil node on a free 127.0.0.1 port
- ``multicall3`` put the real Multicall3 at 0xcA11bde05977b3631167028862bE2a173976CA11
- ``artifacts``  load Hardhat artifacts from ``devnet/node_modules`` and link libraries
- ``txs``        send transactions from anvil's unlocked dev accounts and wait for receipts
- ``aave``       deploy and configure Aave V3 (v3.0.2, ``@aave/core-v3`` 1.19.3)
- ``market``     tokens, factors, prices, Aave reserve parameters and e-mode, as data
- ``tokens``     the mintable test ERC20s
- ``book``       the demo book: which wallet holds what, seeded through real transactions
- ``optional_parts``  calls into ``morpho`` / ``comet`` (the solidity helper's) when present
- ``venue_client``    the venue server's ``/_devnet/`` admin API: seed venue accounts, move prices
- ``network``    bring the whole devnet up / down, move prices, warp time
- ``state``      the JSON state file that ``crossmargin devnet`` commands share
- ``user_config`` the user config TOML pointing crossmargin at the devnet
"""
