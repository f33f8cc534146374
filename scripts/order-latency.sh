#!/usr/bin/env bash
# An order's round trip at low load on the embedded default, durable: starts `tape
# run --demo` in a fresh directory, makes a trader key for account 1, and runs `tape
# bench order` over GraphQL and through the commands log (one client, one order at a
# time: place, then cancel). `SERVER=path/to/tape` runs another build's server
# (the client is always this build's); ORDERS and RUNS tune the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin tape >/dev/null
TAPE=$PWD/target/release/tape
SERVER=${SERVER:-$TAPE}
ORDERS=${ORDERS:-300}
RUNS=${RUNS:-3}
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cd "$DIR"
"$SERVER" run --demo --listen "127.0.0.1:$PORT" --rate-per-second 1000000 --rate-burst 1000000 >run.log 2>&1 &
RUN=$!
trap 'kill $RUN 2>/dev/null || true; wait $RUN 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do
    curl -sf "127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done
ADMIN=$(cat data/admin-token)
KEY=$(curl -s "127.0.0.1:$PORT/graphql" -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d '{"query":"mutation { createApiKey(role: TRADER, account: 1) { token } }"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
# The operator's clock (the server's own build), so signed commands stay valid
# however long the bench runs.
OPS=$(curl -s "127.0.0.1:$PORT/graphql" -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d '{"query":"mutation { createApiKey(role: ADMIN) { token } }"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
"$SERVER" clock --key "$OPS" >clock.log 2>&1 &
CLOCK=$!
trap 'kill $CLOCK $RUN 2>/dev/null || true; wait $RUN 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$TAPE" bench order --via graphql --url "http://127.0.0.1:$PORT/graphql" --key "$KEY" --orders "$ORDERS" --runs "$RUNS"
"$TAPE" bench order --via log --key "$KEY" --orders "$ORDERS" --runs "$RUNS"
