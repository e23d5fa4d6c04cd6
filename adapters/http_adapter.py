"""The bases of every adapter that reads a venue over HTTP (Hyperliquid, dYdX, Derive, Aevo, Deribit).

``HttpVenueAdapter`` checks that the configured spec is a :class:`VenueSpec` (``[venues.<name>]``)
and builds the venue's :class:`VenueHttp` on the scan's shared ``httpx.AsyncClient`` (rate limit and
retries from the spec). Subclasses implement ``read_accounts`` through ``self.http``.

``CredentialedVenueAdapter`` is the base of the venues read with the user's own API credentials
(Aevo, Deribit): one set of credentials reads ONE venue account. Its ``read_accounts``:

- no wallets: nothing;
- a credential missing (``credentials`` has a None): one UNAVAILABLE "not configured" account per
  wallet (``not_configured_account``, reason ``not_configured_reason``), never an empty result;
- otherwise ``read_with_credentials(wallets)``; a ``VenueError`` becomes ONE UNAVAILABLE account of
  the wallet that lists the venue account in ``[venues.<name>].accounts`` (else the first wallet),
  its reason with every secret (``secrets()``) replaced by ``***``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from pydantic import BaseModel, SecretStr

from adapters.addresses import ChecksumAddress
from adapters.base import AdapterContext, BlockRef, VenueAdapter
from adapters.errors import VenueError
from adapters.http import VenueHttp
from adapters.specs import VenueSpec
from risk.model import AccountStatus, AsOf, MarginAccount

__all__ = [
    "CredentialedVenueAdapter",
    "HttpVenueAdapter",
    "attribute",
    "not_configured_account",
    "redact",
    "secret_value",
]


class HttpVenueAdapter(VenueAdapter):
    """A :class:`VenueAdapter` configured by a ``VenueSpec`` and reading through ``VenueHttp``."""

    kind: ClassVar[Literal["evm", "http"]] = "http"
    venue_spec: VenueSpec
    http: VenueHttp

    def __init__(self, *, instance: str, spec: BaseModel, context: AdapterContext) -> None:
        if not isinstance(spec, VenueSpec):
            raise TypeError(f"{self.family} needs a VenueSpec, got {type(spec).__name__}")
        super().__init__(instance=instance, spec=spec, context=context)
        self.venue_spec = spec
        self.http = VenueHttp(context.http, venue=self.deployment, spec=spec)


# ---------------------------------------------------------------------------------------------
# credentials never leak; "not configured" is never an empty result


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every occurrence of every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def secret_value(value: SecretStr | None) -> str | None:
    """The secret's text, None when unset or blank."""
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


def not_configured_account(
    adapter: VenueAdapter, wallet: ChecksumAddress, reason: str, as_of: AsOf
) -> MarginAccount:
    """The account standing for "this venue needs credentials": UNAVAILABLE with ``raw.not_configured``
    (``aggregator.scan`` reports its read as ``not_configured``), never an empty result."""
    return MarginAccount(
        venue=adapter.family,
        deployment=adapter.deployment,
        account_id=wallet,
        wallet=wallet,
        margin_model=adapter.margin_model,
        positions=(),
        as_of=as_of,
        status=AccountStatus.UNAVAILABLE,
        status_reason=f"not configured: {reason}",
        raw={"not_configured": True},
    )


def attribute(
    wallets: Sequence[ChecksumAddress], mapping: Mapping[str, tuple[str, ...]], ids: Sequence[str]
) -> tuple[ChecksumAddress, str | None]:
    """The scanned wallet a credential-read account belongs to, and a warning when it was guessed:
    the wallet whose ``accounts`` entry lists one of ``ids`` (case-insensitive), else the wallet equal
    to one of ``ids``, else the first wallet."""
    wanted = {i.lower() for i in ids if i}
    lowered = {k.lower(): v for k, v in mapping.items()}
    if not wanted:  # the account could not be read: the wallet that lists one, else the first
        return next((w for w in wallets if w.lower() in lowered), wallets[0]), None
    for wallet in wallets:
        if any(v.lower() in wanted for v in lowered.get(wallet.lower(), ())):
            return wallet, None
    for wallet in wallets:
        if wallet.lower() in wanted:
            return wallet, None
    shown = ", ".join(sorted(i for i in ids if i)) or "?"
    return wallets[0], (
        f"the credentials read account {shown}, which no scanned wallet lists in "
        f"[venues.<venue>].accounts; attributed to {wallets[0]}"
    )


class CredentialedVenueAdapter(HttpVenueAdapter):
    """An HTTP venue read with the user's credentials (module docstring: not configured, unavailable
    with redaction, owner attribution). Subclasses set ``not_configured_reason``, implement
    ``credentials`` and ``read_with_credentials``, and may add secrets to ``secrets``."""

    not_configured_reason: ClassVar[str]

    @abstractmethod
    def credentials(self) -> tuple[str | None, ...]:
        """Every credential the venue needs (None: not set)."""

    @abstractmethod
    async def read_with_credentials(self, wallets: Sequence[ChecksumAddress]) -> list[MarginAccount]:
        """The credentials' accounts, attributed to one of ``wallets`` (raises ``VenueError``)."""

    def secrets(self) -> list[str]:
        """What must never appear in a reason: the set credentials (subclasses add tokens)."""
        return [s for s in self.credentials() if s]

    def owner(
        self, wallets: Sequence[ChecksumAddress], ids: Sequence[str]
    ) -> tuple[ChecksumAddress, str | None]:
        """``attribute`` against this venue's ``[venues.<name>].accounts``."""
        return attribute(wallets, self.venue_spec.accounts, ids)

    async def read_accounts(
        self, wallets: Sequence[ChecksumAddress], *, block: BlockRef | None = None
    ) -> list[MarginAccount]:
        if not wallets:
            return []
        now = AsOf(timestamp=self.context.now())
        if not all(self.credentials()):
            return [not_configured_account(self, w, self.not_configured_reason, now) for w in wallets]
        try:
            return await self.read_with_credentials(wallets)
        except VenueError as exc:
            owner, _ = self.owner(wallets, [])
            return [self.unavailable(owner, redact(str(exc), self.secrets()), now)]
