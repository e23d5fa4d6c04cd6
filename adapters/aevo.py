"""Aevo (options and perps, USDC-margined): one margin account per API key, read with the user's key.

Endpoints (REST, ``GET {api_url}/...``; every account read is private: headers ``AEVO-KEY`` and
``AEVO-SECRET``, api-docs.aevo.xyz/reference/rest-authentication; there is no public read by wallet):

- ``GET /account``: ``account`` (the 0x address), ``equity, balance, available_balance,
  initial_margin, maintenance_margin`` (decimal strings, USD), ``collaterals[]``
  ``{collateral_asset, balance, collateral_value, margin_value}``, ``in_liquidation``, ``portfolio``
  (portfolio margin on). Shape from the third-party OpenAPI (api-evangelist/ribbon-finance
  ``openapi/_original/aevo-private-rest-api.json``), which names the list ``collateral``; the facts
  file says ``collaterals``: both are accepted, neither is required.
- ``GET /positions``: ``{account, positions[]}`` with ``instrument_name, instrument_type``
  (OPTION / PERPETUAL / SPOT), ``asset, amount`` (unsigned), ``side`` (buy / sell), ``mark_price,
  avg_entry_price``, and for options ``option{strike, option_type, expiry (ns), iv, delta, gamma,
  theta, vega}`` (the official WS positions channel doc).
- ``GET /index?asset=ETH`` (public): ``{price, timestamp (ns)}``: the index each underlying is kept at
  apart from the marks (options' underlying, perps' oracle).

``/portfolio`` is not read: its schema is not documented (perps_options.md §10).

Normalization (quote USD): options at their mark with strike / expiry / call-put / IV (fraction, as
Aevo sends it); perps at the mark with the entry and the index as oracle, maintenance fraction
``|maintenance_margin| / (|amount| * mark)`` when reported; non-USDC collateral as SPOT at
``collateral_value / balance``; the USDC cash leg is the residual ``equity - sum(other values)`` so the
account's equity is exactly the venue's. ``as_of`` is the ``/account`` answer's ``Date`` header.

Health: ``venue_health = equity / maintenance_margin`` (Infinity without a requirement); ``h < 1`` iff
equity is below the maintenance margin. ``in_liquidation`` (the venue's own signal) is kept in ``raw``,
with a warning when it disagrees with ``h``.

Model, chosen by the account's margin mode (``/account`` ``portfolio``: portfolio margin on):

- standard margin (the default, ``STANDARD``): Aevo's documented per-position maintenance margin
  (docs.aevo.xyz, options-specifications/standard-margin; ``risk.model.StandardMarginModel``): short
  call ``0.1 * spot + mark``, short put ``max(0.1 * spot, 0.1 * mark) + mark`` per contract (spot =
  the ``/index`` price, kept as the option's ``spot_price``), long options none; perps a fraction of
  their mark notional, ``|maintenance_margin| / (|amount| * mark)`` as the position reports it (Aevo
  documents no perp formula we could capture); resources = equity. So the engine's ``h`` at current
  prices is the venue's ``equity / maintenance_margin`` whenever the venue follows its own rule.
- portfolio margin (``PORTFOLIO``): the documented grid, spot {-20, -10, 0, +10, +20} % x IV
  {down, same, up}; the docs' additive IV shifts (+50 / -25 vol points) are approximated as relative
  shocks (+50 % / -25 %, exact at 100 % IV) without DTE scaling, and the floor margin (formula not
  captured) is left out: drift against the venue's figure is expected and reported.

Attribution: the key's account belongs to the scanned wallet equal to its ``account`` address (or
listing it in ``[venues.aevo].accounts``); else to the first scanned wallet, with a warning. Gaps:
isolated perps are kept in the one account (``raw`` notes their margin type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal

from pydantic import AliasChoices, BaseModel, Field

from adapters.addresses import ChecksumAddress
from adapters.assets import AssetMap
from adapters.base import AdapterContext
from adapters.errors import VenueDataError, VenueUnavailable
from adapters.http import DecimalString, JsonModel, JsonResponse, parse_model
from adapters.http_adapter import CredentialedVenueAdapter, secret_value
from adapters.venue_common import (
    Warnings,
    cash_position,
    greeks_raw,
    marked_position,
    spot_position,
)
from risk.errors import RiskInputError
from risk.model import (
    AsOf,
    MarginAccount,
    MarginModel,
    MarginTier,
    OptionParams,
    OptionsScenarioModel,
    PerpParams,
    Position,
    StandardMarginModel,
)

__all__ = [
    "MODEL",
    "PORTFOLIO",
    "STANDARD",
    "AevoAccount",
    "AevoAdapter",
    "AevoPosition",
    "IndexPrice",
    "aevo_account",
    "margin_model_for",
]

VENUE: Final = "aevo"
SETTLEMENT: Final = "USDC"
STANDARD: Final = StandardMarginModel(
    call_spot=Decimal("0.1"), put_spot=Decimal("0.1"), put_mark=Decimal("0.1"), option_value_counts=True
)
PORTFOLIO: Final = OptionsScenarioModel(
    spot_shocks=(Decimal("-0.20"), Decimal("-0.10"), Decimal(0), Decimal("0.10"), Decimal("0.20")),
    vol_shocks=(Decimal("-0.25"), Decimal(0), Decimal("0.50")),
    vega_power_short=Decimal(0),
    vega_power_long=Decimal(0),
)
MODEL: Final = STANDARD  # what an account is listed with before it is read (not configured, unavailable)


def margin_model_for(portfolio: bool | None) -> MarginModel:
    """The account's model from ``/account`` ``portfolio`` (missing: standard, Aevo's default)."""
    return PORTFOLIO if portfolio else STANDARD


class Collateral(JsonModel):
    collateral_asset: str
    balance: DecimalString
    collateral_value: DecimalString
    margin_value: DecimalString | None = None


class AevoAccount(JsonModel):
    account: str
    equity: DecimalString
    balance: DecimalString
    initial_margin: DecimalString
    maintenance_margin: DecimalString
    available_balance: DecimalString | None = None
    collaterals: list[Collateral] = Field(
        default_factory=list, validation_alias=AliasChoices("collaterals", "collateral")
    )
    in_liquidation: bool | None = None
    portfolio: bool | None = None


class OptionInfo(JsonModel):
    strike: DecimalString
    option_type: Literal["call", "put"]
    expiry: DecimalString  # unix nanoseconds, as a string
    iv: DecimalString
    delta: DecimalString | None = None
    gamma: DecimalString | None = None
    theta: DecimalString | None = None
    vega: DecimalString | None = None


class AevoPosition(JsonModel):
    instrument_name: str
    instrument_type: Literal["OPTION", "PERPETUAL", "SPOT"]
    asset: str
    amount: DecimalString
    side: Literal["buy", "sell"]
    mark_price: DecimalString
    avg_entry_price: DecimalString
    maintenance_margin: DecimalString | None = None
    margin_type: str | None = None
    option: OptionInfo | None = None


class _Positions(JsonModel):
    account: str
    positions: list[AevoPosition]


class IndexPrice(JsonModel):
    price: DecimalString
    timestamp: DecimalString | None = None


def _signed(p: AevoPosition) -> Decimal:
    if p.amount < 0:
        raise VenueDataError(
            f"{p.instrument_name}: amount {p.amount} is negative (side carries the sign)", venue=VENUE
        )
    return p.amount if p.side == "buy" else -p.amount


def _option(p: AevoPosition, qty: Decimal, index: Decimal, assets: AssetMap, warnings: Warnings) -> Position:
    o = p.option
    if o is None:
        raise VenueDataError(f"{p.instrument_name}: OPTION without its option object", venue=VENUE)
    return marked_position(
        assets, p.asset, token=p.instrument_name, quantity=qty, mark=p.mark_price, venue=VENUE,
        warnings=warnings,
        option=OptionParams(
            strike=o.strike,
            expiry=datetime.fromtimestamp(int(o.expiry) / 1e9, tz=UTC),
            option_type=o.option_type,
            mark_iv=o.iv,
            underlying_price=index,
            spot_price=index,
        ),
    )


def _perp(p: AevoPosition, qty: Decimal, index: Decimal, assets: AssetMap, warnings: Warnings) -> Position:
    notional = abs(qty) * p.mark_price
    if p.maintenance_margin is None:
        warnings.append(f"{VENUE}: {p.instrument_name} reports no maintenance_margin; its requirement is 0")
    mm = abs(p.maintenance_margin) if p.maintenance_margin is not None else Decimal(0)
    fraction = min(Decimal(1), mm / notional) if notional > 0 else Decimal(0)
    return marked_position(
        assets, p.asset, token=p.instrument_name, quantity=qty, mark=p.mark_price, venue=VENUE,
        warnings=warnings,
        perp=PerpParams(
            entry_price=p.avg_entry_price,
            margin_tiers=(MarginTier(Decimal(0), fraction),),
            oracle_price=index,
        ),
    )


def aevo_account(
    account: AevoAccount,
    positions: Sequence[AevoPosition],
    index: Mapping[str, Decimal],
    *,
    wallet: str,
    deployment: str,
    assets: AssetMap,
    as_of: AsOf,
    warnings: Warnings | None = None,
) -> MarginAccount | None:
    """The key's margin account (None when it holds nothing); ``index`` maps each asset to its index."""
    warnings = list(warnings or [])
    live = [p for p in positions if p.amount != 0]
    if (
        account.equity == 0
        and account.balance == 0
        and not live
        and all(c.balance == 0 for c in account.collaterals)
    ):
        return None
    out: list[Position] = []
    greeks: dict[str, dict[str, str | None]] = {}
    margin_types: dict[str, str | None] = {}
    for c in account.collaterals:
        if c.collateral_asset == SETTLEMENT or c.balance == 0:
            continue
        price = c.collateral_value / c.balance
        out.append(
            spot_position(assets, c.collateral_asset, c.balance, price, venue=VENUE, warnings=warnings)
        )
    for p in live:
        qty = _signed(p)
        if p.asset not in index:
            raise VenueDataError(f"{p.instrument_name}: no index price for {p.asset}", venue=VENUE)
        if p.instrument_type == "OPTION":
            out.append(_option(p, qty, index[p.asset], assets, warnings))
            o = p.option
            assert o is not None
            greeks[p.instrument_name] = greeks_raw(delta=o.delta, gamma=o.gamma, vega=o.vega, theta=o.theta)
        elif p.instrument_type == "PERPETUAL":
            out.append(_perp(p, qty, index[p.asset], assets, warnings))
            margin_types[p.instrument_name] = p.margin_type
        else:
            out.append(
                spot_position(
                    assets,
                    p.asset,
                    qty,
                    p.mark_price,
                    venue=VENUE,
                    warnings=warnings,
                    token=p.instrument_name,
                )
            )
    other = sum((q.value for q in out), Decimal(0))
    out.insert(0, cash_position(assets, SETTLEMENT, account.equity - other, VENUE, warnings))
    mm = account.maintenance_margin
    health = Decimal("Infinity") if mm <= 0 else account.equity / mm
    if account.in_liquidation is not None and account.in_liquidation != (health < 1):
        warnings.append(f"{VENUE}: in_liquidation={account.in_liquidation} but equity/maintenance = {health}")
    try:
        return MarginAccount(
            venue=VENUE,
            deployment=deployment,
            account_id=account.account,
            wallet=wallet,
            margin_model=margin_model_for(account.portfolio),
            positions=tuple(out),
            as_of=as_of,
            venue_health=health,
            raw={
                "warnings": warnings,
                "equity": str(account.equity),
                "maintenance_margin": str(mm),
                "initial_margin": str(account.initial_margin),
                "in_liquidation": account.in_liquidation,
                "portfolio_margin": account.portfolio,
                "index": {k: str(v) for k, v in index.items()},
                "perp_margin_types": margin_types,
                "greeks": greeks,
            },
        )
    except RiskInputError as exc:
        raise VenueDataError(str(exc), venue=VENUE) from None


