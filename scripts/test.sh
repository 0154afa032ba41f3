#!/usr/bin/env bash
# Runs privaci's whole test suite: unit tests, protocol replays, and integration tests
# against throwaway PostgreSQL clusters (started and removed by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
cargo test --locked
