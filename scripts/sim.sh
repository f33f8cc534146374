#!/usr/bin/env bash
# The long run of Tape's deterministic simulation (the test suite runs 300 seeds):
#   ./scripts/sim.sh [SEEDS=10000] [FROM=0]     (JOBS=2 threads by default)
# A failing seed prints the one-line command that runs it again; TAPE_SIM_TRACE=1
# on that command prints what the engines did.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -p tape-sim -- --seeds "${1:-10000}" --from "${2:-0}" --jobs "${JOBS:-2}"
