"""Morpho Blue and the Comet stand-in on the devnet, when the solidity helper's modules exist.

``aggregator.devnet.morpho`` (``deploy_morpho``, ``seed_borrower``, ``set_morpho_prices``) and
``aggregator.devnet.comet`` (``deploy_comet``, ``supply_collateral``, ``borrow``, ``set_comet_prices``)
are owned by another part of the devnet work; this module only calls them. When one is missing, the
devnet comes up without it and the state's ``notes`` say so (``crossmargin devnet status`` prints
them). The LP wallet supplies their liquidity; the fund wallet's positions are ``book.MORPHO_BOOK`` and
``book.COMET_BOOK``. Deployments are stored in the state as their ``to_dict()``. Morpho's market oracles
name the Aave deployment's price sources (``state.aave["price_sources"]``) as their feeds, so the
Aave price move of ``Devnet.set_price`` (made before these hooks) refreshes them.
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from types import ModuleType

from web3 import Web3

from aggregator.devnet.book import COMET_BOOK, MORPHO_BOOK, to_base_units
from aggregator.devnet.market import TOKENS, token_price
from aggregator.devnet.state import DevnetState
from aggregator.devnet.txs import Txs

__all__ = ["deploy", "seed", "set_prices"]


def _module(name: str, attribute: str) -> ModuleType | None:
    try:
        module = importlib.import_module(f"aggregator.devnet.{name}")
    except ImportError:
        return None
    return module if hasattr(module, attribute) else None


def _factor_prices(state: DevnetState) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in state.factor_prices.items()}


def deploy(txs: Txs, state: DevnetState) -> None:
    """Deploy Morpho Blue and the Comet stand-in (when available) and record them in ``state``."""
    tokens = {k: Web3.to_checksum_address(v) for k, v in state.tokens.items()}
    owner, lp = state.wallets["deployer"], state.wallets["lp"]
    morpho = _module("morpho", "deploy_morpho")
    if morpho is None:
        state.notes.append("morpho skipped: aggregator.devnet.morpho.deploy_morpho is not available")
    else:
        feeds = dict(state.aave.get("price_sources", {}))  # the oracles name Aave's feeds (BASE/QUOTE_FEED_1)
        deployment = morpho.deploy_morpho(txs, owner, tokens, _factor_prices(state), supplier=lp, feeds=feeds)
        state.morpho = deployment.to_dict()
    comet = _module("comet", "deploy_comet")
    if comet is None:
        state.notes.append("comet skipped: aggregator.devnet.comet.deploy_comet is not available")
    else:
        deployment = comet.deploy_comet(txs, owner, tokens, _factor_prices(state), supplier=lp)
        state.comet = deployment.to_dict()


def seed(txs: Txs, state: DevnetState) -> None:
    """Seed the Morpho / Comet positions of ``book.MORPHO_BOOK`` / ``book.COMET_BOOK`` (when deployed)."""
    if state.morpho is not None:
        morpho = _module("morpho", "seed_borrower")
        assert morpho is not None
        deployment = morpho.MorphoDeployment.from_dict(state.morpho)
        for name, positions in MORPHO_BOOK.items():
            for market, collateral, borrowed in positions:
                coll_symbol, loan_symbol = market.split("/")
                morpho.seed_borrower(
                    txs,
                    deployment,
                    market,
                    state.wallets[name],
                    collateral=to_base_units(coll_symbol, collateral),
                    borrow=to_base_units(loan_symbol, borrowed),
                )
    if state.comet is not None:
        comet = _module("comet", "supply_collateral")
        assert comet is not None
        deployment = comet.CometDeployment.from_dict(state.comet)
        for name, intent in COMET_BOOK.items():
            for symbol, amount in intent.collateral.items():
                units = to_base_units(symbol, amount)
                comet.supply_collateral(txs, deployment, state.wallets[name], symbol, units)
            if intent.borrow:
                units = to_base_units(deployment.base, intent.borrow)
                comet.borrow(txs, deployment, state.wallets[name], units)


def set_prices(txs: Txs, state: DevnetState, factor: str, prices: dict[str, Decimal]) -> list[str]:
    """Move Morpho / Comet oracles of the tokens priced in ``factor`` (when deployed); what was moved."""
    token_prices = {t.symbol: token_price(t, prices) for t in TOKENS if t.factor == factor}
    moved: list[str] = []
    if state.morpho is not None:
        morpho = _module("morpho", "set_morpho_prices")
        assert morpho is not None
        deployment = morpho.MorphoDeployment.from_dict(state.morpho)
        morpho.set_morpho_prices(txs, deployment, token_prices)
        state.morpho = deployment.to_dict()
        moved += [f"morpho oracle {m}" for m in deployment.markets if set(m.split("/")) & set(token_prices)]
    if state.comet is not None:
        comet = _module("comet", "set_comet_prices")
        assert comet is not None
        deployment = comet.CometDeployment.from_dict(state.comet)
        comet.set_comet_prices(txs, deployment, token_prices)
        moved += [f"comet feed {s} = {p}" for s, p in token_prices.items() if s in deployment.price_feeds]
    return moved
