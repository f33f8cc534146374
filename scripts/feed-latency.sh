#!/usr/bin/env bash
# Submit-to-outcome latency through the Kafka door, as a Python market maker sees it:
# a signed JSON order produced to the commands topic, until its outcome is read from
# the account's JSON feed (engine -> events topic -> tape fanout -> feed topic).
# Starts its own tansu broker and `tape run --demo --open` on Kafka, and `tape fanout`.
#   scripts/feed-latency.sh [ORDERS]      (default 1000; each placed then cancelled)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
cargo build --release --bin tape -q
TAPE=$PWD/target/release/tape
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tansu broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
    --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
PIDS=($!)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
K=(--kafka "127.0.0.1:$PORT")
"$TAPE" run "${K[@]}" --demo --open --data "$WORK/run" --listen 127.0.0.1:0 \
    --admin-token latency-admin 2>"$WORK/run.log" &
PIDS+=($!)
"$TAPE" fanout "${K[@]}" --data "$WORK/fanout" 2>"$WORK/fanout.log" &
PIDS+=($!)
for _ in $(seq 1 300); do grep -q "GraphQL on http://" "$WORK/run.log" && break; sleep 0.1; done
ADDR=$(sed -n 's|.*GraphQL on http://\([^/]*\)/.*|\1|p' "$WORK/run.log" | head -1)
TOKEN=$(curl -s "$ADDR/graphql" -H "authorization: Bearer latency-admin" -H 'content-type: application/json' \
    -d '{"query":"mutation { createApiKey(role: TRADER, account: 1) { token } }"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
python3 examples/python/tape_feed.py --brokers "127.0.0.1:$PORT" --token "$TOKEN" --account 1 measure "$N"
# For comparison, in the same run: the same order through GraphQL (the gateway
# appends it to the commands topic and answers once its read models hold the
# outcome): N/10 orders, each placed then cancelled, timed by curl.
for _ in $(seq 1 $((N / 10))); do
  curl -s -o "$WORK/placed" -w '%{time_total}\n' "$ADDR/graphql" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"query":"mutation { placeOrder(input: {market: \"BTC-USDT\", side: SELL, kind: LIMIT, price: \"90000\", quantity: \"0.001\"}) { id } }"}' >>"$WORK/graphql-times"
  ID=$(sed 's/.*"id":\([0-9]*\).*/\1/' "$WORK/placed")
  curl -s -o /dev/null "$ADDR/graphql" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"query\":\"mutation { cancelOrder(orderId: $ID) { status } }\"}"
done
sort -n "$WORK/graphql-times" | python3 -c '
import sys; t = [float(x) * 1000 for x in sys.stdin]
pick = lambda q: t[min(len(t) - 1, int(q * len(t)))]
print("{\"graphql_orders\": %d, \"p50_ms\": %.2f, \"p99_ms\": %.2f}" % (len(t), pick(0.5), pick(0.99)))'

