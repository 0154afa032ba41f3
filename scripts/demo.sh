#!/usr/bin/env bash
# The main job, end to end on a fresh machine: start a throwaway PostgreSQL cluster with TLS
# and SCRAM, create a non-superuser, and run `privaci ping` against it with
# sslmode=verify-full. The cluster is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
cargo build --release --locked --bin privaci
cargo run --release --locked --example demo_server -- target/release/privaci
