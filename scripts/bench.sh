#!/usr/bin/env bash
# The clone benchmark on a fresh machine: installs the PostgreSQL server binaries and
# pgcopydb if missing (Debian/Ubuntu, as root), then runs `cargo bench --bench clone`.
# Settings: PRIVACI_BENCH_SCALE (default 2), PRIVACI_BENCH_ROUNDS (3), PRIVACI_BENCH_JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
if ! command -v pgcopydb >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgcopydb >/dev/null || echo "pgcopydb could not be installed; its row will say so" >&2
fi
cargo bench --locked --bench clone
