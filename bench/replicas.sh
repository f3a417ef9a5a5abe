#!/usr/bin/env bash
# Replicas benchmark: three scene-qr processes on one PostgreSQL database behind HAProxy, set up
# from deploy/haproxy.cfg itself (ports moved to loopback ones), against the emulator as its own
# process taking 20 ms a call. Measures, in this order:
#
#   1. the cold path: 10,000 distinct scenes at concurrency 100 through the load balancer
#      (so spread over the replicas): wall time, creates and token calls the emulator received;
#   2. a cached page through one replica: requests/s, p50 and p99 at 64 connections;
#   3. the callback through the load balancer: distinct signed pushes at 64 connections,
#      rows stored, stored events/s and p99;
#   4. with STATS_DATABASE: `/stats`, `/stats/{scene}` and `/api/stats` p50 / p99 (one
#      connection) on a database of that name on the same server that holds a history (see
#      bench/README.md for seeding one with bench/events.py).
#
#   bash bench/replicas.sh
#   BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres STATS_DATABASE=stats_10000000 \
#     bash bench/replicas.sh
#
# Without BENCH_POSTGRES it starts a throwaway cluster (.ci/postgres.sh) and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
LB_PORT=18110
REPLICA_PORTS=(18111 18112 18113)
EMU_PORT=18119
APPID=wxbench0000000000
SECRET=benchsecret
TOKEN=benchtoken
# The statistics history of bench/stats.sh: 60 days from 2023-11-14, the last 30 asked for.
RANGE="from=2023-12-14&to=2024-01-12"

source bench/lib.sh
source .ci/postgres.sh
need wrk haproxy python3 curl
binaries
ports_free $LB_PORT "${REPLICA_PORTS[@]}" $EMU_PORT

if [ -z "${BENCH_POSTGRES:-}" ]; then
  trap 'cleanup; postgres_stop' EXIT
  postgres_start >&2
  BENCH_POSTGRES=$SCENE_QR_TEST_POSTGRES
