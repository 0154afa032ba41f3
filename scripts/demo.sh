#!/usr/bin/env bash
# The main job, end to end on a fresh machine: `privaci demo` starts two throwaway PostgreSQL
# clusters with TLS and SCRAM, loads the MedicalHelpDesk fixture as a non-superuser, clones
# it with masking, prints rows before and after and the report, and removes the clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
cargo build --release --locked --bin privaci
./target/release/privaci demo
