#!/usr/bin/env bash
# Where a cached page's CPU goes: `bash bench/profile.sh` (about two minutes).
#
# Runs scene-qr (one worker) and the reference handler under valgrind's callgrind while wrk
# asks for a cached page, and prints the instructions each spends per request, then the
# functions of scene-qr's request by inclusive instructions per request. Instruction counts
# repeat from run to run whatever else the machine is doing, unlike timings; they leave out
# the kernel's share (sending and receiving), which is about the same for both, and the
# cost of two cores writing to one cache line, which only shows in `bench/run.sh`.
# Settings: URL_PATH (default /qrcode?scene_id=1), TOP (default 40 lines).
set -euo pipefail
cd "$(dirname "$0")/.."

URL_PATH=${URL_PATH:-/qrcode?scene_id=1}
TOP=${TOP:-40}
APP_PORT=18080
EMU_PORT=18090
REF_PORT=18091

for tool in wrk valgrind; do
  if ! command -v $tool >/dev/null; then
    echo "installing $tool from Debian's packages" >&2
    (apt-get update -qq && apt-get install -y -qq $tool) >/dev/null || { echo "$tool is needed: apt-get install $tool" >&2; exit 1; }
  fi
done
cargo build --release --locked --quiet --bin scene-qr --example wechat_emulator --example reference_server

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {  # URL PID
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 for $1 exited (port taken?)" >&2; exit 1; }
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2; exit 1
}

control() {  # callgrind_control ARGS, stopping the script if it fails
  callgrind_control "$@" >/dev/null 2>&1 || { echo "callgrind_control $* failed" >&2; exit 1; }
}

# measure NAME PID URL: instructions per request of PID while wrk asks for URL
measure() {
  curl -fs "$3" >/dev/null
  control -i on "$2"
  local requests
  requests=$(wrk -t1 -c8 -d10s "$3" | awk '/requests in/ {print $1}')
  control -i off "$2"
  control -d "$2"
  sleep 1
  echo "$requests" >"$work/$1.requests"
}

per_request() {  # NAME [--inclusive=yes]: callgrind's table divided by the request count
  local requests
  requests=$(cat "$work/$1.requests")
  callgrind_annotate --show-percs=no "${@:2}" "$work/$1.out".* 2>/dev/null |
    awk -v n="$requests" '/PROGRAM TOTALS/ {f=1} f && $1 ~ /^[0-9,]+$/ {
      x=$1; gsub(",", "", x); $1=""; sub(/^ +/, ""); printf "%8.0f  %s\n", x / n, substr($0, 1, 150) }'
}

for port in $APP_PORT $EMU_PORT $REF_PORT; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "port $port is already in use: stop what listens there first" >&2; exit 1
  fi
done

./target/release/examples/wechat_emulator 127.0.0.1:$EMU_PORT wxbench0000000000 benchsecret 0 2>/dev/null &
pids+=($!)
wait_for "http://127.0.0.1:$EMU_PORT/emulator/calls" $!
SCENE_QR_WORKERS=1 SCENE_QR_LISTEN=127.0.0.1:$APP_PORT WECHAT_APPID=wxbench0000000000 \
  WECHAT_APPSECRET=benchsecret WECHAT_API_BASE=http://127.0.0.1:$EMU_PORT \
  WECHAT_MP_BASE=http://127.0.0.1:$EMU_PORT DATABASE_URL="sqlite://$work/profile.db" \
  RUST_LOG=${RUST_LOG:-info} valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/app.out" ./target/release/scene-qr 2>"$work/app.log" &
app=$!
pids+=($app)
wait_for "http://127.0.0.1:$APP_PORT/healthz" $app
measure app $app "http://127.0.0.1:$APP_PORT$URL_PATH"
bytes=$(curl -fs "http://127.0.0.1:$APP_PORT$URL_PATH" | wc -c)

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/ref.out" \
  ./target/release/examples/reference_server 127.0.0.1:$REF_PORT "$bytes" 2>"$work/ref.log" &
ref=$!
pids+=($ref)
wait_for "http://127.0.0.1:$REF_PORT/" $ref
measure ref $ref "http://127.0.0.1:$REF_PORT/"

echo "instructions per request (user space):"
echo "  scene-qr $URL_PATH: $(per_request app | awk 'NR == 1 {print $1}')"
echo "  reference handler ($bytes B): $(per_request ref | awk 'NR == 1 {print $1}')"
echo
echo "scene-qr, inclusive instructions per request:"
per_request app --inclusive=yes | awk -v top="$TOP" 'NR <= top' 
