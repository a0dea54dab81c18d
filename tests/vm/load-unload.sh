#!/usr/bin/env bash
# vm-run: --no-load
#
# VM test (runs in the guest, outside the client chroot): load and unload daedalus.ko 10 times,
# checking that /dev/video*, /dev/media* and /dev/daedalus appear and disappear with it; then, for
# /dev/video0, /dev/media0 and /dev/daedalus in turn, hold the node open and check that rmmod is
# refused (module in use) while the device keeps working (VIDIOC_QUERYCAP on the held video fd, a
# second open succeeds, or for the exclusive /dev/daedalus fails with EBUSY), and that rmmod
# succeeds once it is closed. The module must say it registered its buffers as cached (a
# DMA-coherent device: arm64 would otherwise map them uncached). On arm64 the page size must be
# the Raspberry Pi 5's 16 KiB (the lane's kernel: scripts/kconfig/arm64.fragment), so that every
# other test of the lane runs with it. scripts/test-vm checks the guest's dmesg afterwards.
#
# Environment (set by scripts/vm-run): DAEDALUS_KO.
# For exercising this script against another driver (e.g. visl.ko): LOAD_UNLOAD_MISC (default
# /dev/daedalus, empty: no misc node expected), DAEDALUS_TEST_DRIVER (VIDIOC_QUERYCAP driver
# name, default daedalus), LOAD_UNLOAD_CYCLES (default 10).
set -euo pipefail

ko=${DAEDALUS_KO:?run this through scripts/vm-run (DAEDALUS_KO unset)}
misc=${LOAD_UNLOAD_MISC-/dev/daedalus}
driver=${DAEDALUS_TEST_DRIVER:-daedalus}
cycles=${LOAD_UNLOAD_CYCLES:-10}
mod=$(modinfo -F name "$ko" 2>/dev/null || true)
[[ -n $mod ]] || mod=$(basename "$ko" .ko)
mod=${mod//-/_}

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
step() { echo "-- $*"; }

loaded() { grep -q "^$mod " /proc/modules; }
nodes() { # the device nodes of interest that exist now
  local n
  for n in /dev/video* /dev/media* $misc; do [[ -c $n ]] && echo "$n"; done
  return 0
}
# Wait (up to ~2 s) until the nodes are all there (want=present) or all gone (want=absent).
wait_nodes() {
  local want=$1 i have
  for i in $(seq 20); do
    have=$(nodes)
    if [[ $want == present ]]; then
      compgen -G '/dev/video*' >/dev/null && compgen -G '/dev/media*' >/dev/null &&
        { [[ -z $misc ]] || [[ -c $misc ]]; } && return 0
    else
      [[ -z $have ]] && return 0
    fi
    sleep 0.1
  done
  return 1
}
# The host's python3 (the guest runs the host's userland); not through a pipe to `head`, whose
# early exit could fail `command -v` with EPIPE under pipefail.
python() {
  local py=/usr/bin/python3
  [[ -x $py ]] || py=$(command -v python3) || { echo "python3 not found" >&2; return 127; }
  "$py" "$@"
}
# VIDIOC_QUERYCAP on an already open file descriptor: prints "driver|card|bus_info".
querycap_fd() {
  local fd=$1
  python - "$fd" <<'PY'
import fcntl, sys
buf = bytearray(104)  # struct v4l2_capability
fcntl.ioctl(int(sys.argv[1]), 0x80685600, buf)  # VIDIOC_QUERYCAP = _IOR('V', 0, 104 bytes)
s = lambda a, b: bytes(buf[a:b]).split(b"\0")[0].decode()
print("%s|%s|%s" % (s(0, 16), s(16, 48), s(48, 80)))
PY
}

# Opens node once more (read-only) and closes it: prints "ok", or the errno name (EBUSY...).
reopen() {
  if [[ -x /usr/bin/python3 ]] || command -v python3 >/dev/null; then
    python - "$1" <<'PY'
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDONLY))
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
  elif (exec 4<"$1") 2>/dev/null; then
    echo ok
  else
    echo "open failed"
  fi
}

