"""Deribit (CeFi options and futures): one margin account per settlement currency, read with the
user's OAuth client credentials.

Endpoints (JSON-RPC 2.0 over HTTP: ``POST {api_url}/<method>`` with the JSON-RPC request as the body,
so the client secret never appears in a URL or an access log; the answer is
``{"jsonrpc", "id", "result", "usIn", "usOut"}`` or ``{..., "error": {"code", "message"}}``):

- ``public/auth {grant_type: client_credentials, client_id, client_secret}`` -> ``access_token``,
  ``expires_in`` (s); sent afterwards as ``Authorization: Bearer <token>``. A private call answered
  401 (expired or revoked token) re-authenticates ONCE and retries; a second refusal, or refused
  credentials (HTTP 400/401 with error 13004 ``invalid_credentials``), make the account UNAVAILABLE
  with a clear reason. No credentials: the venue is listed as "not configured" (never empty).
- ``private/get_account_summary {currency, extended: true}`` for each of BTC, ETH, USDC, USDT:
  ``equity, balance, margin_balance, initial_margin, maintenance_margin`` (JSON floats in the
  settlement currency), greeks totals, ``portfolio_margining_enabled``, ``margin_model``, ``id`` and
  ``username`` (extended). ``usOut`` (server time, microseconds) is the account's ``as_of``.
- ``private/get_positions {currency}``: ``instrument_name, kind, direction, size`` (futures: USD for
  inverse, base units for linear; options: base units; negative when short), ``average_price,
  mark_price, index_price, maintenance_margin, delta`` (+ ``gamma, vega, theta`` for options).
- ``public/get_instrument {instrument_name}``: ``kind, base_currency, settlement_currency,
  instrument_type`` (``reversed`` = inverse, ``linear``), ``strike, option_type,
  expiration_timestamp`` (ms), ``contract_size``.
- ``public/ticker {instrument_name}`` (options): ``mark_iv`` (percent), ``underlying_price`` (the
  forward the option is priced on).
- ``public/get_index_price {index_name: btc_usd}``: the settlement currency's USD index.

Normalization (quote USD; every position's price is the venue's own, converted at the index):

- inverse option: ``quantity = size`` (base units), ``price = mark_price (coin) * index``, option
  parameters strike / expiry / call-put / ``mark_iv / 100`` / ``underlying_price``;
- inverse future of ``N`` USD at ``average_price A``: it pays ``N (1/A - 1/S)`` coins, worth
  ``N (S/A - 1)`` USD, i.e. a PERP of ``N / A`` coins at the mark (entry ``A``, oracle = index) plus a
  fixed ``-N`` USD cash leg;
- linear (USDC) instruments: quantity in base units at the USDC price;
- the settlement currency itself is the cash leg: ``equity - (sum of the other values) / index``
  coins, so the account's equity in USD is exactly ``equity * index``.

Health: Deribit liquidates when the maintenance margin reaches the margin balance, so
``venue_health = margin_balance / maintenance_margin`` (``Infinity`` without a requirement); ``h < 1``
iff ``maintenance_margin > margin_balance``.

Model, chosen by the summary's margin mode (``portfolio_margining_enabled`` or a ``margin_model``
ending in ``_pm``: portfolio margin):

- standard margin (``STANDARD``, ``risk.model.StandardMarginModel``), Deribit's documented
  per-position rules. Options (inverse, coins per contract; "Deribit margin requirements"): short
  call ``0.075 + mark``, short put ``max(0.075, 0.075 * mark) + mark``, long none; in USD that is
  ``0.075 * index + mark_usd`` (the option's ``spot_price`` is the position's ``index_price``). The
  same formula is applied to linear (USDC) options (not separately documented). Futures
  (support.deribit.com "Linear Perpetual"; positionbuilder.deribit.com): maintenance fraction
  ``base + slope * |size in base coins|`` of the position's size in coins at the index, with
  ``FUTURES_MM`` (BTC 1 % + 0.005 % per BTC; ETH 1 % + 0.0001 % per ETH; others 2 % + 0.0005 %);
  stored as one tier ``fraction * index / mark`` of the mark notional (linear) or of the constant USD
  notional ``|N|`` (inverse), so it is exact at current prices; under a scenario the size add-on of an
  inverse future stays at its current value (its coin size ``|N| / mark`` moves with the price: a
  relative error of ``slope * coins * |1/m - 1|`` on that position's requirement). Resources are the
  ``margin_balance``: equity less the options' value (the identity of the documented example).
- portfolio margin (``PORTFOLIO = deribit_pm_model()``: +-16 % in 9 buckets x vol up 50 % / same /
  down 25 %, mm_factor 0.8, the ``btc_usd`` sample parameters; the extended table is left out).

Attribution: credentials read ONE Deribit account. It belongs to the scanned wallet whose
``[venues.deribit].accounts`` entry lists its ``id`` or ``username``; without one, to the first
scanned wallet (a warning in ``raw`` says so). Other wallets get nothing (an empty OK read).

Gaps: cross-collateral / cross portfolio margin accounts are still split per currency (each summary
then carries the aggregated figures; ``raw`` keeps ``cross_collateral_enabled``); combos and spot
are skipped with a warning.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import BaseModel, BeforeValidator

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetMap
from adapters.base import AdapterContext
from adapters.errors import VenueDataError, VenueUnavailable
from adapters.http import JsonModel, JsonResponse, parse_model
from adapters.http_adapter import CredentialedVenueAdapter, redact, secret_value
from adapters.venue_common import (
    Warnings,
    cash_position,
    greeks_raw,
    marked_position,
    rpc_result,
    spot_position,
)
from risk.errors import RiskInputError
from risk.margin.options import deribit_pm_model
from risk.model import (
    AsOf,
    MarginAccount,
    MarginModel,
    MarginTier,
    OptionParams,
    PerpParams,
    Position,
    PriceSource,
    StandardMarginModel,
)

__all__ = [
    "FUTURES_MM",
    "MODEL",
    "PORTFOLIO",
    "STANDARD",
    "AccountSummary",
    "DeribitAdapter",
    "Instrument",
    "RpcPosition",
    "Ticker",
    "futures_mm_fraction",
    "margin_model_for",
    "parse_result",
    "summary_account",
]

VENUE: Final = "deribit"
CURRENCIES: Final = ("BTC", "ETH", "USDC", "USDT")
STABLES: Final = frozenset({"USDC", "USDT", "USD"})
STANDARD: Final = StandardMarginModel(
    call_spot=Decimal("0.075"),
    put_spot=Decimal("0.075"),
    put_mark=Decimal("0.075"),
    option_value_counts=False,
)
PORTFOLIO: Final = deribit_pm_model()
MODEL: Final = STANDARD  # what an account is listed with before it is read (not configured, unavailable)
FUTURES_MM: Final[Mapping[str, tuple[Decimal, Decimal]]] = {
    "BTC": (Decimal("0.01"), Decimal("0.00005")),
    "ETH": (Decimal("0.01"), Decimal("0.000001")),
}
"""Futures maintenance ``(base, slope per base coin)`` by base currency (see the module docstring)."""
FUTURES_MM_DEFAULT: Final = (Decimal("0.02"), Decimal("0.000005"))
REAUTH_MARGIN_S: Final = 30.0
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")


# ---------------------------------------------------------------------------------------------
# response models (JSON numbers, parsed exactly from their shortest repr)


def _number(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a JSON number, got {type(value).__name__}")
    result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


Number = Annotated[Decimal, BeforeValidator(_number)]
"""A field Deribit sends as a JSON number (float or int)."""


class AccountSummary(JsonModel):
    currency: str
    equity: Number
    balance: Number
    margin_balance: Number
    initial_margin: Number
    maintenance_margin: Number
    available_funds: Number
    delta_total: Number | None = None
    options_value: Number | None = None
    options_delta: Number | None = None
    options_gamma: Number | None = None
    options_vega: Number | None = None
    options_theta: Number | None = None
    projected_maintenance_margin: Number | None = None
    estimated_liquidation_ratio: Number | None = None
    portfolio_margining_enabled: bool | None = None
    cross_collateral_enabled: bool | None = None
    margin_model: str | None = None
    id: int | None = None
    username: str | None = None


class RpcPosition(JsonModel):
    instrument_name: str
    kind: Literal["future", "option", "spot", "future_combo", "option_combo"]
    direction: Literal["buy", "sell", "zero"]
    size: Number
    average_price: Number
    mark_price: Number
    index_price: Number
    maintenance_margin: Number
    initial_margin: Number
    delta: Number | None = None
    gamma: Number | None = None
    vega: Number | None = None
    theta: Number | None = None
    floating_profit_loss: Number | None = None
    estimated_liquidation_price: Number | None = None


class Instrument(JsonModel):
    instrument_name: str
    kind: Literal["future", "option", "spot", "future_combo", "option_combo"]
    base_currency: str
    settlement_currency: str
    instrument_type: Literal["reversed", "linear"] | None = None
    expiration_timestamp: int
    contract_size: Number
    strike: Number | None = None
    option_type: Literal["call", "put"] | None = None

    @property
    def inverse(self) -> bool:
        if self.instrument_type is not None:
            return self.instrument_type == "reversed"
        return self.settlement_currency == self.base_currency


class Ticker(JsonModel):
    instrument_name: str
    timestamp: int
    mark_price: Number
    index_price: Number
    mark_iv: Number | None = None
    underlying_price: Number | None = None


class _Auth(JsonModel):
    access_token: str
    expires_in: int


class _Index(JsonModel):
    index_price: Number


def parse_result(raw: object, what: str) -> tuple[object, int | None]:
    """``(result, usOut)`` of a Deribit JSON-RPC answer; an ``error`` member is ``VenueUnavailable``."""
    return rpc_result(raw, what, VENUE)


# ---------------------------------------------------------------------------------------------
# normalization (pure)


def margin_model_for(summary: AccountSummary) -> MarginModel:
    """Portfolio margin when the summary says so (``portfolio_margining_enabled``, or a
    ``margin_model`` such as ``cross_pm`` / ``segregated_pm``), else standard margin."""
    pm = bool(summary.portfolio_margining_enabled) or (summary.margin_model or "").endswith("_pm")
    return PORTFOLIO if pm else STANDARD


def futures_mm_fraction(base_currency: str, coins: Decimal) -> Decimal:
    """Deribit's maintenance fraction of a futures position of ``coins`` base-currency units."""
    base, slope = FUTURES_MM.get(base_currency, FUTURES_MM_DEFAULT)
    return base + slope * abs(coins)


