#!/usr/bin/env bash
# The test command: starts a real Kafka-protocol broker (tansu, installed from the
# Rust crate registry if it is missing), runs every test against it and the embedded
# log, and stops the broker. Without a broker the Kafka tests fail: they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
if ! command -v tansu >/dev/null 2>&1 || ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    echo "test.sh: installing tansu $TANSU_VERSION (a Kafka-protocol broker; ~25 minutes the first time)" >&2
    cargo install tansu --version "$TANSU_VERSION" --features dynostore,libsql --locked \
        || cargo install tansu --version "$TANSU_VERSION" --features dynostore,libsql
fi

# Debian packages the tests use: curl (the guides' commands, cli/tests/guides.rs),
# node and npm, and chromium (the pages in a real browser, cli/tests/browser.rs).
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
MISSING=()
command -v curl >/dev/null 2>&1 || MISSING+=(curl)
command -v node >/dev/null 2>&1 || MISSING+=(nodejs)
command -v npm >/dev/null 2>&1 || MISSING+=(npm)
[ -x "${TAPE_CHROMIUM:-/usr/bin/chromium}" ] || MISSING+=(chromium chromium-driver)
if [ ${#MISSING[@]} -gt 0 ]; then
    echo "test.sh: installing ${MISSING[*]} (Debian)" >&2
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

# playwright-core for the browser tests, as pinned by web/tests/package-lock.json.
(cd web/tests && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# Python clients in the tests (the signing example, the market maker on the JSON
# feeds) need blake3 and confluent-kafka.
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    blake3==1.0.11 confluent-kafka==2.16.0

# A free port on 127.0.0.1 (tansu listens on IPv4 only).
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 19092)
LOG=$(mktemp -t tansu.XXXXXX.log)
tansu broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://tansu/ >"$LOG" 2>&1 &
TANSU_PID=$!
trap 'kill $TANSU_PID 2>/dev/null || true; wait $TANSU_PID 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    if ! kill -0 $TANSU_PID 2>/dev/null; then
        echo "test.sh: tansu failed to start:" >&2; cat "$LOG" >&2; exit 1
    fi
    sleep 0.1
done
echo "test.sh: tansu broker on 127.0.0.1:$PORT" >&2

export TAPE_KAFKA_BROKERS="127.0.0.1:$PORT"
cargo test --workspace --release "$@"