class AevoAdapter(CredentialedVenueAdapter):
    """Reads ``/account``, ``/positions`` and each underlying's ``/index`` with the user's key."""

    family = VENUE
    margin_model = MODEL
    capabilities = frozenset({"venue_health", "greeks", "options"})
    not_configured_reason = (
        "Aevo needs an API key: set CROSSMARGIN__VENUES__AEVO__API_KEY and "
        "CROSSMARGIN__VENUES__AEVO__API_SECRET (or api_key / api_secret under [venues.aevo] "
        "in the secrets file)"
    )

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        super().__init__(instance=instance, spec=spec, context=context)
        self.api_key = secret_value(self.venue_spec.api_key)
        self.api_secret = secret_value(self.venue_spec.api_secret)

    def credentials(self) -> tuple[str | None, ...]:
        return (self.api_key, self.api_secret)

    async def _get(
        self, path: str, params: Mapping[str, str] | None = None, *, auth: bool = True
    ) -> JsonResponse:
        headers = {"AEVO-KEY": self.api_key or "", "AEVO-SECRET": self.api_secret or ""} if auth else None
        try:
            response = await self.http.get(path, params=params, headers=headers)
        except VenueUnavailable as exc:
            if auth and "HTTP 401" in str(exc):
                raise VenueUnavailable(
                    f"GET {path}: credentials refused (HTTP 401): check [venues.aevo] api_key / api_secret",
                    venue=self.deployment,
                ) from None
            raise
        assert response is not None
        return response

    async def read_with_credentials(self, wallets: Sequence[ChecksumAddress]) -> list[MarginAccount]:
        account_response = await self._get("/account")
        account = parse_model(AevoAccount, account_response.body, venue=VENUE, what="account")
        listed = parse_model(_Positions, (await self._get("/positions")).body, venue=VENUE, what="positions")
        if listed.account.lower() != account.account.lower():
            raise VenueDataError(
                f"/positions is for {listed.account}, /account for {account.account}", venue=VENUE
            )
        index: dict[str, Decimal] = {}
        for asset in sorted({p.asset for p in listed.positions if p.amount != 0}):
            raw = (await self._get("/index", {"asset": asset}, auth=False)).body
            index[asset] = parse_model(IndexPrice, raw, venue=VENUE, what="index").price
        owner, guessed = self.owner(wallets, [account.account])
        as_of = AsOf(timestamp=account_response.server_time or self.context.now())
        result = aevo_account(
            account,
            listed.positions,
            index,
            wallet=owner,
            deployment=self.deployment,
            assets=self.context.assets,
            as_of=as_of,
            warnings=[guessed] if guessed else None,
        )
        return [] if result is None else [result]