def _sign_checked(p: RpcPosition) -> Decimal:
    if (p.direction == "sell" and p.size > 0) or (p.direction == "buy" and p.size < 0):
        raise VenueDataError(
            f"{p.instrument_name}: size {p.size} disagrees with direction {p.direction}", venue=VENUE
        )
    return p.size


def summary_account(
    summary: AccountSummary,
    positions: Sequence[RpcPosition],
    instruments: Mapping[str, Instrument],
    tickers: Mapping[str, Ticker],
    *,
    index_usd: Decimal,
    wallet: str,
    deployment: str,
    assets: AssetMap,
    as_of: AsOf,
    warnings: Warnings | None = None,
) -> MarginAccount | None:
    """One settlement currency's margin account (None when it holds nothing). ``index_usd`` is the
    settlement currency's USD index (1 for USDC/USDT)."""
    warnings = list(warnings or [])
    live = [p for p in positions if p.size != 0]
    if summary.equity == 0 and summary.balance == 0 and not live:
        return None
    cur = summary.currency
    out: list[Position] = []
    usd_cash = Decimal(0)
    greeks: dict[str, dict[str, str | None]] = {}
    for p in live:
        inst = instruments.get(p.instrument_name)
        if inst is None:
            raise VenueDataError(f"{p.instrument_name}: no instrument data", venue=VENUE)
        if p.kind not in ("future", "option"):
            warnings.append(f"{VENUE}: {p.instrument_name}: {p.kind} positions are not modelled; skipped")
            continue
        size = _sign_checked(p)
        coin = index_usd if inst.inverse else Decimal(1)
        if p.kind == "option":
            ticker = tickers.get(p.instrument_name)
            if ticker is None or ticker.mark_iv is None:
                raise VenueDataError(f"{p.instrument_name}: ticker has no mark_iv", venue=VENUE)
            if inst.strike is None or inst.option_type is None:
                raise VenueDataError(f"{p.instrument_name}: no strike/option_type", venue=VENUE)
            out.append(
                marked_position(
                    assets, inst.base_currency, token=p.instrument_name, quantity=size,
                    mark=p.mark_price * coin, venue=VENUE, warnings=warnings,
                    option=OptionParams(
                        strike=inst.strike,
                        expiry=datetime.fromtimestamp(inst.expiration_timestamp / 1000, tz=UTC),
                        option_type=inst.option_type,
                        mark_iv=ticker.mark_iv / 100,
                        underlying_price=ticker.underlying_price or p.index_price,
                        spot_price=p.index_price,
                    ),
                )
            )
        else:
            if p.average_price <= 0:
                raise VenueDataError(f"{p.instrument_name}: average_price <= 0", venue=VENUE)
            if p.mark_price <= 0 or p.index_price <= 0:
                raise VenueDataError(f"{p.instrument_name}: mark_price / index_price <= 0", venue=VENUE)
            if inst.inverse:
                qty = size / p.average_price
                usd_cash -= size
                coins = size / p.mark_price
            else:
                qty = size
                coins = size
            at_index = futures_mm_fraction(inst.base_currency, coins) * p.index_price / p.mark_price
            fraction = min(Decimal(1), at_index)
            out.append(
                marked_position(
                    assets, inst.base_currency, token=p.instrument_name, quantity=qty,
                    mark=p.mark_price, venue=VENUE, warnings=warnings,
                    perp=PerpParams(
                        entry_price=p.average_price,
                        margin_tiers=(MarginTier(Decimal(0), fraction),),
                        oracle_price=p.index_price,
                        requirement_basis="entry_notional" if inst.inverse else "mark_notional",
                    ),
                )
            )
        greeks[p.instrument_name] = greeks_raw(delta=p.delta, gamma=p.gamma, vega=p.vega, theta=p.theta)
    if usd_cash != 0:
        out.append(cash_position(assets, "USD", usd_cash, VENUE, warnings))
    other = sum((q.value for q in out), Decimal(0))
    cash_qty = summary.equity - other / index_usd
    if cur in STABLES:
        out.insert(0, cash_position(assets, cur, cash_qty, VENUE, warnings))
    else:
        spot = spot_position(
            assets, cur, cash_qty, index_usd, venue=VENUE, warnings=warnings, price_source=PriceSource.INDEX
        )
        out.insert(0, spot)
    mm = summary.maintenance_margin
    health = Decimal("Infinity") if mm <= 0 else summary.margin_balance / mm
    account_id = str(summary.id) if summary.id is not None else (summary.username or "account")
    try:
        return MarginAccount(
            venue=VENUE,
            deployment=deployment,
            account_id=f"{account_id}/{cur}",
            wallet=wallet,
            margin_model=margin_model_for(summary),
            positions=tuple(out),
            as_of=as_of,
            venue_health=health,
            raw={
                "warnings": warnings,
                "currency": cur,
                "index_usd": str(index_usd),
                "equity": str(summary.equity),
                "margin_balance": str(summary.margin_balance),
                "maintenance_margin": str(mm),
                "initial_margin": str(summary.initial_margin),
                "margin_model": summary.margin_model,
                "portfolio_margining_enabled": summary.portfolio_margining_enabled,
                "cross_collateral_enabled": summary.cross_collateral_enabled,
                "greeks_total": {
                    "delta_total": None if summary.delta_total is None else str(summary.delta_total),
                    "options_gamma": None if summary.options_gamma is None else str(summary.options_gamma),
                    "options_vega": None if summary.options_vega is None else str(summary.options_vega),
                    "options_theta": None if summary.options_theta is None else str(summary.options_theta),
                },
                "greeks": greeks,
            },
        )
    except RiskInputError as exc:
        raise VenueDataError(f"{cur}: {exc}", venue=VENUE) from None


