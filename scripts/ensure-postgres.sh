#!/usr/bin/env bash
# Makes sure a PostgreSQL server binary is on this machine (the registry tests start their own
# throwaway server with it). Installs Debian's package when missing and we are root.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-postgres: installing Debian's postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  exit 0
fi
echo "ensure-postgres: no PostgreSQL server found; install it (e.g. apt-get install postgresql) and re-run" >&2
exit 1