fi
server_url=${BENCH_POSTGRES%/*}
database="bench_replicas_$$"
psql -q "$BENCH_POSTGRES" -c "CREATE DATABASE $database"
DATABASE_URL="$server_url/$database"

"$BINARIES/wechat_emulator" 127.0.0.1:$EMU_PORT $APPID $SECRET 20 2>"$work/emulator.log" &
pids+=($!)
wait_for "http://127.0.0.1:$EMU_PORT/emulator/calls" $!

# replica PORT DATABASE_URL: starts one replica; its pid in $replica_pid.
replica() {
  SCENE_QR_LISTEN=127.0.0.1:$1 DATABASE_URL=$2 WECHAT_APPID=$APPID WECHAT_APPSECRET=$SECRET \
    WECHAT_API_BASE=http://127.0.0.1:$EMU_PORT WECHAT_MP_BASE=http://127.0.0.1:$EMU_PORT \
    WECHAT_TOKEN=$TOKEN SCENE_QR_TRUSTED_PROXIES=127.0.0.1 SCENE_QR_UTC_OFFSET=+08:00 \
    SCENE_QR_NEW_CODES_PER_MINUTE=0 SCENE_QR_NEW_CODES_PER_MINUTE_TOTAL=0 RUST_LOG=warn \
    "$BINARIES/scene-qr" 2>>"$work/replica-$1.log" &
  replica_pid=$!
  pids+=($replica_pid)
}
replica_pids=()
for port in "${REPLICA_PORTS[@]}"; do
  replica "$port" "$DATABASE_URL"
  replica_pids+=($replica_pid)
done
for i in 0 1 2; do
  wait_for "http://127.0.0.1:${REPLICA_PORTS[$i]}/healthz" "${replica_pids[$i]}"
done

# The deployment example as shipped, on loopback ports, without syslog: if it stops being a
# valid configuration, or stops balancing, this benchmark fails.
sed -e "s/bind :8080/bind 127.0.0.1:$LB_PORT/" \
  -e "s/127.0.0.1:8081/127.0.0.1:${REPLICA_PORTS[0]}/" \
  -e "s/127.0.0.1:8082/127.0.0.1:${REPLICA_PORTS[1]}/" \
  -e "s/127.0.0.1:8083/127.0.0.1:${REPLICA_PORTS[2]}/" \
  -e '/log \/dev\/log/d' deploy/haproxy.cfg >"$work/haproxy.cfg"
haproxy -c -q -f "$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" 2>"$work/haproxy.log" &
pids+=($!)
wait_for "http://127.0.0.1:$LB_PORT/healthz" $!

calls() {  # the emulator's count of one endpoint
  curl -fs "http://127.0.0.1:$EMU_PORT/emulator/calls" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
created() {  # creates the three replicas have completed, from their /metrics
  local port total=0 n
  for port in "${REPLICA_PORTS[@]}"; do
    n=$(curl -fs "http://127.0.0.1:$port/metrics" |
      awk '/^scene_qr_upstream_calls_total\{/ && /qrcode\/create/ && /errcode="0"/ { n += $NF } END { print n + 0 }')
    total=$((total + n))
  done
  echo $total
}
p99_of() { awk '/Latency Distribution/{f=1} f && $1=="99%"{print $2; exit}' "$1"; }
p50_of() { awk '/Latency Distribution/{f=1} f && $1=="50%"{print $2; exit}' "$1"; }
no_errors() {  # FILE: stops if wrk saw socket errors or non-2xx answers
  if grep -qE "Socket errors|Non-2xx" "$1"; then echo "errors in $1" >&2; cat "$1" >&2; exit 1; fi
}

echo "== 1. cold path through the load balancer" >&2
started=$(date +%s.%N)
wrk -t2 -c100 -d600s -s bench/distinct.lua "http://127.0.0.1:$LB_PORT" -- "/api/qrcode?scene_id=" 5000 >"$work/cold.txt" &
wrk_pid=$!
until [ "$(created)" -ge 10000 ]; do
  kill -0 $wrk_pid 2>/dev/null || { echo "wrk stopped early" >&2; cat "$work/cold.txt" >&2; exit 1; }
  sleep 0.05
done
ended=$(date +%s.%N)
wait $wrk_pid 2>/dev/null || true
no_errors "$work/cold.txt"
cold_seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", b - a }')
cold_creates=$(calls qrcode_create)
cold_tokens=$(($(calls stable_token) + $(calls token)))
codes_rows=$(psql -At "$DATABASE_URL" -c "SELECT count(*) FROM codes")

echo "== 2. a cached page through one replica" >&2
page="http://127.0.0.1:${REPLICA_PORTS[0]}/qrcode?scene_id=1"
curl -fs "$page" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$page" >"$work/page.txt"
no_errors "$work/page.txt"
page_rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$work/page.txt")

echo "== 3. the callback through the load balancer" >&2
signed_queries "$TOKEN" 600000 >"$work/queries.txt"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/callback.lua \
  "http://127.0.0.1:$LB_PORT" -- "$work/queries.txt" 2 >"$work/callback.txt"
no_errors "$work/callback.txt"
answered=$(awk '/requests in/ {print $1}' "$work/callback.txt")
seconds=$(grep -Eo 'requests in [0-9.]+(ms|s|m)' "$work/callback.txt" | awk '{v=$3; if (v ~ /ms$/) {sub(/ms/,"",v); v/=1000} else if (v ~ /m$/) {sub(/m/,"",v); v*=60} else {sub(/s/,"",v)}; print v}')
stored=$(psql -At "$DATABASE_URL" -c "SELECT count(*) FROM scan_events")
per_replica=$(for port in "${REPLICA_PORTS[@]}"; do
  curl -fs "http://127.0.0.1:$port/metrics" |
    awk '/^scene_qr_http_requests_total\{/ && /callback/ && /status="200"/ { n += $NF } END { printf "%d ", n }'
done)

if [ -n "${STATS_DATABASE:-}" ]; then
  echo "== 4. statistics on $STATS_DATABASE" >&2
  stats_port=18114
  replica $stats_port "$server_url/$STATS_DATABASE"
  wait_for "http://127.0.0.1:$stats_port/healthz" $replica_pid
  for path in "/stats?$RANGE" "/stats/17?$RANGE" "/api/stats?$RANGE"; do
    wrk -t1 -c1 -d"$DURATION" --latency "http://127.0.0.1:$stats_port$path" >"$work/stats.txt"
    no_errors "$work/stats.txt"
    echo "| \`${path%%\?*}\` | $(p50_of "$work/stats.txt") / $(p99_of "$work/stats.txt") |" >>"$work/stats-rows.txt"
  done
  events=$(psql -At "$server_url/$STATS_DATABASE" -c "SELECT count(*) FROM scan_events")
fi

psql -q "$BENCH_POSTGRES" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true

echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -m); PostgreSQL $(psql -At "$BENCH_POSTGRES" -c 'SHOW server_version'); three replicas and HAProxy $(haproxy -v | awk 'NR==1 {print $3}') on this machine"
echo
echo "| measure | result |"
echo "|---|---|"
echo "| cold path: 10,000 scenes, concurrency 100 through HAProxy, 20 ms a call | $cold_seconds s wall, $cold_creates creates, $codes_rows rows in codes, $cold_tokens token calls |"
echo "| cached page, one replica, $CONNECTIONS connections | $page_rps req/s, p50 $(p50_of "$work/page.txt"), p99 $(p99_of "$work/page.txt") |"
awk -v a="$answered" -v s="$stored" -v t="$seconds" -v p="$(p99_of "$work/callback.txt")" -v r="$per_replica" \
  'BEGIN { printf "| callback through HAProxy, '"$CONNECTIONS"' connections | %d answered (%s per replica), %d stored, %.0f stored events/s, p99 %s |\n", a, r, s, s / t, p }'
if [ -n "${STATS_DATABASE:-}" ]; then
  echo
  echo "Statistics on $events events, one connection, p50 / p99:"
  echo
  echo "| page | latency |"
  echo "|---|---|"
  cat "$work/stats-rows.txt"
fi
