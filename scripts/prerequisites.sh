#!/usr/bin/env bash
# Installs what privaci's tests and demo need on a fresh Debian machine: the PostgreSQL
# server binaries (initdb, postgres, pg_ctl, psql), openssl and runuser. Safe to run again.
set -euo pipefail

have_server() {
  local dir="${PG_BINDIR:-}"
  if [ -z "$dir" ] && command -v pg_config >/dev/null 2>&1; then dir="$(pg_config --bindir)"; fi
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && return 0
  [ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/postgres ]
}

if ! have_server || ! command -v psql >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL server binaries are missing; run as root or: sudo apt-get install postgresql-15" >&2
    exit 1
  fi
  echo "installing PostgreSQL server binaries (apt-get install postgresql-15)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-contrib >/dev/null
fi

# The TLS tests make certificates with openssl, as users do (the PostgreSQL docs' recipes).
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "openssl is missing; run as root or: sudo apt-get install openssl" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi

if [ "$(id -u)" -eq 0 ]; then
  # The server refuses to run as root; the tests run it as the postgres user.
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  command -v runuser >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq util-linux >/dev/null; }
fi
