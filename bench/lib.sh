# Helpers shared by the benchmark scripts; sourced, not run.

# need TOOL...: installs each missing tool from Debian's packages, or stops.
need() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "installing $tool from Debian's packages" >&2
      (apt-get update -qq && apt-get install -y -qq "$tool") >/dev/null ||
        { echo "$tool is needed: apt-get install $tool" >&2; exit 1; }
    fi
  done
}

# A scratch directory in $work, and $pids, the processes started: both cleaned up at exit.
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# stop_all: stops every process started so far.
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# wait_for URL PID: the process answers on URL (and is not some other process there).
# Thirty seconds at most: under valgrind, start-up is slow.
wait_for() {
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 for $1 exited (port taken?)" >&2; exit 1; }
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2; exit 1
}

# ports_free PORT...: stops if something already answers on one of them.
ports_free() {
  local port
  for port in "$@"; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      echo "port $port is already in use: stop what listens there first" >&2; exit 1
    fi
  done
}

# binaries: sets BINARIES to a directory holding scene-qr, wechat_emulator and reference_server:
# the one given in BINARIES (binaries built earlier, to compare two builds on one machine), or
# else this checkout's release build.
binaries() {
  BINARIES=${BINARIES:-}
  if [ -z "$BINARIES" ]; then
    cargo build --release --locked --quiet --bin scene-qr --example wechat_emulator --example reference_server
    mkdir -p target/release/bench
    cp target/release/scene-qr target/release/examples/wechat_emulator \
      target/release/examples/reference_server target/release/bench/
    BINARIES=target/release/bench
  fi
}

# signed_queries TOKEN COUNT: COUNT signed callback queries, one a line, as WeChat sends them.
# The callback accepts a signed query with one body only (a second body under it is a
# replay), so wrk takes a fresh one for every request (bench/callback.lua).
signed_queries() {
  python3 - "$1" "$(date +%s)" "$2" <<'PY'
import hashlib, sys
token, timestamp, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    nonce = f"bench{i}"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    print(f"signature={signature}&timestamp={timestamp}&nonce={nonce}")
PY
}
