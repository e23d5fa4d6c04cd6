"""Persistence (design section 6): schema, engines, migrations, the write repository, history, retention
and CSV export. SQLite (WAL) by default under the user's data directory; PostgreSQL by URL.

Entry points: :func:`open_database` (resolve, connect, check or upgrade the schema), :class:`Repository`
(``store_scan`` and wallets), ``aggregator.db.history`` (reads), :func:`run_retention` (the scheduler's
job), ``aggregator.db.export`` (CSV).
"""

from aggregator.db.engine import create_engine, default_sqlite_path, redact, resolve_url, write_transaction
from aggregator.db.migrate import current_revision, downgrade, head_revision, open_database, upgrade
from aggregator.db.repository import Repository, ScanInfo, StoreResult, WalletInfo
from aggregator.db.retention import RetentionPolicy, RetentionReport, apply_retention, run_retention

__all__ = [
    "Repository",
    "RetentionPolicy",
    "RetentionReport",
    "ScanInfo",
    "StoreResult",
    "WalletInfo",
    "apply_retention",
    "create_engine",
    "current_revision",
    "default_sqlite_path",
    "downgrade",
    "head_revision",
    "open_database",
    "redact",
    "resolve_url",
    "run_retention",
    "upgrade",
    "write_transaction",
]
