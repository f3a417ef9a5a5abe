#!/usr/bin/env bash
# Statistics benchmark: how fast the statistics pages answer as the stored history grows.
#
#   bash bench/stats.sh                          # 100,000, 1,000,000 and 10,000,000 events
#   SIZES="100000 1000000" bash bench/stats.sh
#   KEEP_DB=/tmp/stats-dbs SIZES=1000000 bash bench/stats.sh   # seed once, reuse after
#
# For each size: generates a history (bench/events.py: 2,000 scenes over 60 days, about one
# user in five scanning more than once, one event in ten an unfollow), imports it with
# `scene-qr import-events --server-stopped` into an empty database (timed), puts 200 scenes into 10 groups
# through the API, then measures with wrk (one connection, 10 s each) the p50 and p99 of
# `/stats` (the last 30 days of the history, first page), `/stats?group=…`,
# `/stats/{scene}` and `/api/stats`, and the time of a full `/stats.csv`; and the size of the
# database. Prints a table.
#
# KEEP_DB=DIR keeps each seeded database as DIR/stats-SIZE.db and, when it is already there,
# measures it instead of seeding again (the import column then reads "reused"): seeding a
# million events takes minutes, and a change to the pages needs only the pages measured.
# Delete the file after a change to the events, the import or the schema.
# SCENE_QR=PATH measures a binary built earlier instead of building this checkout's (to compare
# two builds on one machine, on the same databases).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-100000 1000000 10000000}
PORT=${PORT:-18082}
DURATION=${DURATION:-10s}

source bench/lib.sh
need wrk python3
ports_free "$PORT"
if [ -z "${SCENE_QR:-}" ]; then
  cargo build --release --locked --quiet
  SCENE_QR=./target/release/scene-qr
fi

# The history starts at this Unix time (2023-11-14 22:13:20 UTC) and lasts 60 days.
START=1700000000
range="from=2023-12-14&to=2024-01-12"
base="http://127.0.0.1:$PORT"

# latency PATH: "p50 / p99" in ms of GET PATH, one connection for DURATION.
latency() {
  wrk -t1 -c1 -d"$DURATION" --latency "$base$1" >"$work/wrk.txt"
  if grep -q "Non-2xx" "$work/wrk.txt"; then
    echo "$1 answered errors" >&2; cat "$work/wrk.txt" >&2; exit 1
  fi
  awk '/Latency Distribution/{f=1} f && $1=="50%"{p50=$2} f && $1=="99%"{p99=$2} END {print p50 " / " p99}' \
    "$work/wrk.txt"
}

rows=()
for size in $SIZES; do
  echo "== $size events" >&2
  db="$work/stats-$size.db"
  if [ -n "${KEEP_DB:-}" ]; then mkdir -p "$KEEP_DB"; db="$KEEP_DB/stats-$size.db"; fi
  if [ -n "${KEEP_DB:-}" ] && [ -f "$db" ]; then
    import_rate=reused
  else
    python3 bench/events.py "$size" "$START" >"$work/events.jsonl"
    started=$(date +%s.%N)
    DATABASE_URL="sqlite://$db" SCENE_QR_UTC_OFFSET=+08:00 RUST_LOG=warn \
      "$SCENE_QR" import-events --server-stopped "$work/events.jsonl" >"$work/import.txt"
    ended=$(date +%s.%N)
    import_rate=$(awk -v n="$size" -v a="$started" -v b="$ended" 'BEGIN {printf "%.0f/s", n / (b - a)}')
    rm -f "$work/events.jsonl"
  fi

  SCENE_QR_LISTEN=127.0.0.1:$PORT DATABASE_URL="sqlite://$db" SCENE_QR_UTC_OFFSET=+08:00 \
    RUST_LOG=warn "$SCENE_QR" >"$work/server.log" 2>&1 &
  server=$!
  pids+=($server)
  wait_for "$base/healthz" $server
  for scene in $(seq 1 200); do
    curl -fs -X PUT -H 'content-type: application/json' \
      -d "{\"group\": \"group-$((scene % 10))\"}" "$base/api/scenes/$scene" >/dev/null
  done

  stats=$(latency "/stats?$range")
  group=$(latency "/stats?$range&group=group-3")
  scene=$(latency "/stats/17?$range")
  api=$(latency "/api/stats?$range")
  csv_started=$(date +%s.%N)
  curl -fs "$base/stats.csv?$range" -o "$work/stats.csv"
  csv_ended=$(date +%s.%N)
  csv=$(awk -v a="$csv_started" -v b="$csv_ended" 'BEGIN {printf "%.0f ms", (b - a) * 1000}')
  csv_rows=$(($(wc -l <"$work/stats.csv") - 1))
  kill "$server"; wait "$server" 2>/dev/null || true
  pids=("${pids[@]/$server/}")
  size_mb=$(du -m "$db" | cut -f1)
  rows+=("| $size | $import_rate | $stats | $group | $scene | $api | $csv ($csv_rows rows) | $size_mb MB |")
  if [ -z "${KEEP_DB:-}" ]; then rm -f "$db" "$db-wal" "$db-shm"; fi
done

echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -m); wrk -t1 -c1 -d$DURATION; latencies p50 / p99"
echo
echo "| events | import | /stats | /stats?group= | /stats/{scene} | /api/stats | full /stats.csv | database |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
