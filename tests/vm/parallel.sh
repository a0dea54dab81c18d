#!/usr/bin/env bash
# vm-run: --timeout 900
#
# VM test (guest, outside the chroot, daedalus.ko loaded): contexts decode in parallel, H.264
# included, and several requests of one context are with the daemon at once (issue 17, item 2):
#   1. with daedalus-fake-daemon holding every job it reads (never answering; job_timeout_ms
#      raised so none times out), two H.264 clients with 4 requests in flight each: the daemon
#      must hold jobs of both contexts at the same time, and several jobs of one context. (With
#      H.264 jobs run one at a time device-wide, it gets one job and nothing else until that
#      one times out.) The same with two slice-based clients on a 4-slice stream: several slices
#      of one picture (one held CAPTURE buffer) are with the daemon at once;
#   2. with daedalusd: two frame-based H.264 clients, a slice-based one (4 slices per picture,
#      HOLD_CAPTURE_BUF, 4 requests in flight) and a VP9 one, all at once: every picture of
#      each equal to FFmpeg's (framemd5).
# Exits non-zero on any failure.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${DAEDALUS_BIN:-$repo/target/release/daedalus}
fake=$repo/target/release/daedalus-fake-daemon
data=$repo/tests/vm/data
[[ -x $bin && -x $fake ]] || { echo "parallel: $bin or $fake not found: cargo build --release -p daedalus-tools -p daedalus-daemon"; exit 1; }
param=/sys/module/daedalus/parameters/job_timeout_ms
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
work=$(mktemp -d)
old_timeout=$(cat $param)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  echo "$old_timeout" > $param
  rm -rf "$work"
}
trap cleanup EXIT

# A 4-slice H.264 stream with B-frames (the stress streams have one slice per picture), and
# FFmpeg's per-frame MD5s of it.
sliced=$work/sliced-h264-256x144.264
ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=256x144:rate=30,format=yuv420p" -frames:v 16 \
  -c:v libx264 -preset veryfast -profile:v high -bf 2 -x264-params slices=4:keyint=8 -f h264 "$sliced"
ffmpeg -loglevel error -y -i "$sliced" -fps_mode passthrough -pix_fmt yuv420p -f framemd5 "$sliced.framemd5"

# held_jobs LOG: "CONTEXTS MAX" — how many contexts the fake daemon holds jobs of, and the most
# jobs it holds of one context.
held_jobs() {
  awk '/holding job/ { n[$7]++ } END { c = 0; m = 0; for (k in n) { c++; if (n[k] > m) m = n[k] } print c, m }' "$1"
}

# fake_daemon_holds NAME CLIENT_ARGS...: two clients (decode ARGS...) against a fake daemon that
# never answers; passes if it holds jobs of both contexts and several of one at the same time.
fake_daemon_holds() {
  local name=$1; shift
  local log=$work/fake-$name.log daemon c1 c2 held=("0" "0") t0=$SECONDS
  "$fake" serve hang > "$log" 2>&1 & daemon=$!; pids+=("$daemon")
  for _ in $(seq 300); do grep -q serving "$log" && break; sleep 0.1; done
  grep -q serving "$log" || { cat "$log"; fail "$name: the fake daemon did not attach"; return; }
  "$bin" decode -q --md5 /dev/null "$@" >/dev/null 2>&1 & c1=$!; pids+=("$c1")
  "$bin" decode -q --md5 /dev/null "$@" >/dev/null 2>&1 & c2=$!; pids+=("$c2")
  # Each client queues 4 requests as soon as it has set up (a few seconds in the VM).
  for _ in $(seq 600); do
    read -r -a held < <(held_jobs "$log")
    ((held[0] >= 2 && held[1] >= 2)) && break
    sleep 0.1
  done
  # Killing the daemon fails the held jobs at once; the clients then end with errors.
  kill -KILL "$daemon"; wait "$daemon" 2>/dev/null || true
  wait "$c1" 2>/dev/null || true; wait "$c2" 2>/dev/null || true
  echo "$name: jobs held at once: of ${held[0]} contexts, at most ${held[1]} of one ($((SECONDS - t0)) s)"
  ((held[0] >= 2)) || { cat "$log"; fail "$name: the daemon never had jobs of two contexts at once"; }
  ((held[1] >= 2)) || { cat "$log"; fail "$name: the daemon never had two jobs of one context at once"; }
}

echo "== 1. jobs of two H.264 contexts with the daemon at once (fake daemon, never answering)"
echo 60000 > $param
fake_daemon_holds frame-based --in-flight 4 "$data/stress-h264-192x108.264"
fake_daemon_holds slice-based --in-flight 4 --h264-mode slice --start-code annexb "$sliced"
echo "$old_timeout" > $param

echo "== 2. four clients at once through daedalusd (H.264 frame- and slice-based, VP9): byte-exact"
daemon=$("$repo/tests/vm/lib/start-daemon"); pids+=("$daemon")
declare -A stream_of args_of
stream_of=([h264-a]=$data/stress-h264-192x108.264 [h264-b]=$data/stress-h264-192x108.264
  [h264-slices]=$sliced [vp9]=$data/stress-vp9-160x90.ivf)
args_of=([h264-a]="--in-flight 4" [h264-b]="--in-flight 2"
  [h264-slices]="--in-flight 4 --h264-mode slice --start-code annexb" [vp9]="--in-flight 4")
declare -A client_of
t0=$SECONDS
for name in "${!stream_of[@]}"; do
  # shellcheck disable=SC2086 # the arguments are words
  timeout 600 "$bin" decode -q ${args_of[$name]} --framemd5 "$work/$name.md5" "${stream_of[$name]}" \
    > "$work/$name.log" 2>&1 & client_of[$name]=$!
done
for name in "${!client_of[@]}"; do
  rc=0; wait "${client_of[$name]}" || rc=$?
  if ((rc != 0)); then cat "$work/$name.log"; fail "$name: exit $rc"; continue; fi
  ref=${stream_of[$name]}.framemd5
  if cmp -s <(grep -v '^#' "$ref" | awk -F, '{print $NF}') <(grep -v '^#' "$work/$name.md5" | awk -F, '{print $NF}'); then
    echo "byte-exact: $name ($(grep -vc '^#' "$work/$name.md5") frames)"
  else
    fail "$name: pictures differ from FFmpeg's"
  fi
done
echo "four clients at once: $((SECONDS - t0)) s"
kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true

[[ $failures -eq 0 ]] && echo "parallel: all passed" || { echo "parallel: $failures failed"; exit 1; }
