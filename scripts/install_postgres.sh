#!/bin/sh
# Install Debian's PostgreSQL server for the request-log tests and benches (tests/servers.py
# starts a private cluster from its binaries; nothing uses the package's own cluster). Idempotent.
set -eu
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "postgresql already installed: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_postgres.sh: need root to apt-get install postgresql" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || { echo "install_postgres.sh: no apt-get here" >&2; exit 1; }
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
