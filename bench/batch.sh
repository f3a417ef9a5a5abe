#!/usr/bin/env bash
# Batch benchmark: 200 permanent codes through `POST /api/batches` on one scene-qr (SQLite),
# against the emulator as its own process answering each call after EMU_DELAY_MS (60 ms by
# default, a `qrcode/create` round trip to WeChat from a server in mainland China). Measures:
#
#   1. the batch: wall time from the 202 to "done", creates the emulator received;
#   2. the same 200 rows again: every code reused, no create;
#   3. the ZIP (PNG and SVG of each code, index.csv) and the A4 print sheet: time and size.
#
#   bash bench/batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-200}
EMU_DELAY_MS=${EMU_DELAY_MS:-60}
PORT=18120
EMU_PORT=18129
APPID=wxbench0000000000
SECRET=benchsecret

source bench/lib.sh
need python3 curl
binaries
ports_free $PORT $EMU_PORT

"$BINARIES/wechat_emulator" 127.0.0.1:$EMU_PORT $APPID $SECRET "$EMU_DELAY_MS" 2>"$work/emulator.log" &
pids+=($!)
wait_for "http://127.0.0.1:$EMU_PORT/emulator/calls" $!
SCENE_QR_LISTEN=127.0.0.1:$PORT DATABASE_URL="sqlite://$work/batch.db" \
  WECHAT_APPID=$APPID WECHAT_APPSECRET=$SECRET \
  WECHAT_API_BASE=http://127.0.0.1:$EMU_PORT WECHAT_MP_BASE=http://127.0.0.1:$EMU_PORT \
  SCENE_QR_PERMANENT=allow RUST_LOG=warn "$BINARIES/scene-qr" 2>"$work/scene-qr.log" &
pids+=($!)
wait_for "http://127.0.0.1:$PORT/healthz" $!

creates() {
  curl -fs "http://127.0.0.1:$EMU_PORT/emulator/calls" | python3 -c "import json,sys; print(json.load(sys.stdin)['qrcode_create'])"
}

# batch: submits the pattern batch and waits for it (5 minutes at most); prints
# "seconds id".
batch() {
  python3 - "http://127.0.0.1:$PORT" "$ROWS" <<'PY'
import json, sys, time, urllib.request
base, rows = sys.argv[1], int(sys.argv[2])
width = len(str(rows))
body = json.dumps({"pattern": f"bench-{{{1:0{width}}..{rows}}}", "kind": "permanent"}).encode()
started = time.monotonic()
with urllib.request.urlopen(urllib.request.Request(f"{base}/api/batches", body, {"Content-Type": "application/json"}, method="POST")) as answer:
    assert answer.status == 202, answer.status
    batch_id = json.load(answer)["id"]
while time.monotonic() - started < 300:
    with urllib.request.urlopen(f"{base}/api/batches/{batch_id}") as answer:
        progress = json.load(answer)
    if progress["state"] in ("done", "stopped"):
        break
    time.sleep(0.05)
took = time.monotonic() - started
assert progress["state"] == "done" and progress["done"] == rows, progress
print(f"{took:.2f} {batch_id} {progress['reused']}")
PY
}

read -r first_s id reused1 <<<"$(batch)"
created_first=$(creates)
read -r second_s _ reused2 <<<"$(batch)"
created_second=$(creates)
zip_stats=$(curl -fs -o "$work/batch.zip" -w '%{time_total} %{size_download}' "http://127.0.0.1:$PORT/batches/$id.zip")
sheet_stats=$(curl -fs -o /dev/null -w '%{time_total} %{size_download}' "http://127.0.0.1:$PORT/batches/$id/print")
entries=$(python3 -c "import zipfile,sys; print(len(zipfile.ZipFile(sys.argv[1]).namelist()))" "$work/batch.zip")

echo "batch of $ROWS new permanent codes: ${first_s} s, $created_first creates (emulator ${EMU_DELAY_MS} ms a call)"
echo "the same $ROWS again: ${second_s} s, $reused2 reused, $((created_second - created_first)) creates"
echo "ZIP: ${zip_stats% *} s, ${zip_stats#* } bytes, $entries entries"
echo "print sheet: ${sheet_stats% *} s, ${sheet_stats#* } bytes"
