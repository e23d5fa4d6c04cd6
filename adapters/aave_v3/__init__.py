"""Aave V3 family adapter (Aave, Spark, forks, the devnet): one implementation, instances are config.

See :mod:`adapters.aave_v3.adapter` for what is read per cycle and :mod:`adapters.aave_v3.accounts`
for how one wallet becomes a :class:`risk.model.MarginAccount`.
"""

from adapters.aave_v3.adapter import AaveV3Adapter

__all__ = ["AaveV3Adapter"]
