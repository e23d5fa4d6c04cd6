"""Margin-model names and venue presets -> ``risk.model`` margin models: the one mapping the portfolio
file (``aggregator.portfolio_file``) and the stored-snapshot rebuild (``aggregator.whatif_db``) use.

A model's name is its ``risk.model`` ``name`` field (what the database stores in
``account_snapshots.margin_model``); a venue preset is the model the venue's adapter builds from its
own constants, so the venue name is all it takes to rebuild it exactly:

- ``options_scenario``: ``aevo`` -> ``adapters.aevo.PORTFOLIO``, ``deribit`` ->
  ``adapters.deribit.PORTFOLIO`` (``risk.margin.deribit_pm_model``), ``derive`` ->
  ``adapters.derive.PM_MODEL`` (``risk.margin.derive_pm_model``, the PM1 grid);
- ``standard_margin``: ``aevo`` -> ``adapters.aevo.STANDARD``, ``deribit`` -> ``adapters.deribit.STANDARD``;
- ``derive_standard``: ``derive`` -> the Standard Manager with the adapter's option fractions
  (``SM_CALL_SPOT``, ``SM_PUT_SPOT``, ``SM_PUT_MTM``, ``SM_UNPAIRED_SCALE``; cash ``USDC``) and no base
  collateral factors (the adapter reads those per account from the venue).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

from adapters import aevo, deribit, derive
from aggregator.errors import InputError
from risk.model import (
    CrossPerpModel,
    DeriveStandardModel,
    IsolatedPerpModel,
    LendingModel,
    MarginModel,
    OptionsScenarioModel,
    StandardMarginModel,
)

__all__ = [
    "DERIVE_STANDARD",
    "MODEL_NAMES",
    "OPTIONS_PRESETS",
    "STANDARD_PRESETS",
    "ModelName",
    "stored_model",
]

ModelName = Literal[
    "lending", "cross_perp", "isolated_perp", "options_scenario", "standard_margin", "derive_standard"
]
MODEL_NAMES: Final[tuple[str, ...]] = get_args(ModelName)

OPTIONS_PRESETS: Final[Mapping[str, OptionsScenarioModel]] = {
    aevo.VENUE: aevo.PORTFOLIO,
    deribit.VENUE: deribit.PORTFOLIO,
    derive.VENUE: derive.PM_MODEL,
}
"""venue -> the options scenario grid its adapter uses for a portfolio-margin account."""

STANDARD_PRESETS: Final[Mapping[str, StandardMarginModel]] = {
    aevo.VENUE: aevo.STANDARD,
    deribit.VENUE: deribit.STANDARD,
}
"""venue -> the per-position standard-margin model its adapter uses."""

DERIVE_STANDARD: Final = DeriveStandardModel(
    call_spot=derive.SM_CALL_SPOT,
    put_spot=derive.SM_PUT_SPOT,
    put_mtm=derive.SM_PUT_MTM,
    unpaired_scale=derive.SM_UNPAIRED_SCALE,
    cash_token=derive.SETTLEMENT,
)
"""Derive's Standard Manager with the adapter's option fractions and no base collateral credit."""


def stored_model(name: str, venue: str) -> MarginModel:
    """The margin model of an account stored as ``name`` on ``venue``, when only the name is kept:
    the model defaults, the venue's preset where there is one (options grids: Derive's for any venue
    without its own; standard margin: the ``StandardMarginModel`` defaults for any venue without one;
    Derive standard margin: ``DERIVE_STANDARD``, i.e. base collateral gets no credit, conservative).
    ``InputError`` for a name this version does not know."""
    if name == "lending":
        return LendingModel()
    if name == "cross_perp":
        return CrossPerpModel()
    if name == "isolated_perp":
        return IsolatedPerpModel()
    if name == "options_scenario":
        return OPTIONS_PRESETS.get(venue, OPTIONS_PRESETS[derive.VENUE])
    if name == "standard_margin":
        return STANDARD_PRESETS.get(venue, StandardMarginModel())
    if name == "derive_standard":
        return DERIVE_STANDARD
    raise InputError(f"stored margin model {name!r} is unknown to this version")