step "module $mod from $ko"
deps=$(modinfo -F depends "$ko")
for d in ${deps//,/ }; do
  modprobe "$d"
done
echo "dependencies loaded: ${deps:-none}"
page_size=$(getconf PAGESIZE)
echo "machine $(uname -m), page size $page_size bytes"
if [[ $(uname -m) == aarch64 && $page_size != 16384 ]]; then
  fail "arm64 with $page_size-byte pages: the lane's kernel must have the Pi 5's 16 KiB pages"
fi
if [[ -n $(nodes) ]]; then
  fail "device nodes exist before loading the module: $(nodes | tr '\n' ' ')"
fi

step "$cycles load/unload cycles"
for i in $(seq "$cycles"); do
  if ! out=$(insmod "$ko" 2>&1); then
    fail "cycle $i: insmod failed: $out"
    break
  fi
  if ! wait_nodes present; then
    fail "cycle $i: after insmod, missing nodes (have: $(nodes | tr '\n' ' '))"
  fi
  if [[ $i == 1 ]]; then
    echo "nodes: $(nodes | tr '\n' ' ')"; ls -l $(nodes)
    # The device is DMA-coherent, so dma-contig maps its buffers cached on every architecture
    # (docs/architecture.md, "Data flow of one frame"; arm64 would otherwise map them uncached).
    if [[ $mod == daedalus ]]; then
      line=$(dmesg | grep -E 'daedalus: registered /dev/video[0-9]+' | tail -n 1)
      echo "module: ${line#*daedalus: }"
      [[ $line == *"(cached buffers)"* ]] || fail "the module did not register its buffers as cached: '$line'"
    fi
  fi
  if [[ -n $misc && -c $misc ]]; then
    mode=$(stat -c %a "$misc")
    [[ $mode == 600 ]] || fail "cycle $i: $misc has mode $mode, expected 600"
  fi
  if ! out=$(rmmod "$mod" 2>&1); then
    fail "cycle $i: rmmod failed: $out"
    break
  fi
  if ! wait_nodes absent; then
    fail "cycle $i: after rmmod, nodes left: $(nodes | tr '\n' ' ')"
  fi
  if loaded; then fail "cycle $i: $mod still in /proc/modules after rmmod"; fi
done
echo "$i cycles done"

held_open() { # node: rmmod must be refused while node is open
  local node=$1 out info
  step "rmmod with $node held open"
  insmod "$ko" || { fail "insmod failed"; return; }
  wait_nodes present || fail "nodes missing after insmod (have: $(nodes | tr '\n' ' '))"
  if ! exec 3<"$node"; then
    fail "cannot open $node"
    rmmod "$mod" || true
    return
  fi
  if out=$(rmmod "$mod" 2>&1); then
    fail "rmmod succeeded while $node was open (module not pinned by the open file)"
    exec 3<&-
    return
  fi
  echo "rmmod refused as expected: $out"
  loaded || fail "$mod not in /proc/modules after the refused rmmod"
  [[ -c $node ]] || fail "$node disappeared after the refused rmmod"
  if [[ $node == /dev/video* ]]; then
    if info=$(querycap_fd 3 2>&1); then
      echo "VIDIOC_QUERYCAP on the held fd: $info"
      [[ ${info%%|*} == "$driver" ]] || fail "QUERYCAP driver '${info%%|*}', expected '$driver'"
    else
      fail "VIDIOC_QUERYCAP on the held $node failed: $info"
    fi
  fi
  # A second open must work as well; the misc node may be exclusive (one daemon), then EBUSY is
  # the expected answer of a live device.
  local res
  res=$(reopen "$node")
  case $res in
    ok) echo "second open of $node: ok" ;;
    EBUSY) if [[ $node == "$misc" ]]; then
             echo "second open of $node: EBUSY (exclusive device, as expected)"
           else
             fail "second open of $node: EBUSY"
           fi ;;
    *) fail "second open of $node failed while the module is in use: $res" ;;
  esac
  exec 3<&-
  if ! out=$(rmmod "$mod" 2>&1); then
    fail "rmmod failed after closing $node: $out"
    return
  fi
  wait_nodes absent || fail "after rmmod, nodes left: $(nodes | tr '\n' ' ')"
  echo "rmmod after close: ok"
}
held_open /dev/video0
held_open /dev/media0
[[ -n $misc ]] && held_open "$misc"

if loaded; then rmmod "$mod" || true; fi
if ((failures)); then
  echo "load-unload: $failures failure(s)"
  exit 1
fi
echo "load-unload: ok"
