"""What ``crossmargin watch`` watches: stored portfolios and wallets given on the command line, each
with its effective schedule from ``[watch]``.

- no argument: every stored portfolio that has wallets (``Repository.wallets``);
- arguments: ``aggregator.targets.resolve_targets`` (the same rules as ``scan``): addresses and ENS
  names form one portfolio named ``--portfolio`` (default ``default``), any other name is a stored
  portfolio (an unknown one is an ``InputError`` with a did-you-mean);
- ``[watch.portfolios.<name>] enabled = false`` leaves a portfolio out.

Per portfolio: interval / block_driven / only from ``[watch.portfolios.<name>]``, else ``[watch]``;
command-line ``--interval`` / ``--block-driven`` / ``--only`` override both.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.addresses import ChecksumAddress, parse_address
from aggregator.config import Settings
from aggregator.db.repository import Repository
from aggregator.errors import InputError
from aggregator.service.runner import WatchTarget
from aggregator.targets import DEFAULT_PORTFOLIO, resolve_targets

__all__ = ["DEFAULT_PORTFOLIO", "resolve_watch_targets"]


def resolve_watch_targets(
    settings: Settings,
    repository: Repository,
    names: Sequence[str],
    *,
    cli_portfolio: str | None = None,
    interval: float | None = None,
    block_driven: bool | None = None,
    only: str | None = None,
) -> list[WatchTarget]:
    """The targets (see the module docstring). Call it outside a running event loop."""
    groups: dict[str, tuple[ChecksumAddress, ...]] = {}
    if names:
        for name, wallets in resolve_targets(settings, repository, names, portfolio=cli_portfolio):
            groups[name] = tuple(dict.fromkeys(groups.get(name, ()) + wallets))
    else:
        for info in repository.wallets(cli_portfolio):
            groups[info.portfolio] = (*groups.get(info.portfolio, ()), parse_address(info.address))
    targets = []
    for name, wallets in groups.items():
        every, driven, own_only, enabled = settings.watch.for_portfolio(name)
        if not enabled or not wallets:
            continue
        targets.append(WatchTarget(
            name=name,
            wallets=wallets,
            interval=interval if interval is not None else every,
            block_driven=block_driven if block_driven is not None else driven,
            only=only if only is not None else own_only,
        ))
    if not targets:
        raise InputError(
            "nothing to watch: give wallet addresses or portfolio names, or store some with "
            "`crossmargin wallets add ADDRESS --portfolio NAME`"
        )
    return targets
