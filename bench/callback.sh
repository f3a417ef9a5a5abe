#!/usr/bin/env bash
# Callback benchmark: how many scan pushes per second scene-qr stores durably, and how long
# WeChat waits for each answer, under load from wrk on this machine.
#
#   bash bench/callback.sh            # 64 connections for 10 s
#   CONNECTIONS=128 DURATION=30s bash bench/callback.sh
#   DATABASE_URL=postgres://USER@HOST/EMPTY_DATABASE bash bench/callback.sh   # on PostgreSQL
#
# It builds the release binary, starts it in sandbox mode with its own empty database, sends
# distinct signed SCAN pushes, then counts the rows the database holds.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
PORT=${PORT:-18081}
QUERIES=${QUERIES:-600000}
TOKEN=benchtoken

source bench/lib.sh
need wrk
ports_free "$PORT"
cargo build --release --locked --quiet

SCENE_QR_LISTEN=127.0.0.1:$PORT WECHAT_TOKEN=$TOKEN SCENE_QR_UTC_OFFSET=+00:00 \
  DATABASE_URL="${DATABASE_URL:-sqlite://$work/bench.db}" RUST_LOG=warn \
  ./target/release/scene-qr >"$work/server.log" 2>&1 &
server=$!
pids+=($server)
wait_for "http://127.0.0.1:$PORT/healthz" $server

# One signed query per push; enough for the run at well above the measured rate.
signed_queries "$TOKEN" "$QUERIES" >"$work/queries.txt"

wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/callback.lua \
  "http://127.0.0.1:$PORT" -- "$work/queries.txt" 2 | tee "$work/wrk.txt"

today=$(date -u +%Y-%m-%d)
stored=$(curl -fs "http://127.0.0.1:$PORT/api/stats?from=$today&to=$today" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["scans"])')
requests=$(grep -Eo '^ +[0-9]+ requests in' "$work/wrk.txt" | grep -Eo '[0-9]+')
seconds=$(grep -Eo 'requests in [0-9.]+(ms|s|m)' "$work/wrk.txt" | awk '{v=$3; if (v ~ /ms$/) {sub(/ms/,"",v); v/=1000} else if (v ~ /m$/) {sub(/m/,"",v); v*=60} else {sub(/s/,"",v)}; print v}')
p99=$(awk '/Latency Distribution/{f=1} f && $1=="99%"{print $2; exit}' "$work/wrk.txt")
non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$work/wrk.txt" | grep -Eo '[0-9]+$' || echo 0)

echo
echo "| connections | pushes answered | non-2xx | rows stored | stored events/s | p99 reply |"
echo "|---|---|---|---|---|---|"
awk -v c="$CONNECTIONS" -v r="$requests" -v n="$non2xx" -v s="$stored" -v t="$seconds" -v p="$p99" \
  'BEGIN { printf "| %d | %d | %d | %d | %.0f | %s |\n", c, r, n, s, s / t, p }'
