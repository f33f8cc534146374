#!/usr/bin/env bash
# Coverage-guided fuzzing of Tape's four targets with cargo-fuzz (libFuzzer, on the
# nightly toolchain): decode_command, core_stream, file_log, gateway_input (their
# checks are documented in fuzz-targets/src/lib.rs). Each runs SECONDS (default
# 1200) with the committed corpus in fuzz/corpus/<target>/, which it grows; a
# finding lands in fuzz/artifacts/<target>/ and stops that target.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# The test suite replays the corpus and a seeded run through the same checks
# (fuzz-targets/tests/corpus.rs) on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-1200}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(decode_command core_stream file_log gateway_input)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O
for t in "${TARGETS[@]}"; do
    echo "fuzz.sh: $t for ${SECONDS_EACH}s" >&2
    cargo +nightly fuzz run -O "$t" -- -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=4096
done