# ---------------------------------------------------------------------------------------------
# the adapter (I/O)


@dataclass
class _Token:
    value: str | None = None
    expires_at: float = 0.0  # time.monotonic() seconds


class DeribitAdapter(CredentialedVenueAdapter):
    """Authenticates once per adapter (re-auth when the token nears expiry or is refused), then reads
    every currency's summary and positions."""

    family = VENUE
    margin_model = MODEL
    capabilities = frozenset({"venue_health", "greeks", "options"})
    not_configured_reason = (
        "Deribit needs API credentials: set CROSSMARGIN__VENUES__DERIBIT__CLIENT_ID and "
        "CROSSMARGIN__VENUES__DERIBIT__CLIENT_SECRET (or client_id / client_secret under "
        "[venues.deribit] in the secrets file)"
    )

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        super().__init__(instance=instance, spec=spec, context=context)
        self.client_id = secret_value(self.venue_spec.client_id) or secret_value(self.venue_spec.api_key)
        self.client_secret = secret_value(self.venue_spec.client_secret) or secret_value(
            self.venue_spec.api_secret
        )
        self._token = _Token()
        self._instruments: dict[str, Instrument] = {}
        self._ids = 0

    def credentials(self) -> tuple[str | None, ...]:
        return (self.client_id, self.client_secret)

    def secrets(self) -> list[str]:
        """The credentials and the current access token."""
        return [*super().secrets(), *([self._token.value] if self._token.value else [])]

    async def _call(
        self, method: str, params: dict[str, object], *, token: str | None = None
    ) -> JsonResponse:
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        headers = {"Authorization": f"Bearer {token}"} if token else None
        response = await self.http.post(f"/{method}", body, headers=headers)
        assert response is not None
        return response

    async def _authenticate(self) -> str:
        assert self.client_id is not None and self.client_secret is not None
        params: dict[str, object] = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        try:
            response = await self._call("public/auth", params)
            result, _ = parse_result(response.body, "public/auth")
        except VenueUnavailable as exc:
            status = _HTTP_STATUS.search(str(exc))
            if (status is not None and status.group(1) in ("400", "401")) or "error 13004" in str(exc):
                raise VenueUnavailable(
                    "credentials refused by public/auth (check [venues.deribit] client_id / client_secret): "
                    + redact(str(exc.args[0]), self.secrets()),
                    venue=self.deployment,
                ) from None
            raise
        auth = parse_model(_Auth, result, venue=VENUE, what="public/auth")
        self._token = _Token(auth.access_token, time.monotonic() + auth.expires_in)
        return auth.access_token

    async def _private(self, method: str, params: dict[str, object]) -> JsonResponse:
        """A private call; a 401 re-authenticates once and retries."""
        token = self._token.value
        if token is None or time.monotonic() > self._token.expires_at - REAUTH_MARGIN_S:
            token = await self._authenticate()
        try:
            return await self._call(method, params, token=token)
        except VenueUnavailable as exc:
            if "HTTP 401" not in str(exc):
                raise
        token = await self._authenticate()
        try:
            return await self._call(method, params, token=token)
        except VenueUnavailable as exc:
            if "HTTP 401" in str(exc):
                raise VenueUnavailable(
                    f"{method}: access token refused again after re-authentication", venue=self.deployment
                ) from None
            raise

    async def _public(self, method: str, params: dict[str, object]) -> object:
        result, _ = parse_result((await self._call(method, params)).body, method)
        return result

    async def _instrument(self, name: str) -> Instrument:
        if name not in self._instruments:
            raw = await self._public("public/get_instrument", {"instrument_name": name})
            self._instruments[name] = parse_model(Instrument, raw, venue=VENUE, what="get_instrument")
        return self._instruments[name]

    async def _summary(self, currency: str) -> tuple[AccountSummary, AsOf]:
        """The currency's summary and the server time it was computed at (``usOut``, else ``Date``)."""
        params: dict[str, object] = {"currency": currency, "extended": True}
        response = await self._private("private/get_account_summary", params)
        result, us_out = parse_result(response.body, "get_account_summary")
        summary = parse_model(AccountSummary, result, venue=VENUE, what="get_account_summary")
        if us_out is not None:
            return summary, AsOf(timestamp=datetime.fromtimestamp(us_out / 1_000_000, tz=UTC))
        return summary, AsOf(timestamp=response.server_time or self.context.now())

    async def _account(
        self, summary: AccountSummary, as_of: AsOf, wallet: ChecksumAddress, guessed: str | None
    ) -> MarginAccount | None:
        currency = summary.currency
        raw_positions, _ = parse_result(
            (await self._private("private/get_positions", {"currency": currency})).body, "get_positions"
        )
        if not isinstance(raw_positions, list):
            raise VenueDataError("get_positions: result is not a list", venue=VENUE)
        positions = [
            parse_model(RpcPosition, p, venue=VENUE, what=f"get_positions.{i}")
            for i, p in enumerate(raw_positions)
        ]
        live = [p for p in positions if p.size != 0]
        if summary.equity == 0 and summary.balance == 0 and not live:
            return None
        instruments = {p.instrument_name: await self._instrument(p.instrument_name) for p in live}
        tickers: dict[str, Ticker] = {}
        for p in live:
            if p.kind == "option":
                raw = await self._public("public/ticker", {"instrument_name": p.instrument_name})
                tickers[p.instrument_name] = parse_model(Ticker, raw, venue=VENUE, what="ticker")
        if currency in STABLES:
            index = Decimal(1)
        else:
            raw = await self._public("public/get_index_price", {"index_name": f"{currency.lower()}_usd"})
            index = parse_model(_Index, raw, venue=VENUE, what="get_index_price").index_price
        return summary_account(
            summary,
            positions,
            instruments,
            tickers,
            index_usd=index,
            wallet=wallet,
            deployment=self.deployment,
            assets=self.context.assets,
            as_of=as_of,
            warnings=[guessed] if guessed else None,
        )

    async def read_with_credentials(self, wallets: Sequence[ChecksumAddress]) -> list[MarginAccount]:
        accounts: list[MarginAccount] = []
        owner: ChecksumAddress | None = None
        guessed: str | None = None
        for currency in CURRENCIES:
            summary, as_of = await self._summary(currency)
            if owner is None:  # the extended summary tells whose account this is (id, username)
                ids = [str(summary.id) if summary.id is not None else "", summary.username or ""]
                owner, guessed = self.owner(wallets, ids)
            account = await self._account(summary, as_of, owner, guessed)
            if account is not None:
                accounts.append(account)
        return accounts
