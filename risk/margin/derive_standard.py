"""Derive's Standard Manager maintenance margin, vectorized over scenarios (``margin_type`` "SM").

Read from ``risk.arrays.Book`` (``MODEL_DERIVE_STANDARD`` accounts; parameters from each account's
``risk.model.DeriveStandardModel``) and the scenario state of ``risk.margin.valuation``. The rule is
derivexyz/v2-core ``StandardManager.sol`` (``_getMarketMargin``, ``_calcNetBasicMarginSingleExpiry``,
``_getIsolatedMarginForCall/Put``, ``_getBaseMarginAndMtM``) as documented on docs.derive.xyz
("Standard Margin"): the venue's net maintenance margin is ``subaccount_value - requirement`` with,
in scenario ``s`` (USD: quote amounts times the quote's USD price):

- perps: the tiered maintenance of ``risk.margin.perps`` (``mmPerpReq * |q| * perpPrice``);
- base collateral (SPOT positions other than the model's ``cash_token``): ``(1 - marginFactor) *
  max(value_s, 0)``;
- options, grouped per (underlying factor, expiry): with ``S_s = opt_spot * m_s`` (spot moved by the
  position's factors), ``v_i,s`` the option's revalued signed value (``risk.margin.valuation``),
  ``isolated = sum over shorts of call_spot * S_s * n_i`` (call) or
  ``max(put_spot * S_s * n_i, put_mtm * |v_i,s|)`` (put) where ``n_i = |q_i| * contract_size``;
  ``mtm = sum v_i,s``; ``max_loss = min(0, min over p in {0} U strikes of sum_i q_i size_i
  payoff_i(p)) + unpaired_scale * F_s * net_calls`` (the last term when ``net_calls`` = the signed
  sum of call units is < 0; ``F_s`` the underlying of the group's first call, moved);
  requirement ``min(isolated, mtm - max_loss)`` (the venue keeps the larger margin of the two).

``derive_standard_figures(book, sp, equity)`` returns ``(resources[S, A], requirement[S, A],
gross[S, A])`` (only these accounts' columns are filled; resources are the equity; ``gross`` is the
sum of ``|value|`` of their options and perps, for the liquidation penalty).
"""

from __future__ import annotations

import numpy as np

from risk.arrays import KIND_SPOT, MODEL_DERIVE_STANDARD, Book, FloatArray
from risk.margin.perps import perp_requirement
from risk.margin.valuation import ScenarioPrices, risky_gross
from risk.model import DeriveStandardModel

__all__ = ["derive_standard_figures"]


def _options_requirement(book: Book, sp: ScenarioPrices, a: int, m: DeriveStandardModel) -> FloatArray:
    """``requirement[S]`` (USD) of account ``a``'s options."""
    n_s = sp.values.shape[0]
    out = np.zeros(n_s)
    local = np.flatnonzero(book.pos_account[book.opt_pos] == a)
    if local.size == 0:
        return out
    quote_usd = book.prices0[book.quote_idx[a]] * sp.quote_ratio[:, a]  # [S]
    pos = book.opt_pos[local]
    groups: dict[tuple[int, int, float], list[int]] = {}
    for jj, nn in zip(local.tolist(), pos.tolist(), strict=True):
        key = (int(book.factor_idx[nn]), int(book.basis_idx[nn]), float(book.opt_expiry[jj]))
        groups.setdefault(key, []).append(int(jj))
    call_spot, put_spot, put_mtm = float(m.call_spot), float(m.put_spot), float(m.put_mtm)
    unpaired = float(m.unpaired_scale)
    for members in groups.values():
        j = np.asarray(members, dtype=np.int64)
        n = book.opt_pos[j]
        qty = book.quantity[n] * book.opt_size[j]  # signed underlying units
        call = book.opt_sign[j] > 0
        value = sp.values[:, n]  # [S, k] USD, signed
        spot_usd = book.opt_spot[j][None, :] * sp.mult[:, n] * quote_usd[:, None]  # [S, k]
        units = np.abs(qty)[None, :]
        req = np.where(
            call[None, :],
            call_spot * spot_usd * units,
            np.maximum(put_spot * spot_usd * units, put_mtm * np.abs(value)),
        )
        isolated = (req * (qty < 0)[None, :]).sum(axis=1)  # [S]
        mtm = value.sum(axis=1)
        strikes = book.opt_strike[j]
        settle = np.concatenate(([0.0], strikes))  # settlement prices, quote
        intrinsic = np.where(
            call[None, :],
            np.maximum(settle[:, None] - strikes[None, :], 0.0),
            np.maximum(strikes[None, :] - settle[:, None], 0.0),
        )  # [P, k]
        worst = min(0.0, float((intrinsic @ qty).min()))  # quote
        max_loss = np.full(n_s, worst) * quote_usd
        net_calls = float(qty[call].sum())
        if net_calls < 0:
            first_call = int(np.flatnonzero(call)[0])
            forward = sp.opt_under[:, members[first_call]] * quote_usd
            max_loss = max_loss + unpaired * forward * net_calls
        out += np.minimum(isolated, mtm - max_loss)
    return out


def _base_requirement(book: Book, sp: ScenarioPrices, a: int, m: DeriveStandardModel) -> FloatArray:
    """``requirement[S]`` (USD) of account ``a``'s base collateral: ``(1 - marginFactor) * value``."""
    out = np.zeros(sp.values.shape[0])
    mine = np.flatnonzero((book.pos_account == a) & (book.kind == KIND_SPOT))
    if mine.size == 0:
        return out
    first = int(np.flatnonzero(book.pos_account == a)[0])
    account = book.accounts[a]
    for n in mine:
        token = account.positions[int(n) - first].token
        if token == m.cash_token:
            continue
        haircut = 1.0 - float(m.base_margin_factor(token))
        out += haircut * np.maximum(sp.values[:, int(n)], 0.0)
    return out


def derive_standard_figures(
    book: Book, sp: ScenarioPrices, equity: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(resources, requirement, gross)``, each ``[S, A]`` in USD (Derive standard accounts' columns)."""
    n_s, n_a = sp.values.shape[0], book.n_accounts
    mine = book.model == MODEL_DERIVE_STANDARD
    resources = np.zeros((n_s, n_a))
    requirement = np.zeros((n_s, n_a))
    gross = np.zeros((n_s, n_a))
    if not mine.any():
        return resources, requirement, gross
    resources[:, mine] = equity[:, mine]
    perp_req, _ = perp_requirement(book, sp)
    requirement[:, mine] = perp_req[:, mine]
    for a in np.flatnonzero(mine):
        model = book.accounts[int(a)].margin_model
        assert isinstance(model, DeriveStandardModel)
        requirement[:, a] += _options_requirement(book, sp, int(a), model)
        requirement[:, a] += _base_requirement(book, sp, int(a), model)
    gross[:, mine] = risky_gross(book, sp)[:, mine]
    return resources, requirement, gross
