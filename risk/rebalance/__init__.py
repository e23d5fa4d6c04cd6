"""Cross-venue rebalancing advice (design section 4, item 9): the transfers that maximize the stressed
CHF, or reach a target with the least moved, as linear programs (scipy HiGHS).

Entry point: ``advise(portfolio, market, params, movable, *, target_chf=None,
objective="max_stressed_chf", rebalance=RebalanceParams(), before=None, reassess=True) -> Advice``.
``risk.rebalance.advice`` describes the steps; ``risk.rebalance.lp`` the programs and the method.
"""

from risk.rebalance.advice import Advice, AdviceStatus, advise
from risk.rebalance.edit import add_quantity, find_account, replace_account
from risk.rebalance.inputs import CollateralSlot, IdleBalance, Movable, RebalanceParams
from risk.rebalance.moves import describe_move

__all__ = [
    "Advice",
    "AdviceStatus",
    "CollateralSlot",
    "IdleBalance",
    "Movable",
    "RebalanceParams",
    "add_quantity",
    "advise",
    "describe_move",
    "find_account",
    "replace_account",
]
