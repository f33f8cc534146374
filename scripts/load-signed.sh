#!/usr/bin/env bash
# The signed-load check of docs/replay-protection.md: `tape run --demo` on a fresh
# embedded log, credentials required (an admin key), then COMMANDS signed commands
# through `tape load` as fast as they are taken. Passes when every command is
# answered and none is refused (tape load prints the outcomes it saw). Not part of
# the test command: it takes minutes. Usage: scripts/load-signed.sh [COMMANDS]
set -euo pipefail
cd "$(dirname "$0")/.."
COMMANDS=${1:-3000000}
cargo build --release --bin tape
TAPE=target/release/tape
DIR=$(mktemp -d -t tape-load.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$TAPE run --demo --data "$DIR/data" --listen "127.0.0.1:$PORT" >"$DIR/run.log" 2>&1 &
RUN=$!
trap 'kill $RUN 2>/dev/null || true; wait $RUN 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do
    grep -q "GraphQL on" "$DIR/run.log" 2>/dev/null && break
    sleep 0.1
done
ADMIN=$(cat "$DIR/data/admin-token")
gql() { curl -s "127.0.0.1:$PORT/graphql" -H "authorization: Bearer $1" -H 'content-type: application/json' -d "{\"query\":\"$2\"}"; }
OPS=$(gql "$ADMIN" 'mutation { createApiKey(role: ADMIN) { token } }' | sed 's/.*"token":"\([^"]*\)".*/\1/')
gql "$OPS" 'mutation { requireCredentials(required: true) { status } }'; echo
OUT=$($TAPE load --data "$DIR/data" --commands "$COMMANDS" --rate 0 --key "$OPS" 2>&1 | tee /dev/stderr | tail -1)
case "$OUT" in
    *"answered on the events log: $COMMANDS commands"*'{"accepted": '"$COMMANDS"'}'*) echo "load-signed: every signed command accepted" ;;
    *) echo "load-signed: FAILED (not every command was accepted)" >&2; exit 1 ;;
esac
$TAPE replay verify --data "$DIR/data" | tail -1
ls -l "$DIR/data/snapshots"
