#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries (initdb, pg_ctl) exist, for the tests and benchmarks that
# start a throwaway server (tests/db/pg_server.py). Installs the Debian package when they are missing.
# Needs root (or sudo) only when it has to install.
set -euo pipefail

if command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_postgres: initdb not found and apt-get is unavailable; install PostgreSQL server binaries" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "ensure_postgres: installing PostgreSQL (Debian package)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || {
    echo "ensure_postgres: postgresql installed but initdb not found under /usr/lib/postgresql/*/bin" >&2
    exit 1
}
