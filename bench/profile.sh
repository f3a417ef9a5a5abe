#!/usr/bin/env bash
# Where a cached page's CPU goes: `bash bench/profile.sh` (about two minutes).
#
# Runs scene-qr (one worker) and the reference handler under valgrind's callgrind while wrk
# asks for a cached page, and prints the instructions each spends per request, then the
# functions of scene-qr's request by inclusive instructions per request. Instruction counts
# repeat from run to run whatever else the machine is doing, unlike timings; they leave out
# the kernel's share (sending and receiving), which is about the same for both, and the
# cost of two cores writing to one cache line, which only shows in `bench/run.sh`.
# Settings: URL_PATH (default /qrcode?scene_id=1), TOP (default 40 lines), KEEP (a directory
# to keep callgrind's files in, for callgrind_annotate --tree=caller or kcachegrind), BINARIES
# (as in bench/run.sh: binaries built earlier, to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."

URL_PATH=${URL_PATH:-/qrcode?scene_id=1}
TOP=${TOP:-40}
APP_PORT=18080
EMU_PORT=18090
REF_PORT=18091

source bench/lib.sh
need wrk valgrind
binaries

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

ports_free $APP_PORT $EMU_PORT $REF_PORT

"$BINARIES/wechat_emulator" 127.0.0.1:$EMU_PORT wxbench0000000000 benchsecret 0 2>/dev/null &
pids+=($!)
wait_for "http://127.0.0.1:$EMU_PORT/emulator/calls" $!
SCENE_QR_WORKERS=1 SCENE_QR_LISTEN=127.0.0.1:$APP_PORT WECHAT_APPID=wxbench0000000000 \
  WECHAT_APPSECRET=benchsecret WECHAT_API_BASE=http://127.0.0.1:$EMU_PORT \
  WECHAT_MP_BASE=http://127.0.0.1:$EMU_PORT DATABASE_URL="sqlite://$work/profile.db" \
  RUST_LOG=${RUST_LOG:-info} valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/app.out" "$BINARIES/scene-qr" 2>"$work/app.log" &
app=$!
pids+=($app)
wait_for "http://127.0.0.1:$APP_PORT/healthz" $app
measure app $app "http://127.0.0.1:$APP_PORT$URL_PATH"
bytes=$(curl -fs "http://127.0.0.1:$APP_PORT$URL_PATH" | wc -c)

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/ref.out" \
  "$BINARIES/reference_server" 127.0.0.1:$REF_PORT "$bytes" 2>"$work/ref.log" &
ref=$!
pids+=($ref)
wait_for "http://127.0.0.1:$REF_PORT/" $ref
measure ref $ref "http://127.0.0.1:$REF_PORT/"

if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP" && cp "$work"/*.out* "$work"/*.requests "$KEEP"/
fi
echo "instructions per request (user space):"
echo "  scene-qr $URL_PATH: $(per_request app | awk 'NR == 1 {print $1}')"
echo "  reference handler ($bytes B): $(per_request ref | awk 'NR == 1 {print $1}')"
echo
echo "scene-qr, inclusive instructions per request:"
per_request app --inclusive=yes | awk -v top="$TOP" 'NR <= top' 
