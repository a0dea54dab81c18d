#!/usr/bin/env bash
# vm-run: --modprobe vgem --timeout 900
# vm-test: opt-in needs `make deb` (DEB_ARCH=arm64 for ARCH=arm64) first: `scripts/test-vm deb-install`
#
# VM test (guest, outside the chroot): the Debian packages of target/deb for the guest's
# architecture (`make deb`; in the arm64 lane `make deb DEB_ARCH=arm64`, whose packages are for
# the lane's Debian 13 root, as for Raspberry Pi OS) installed as a user installs them and run:
#   1. `apt-get install ./daedalusd_*.deb ./daedalus-tools_*.deb ./daedalus-va-driver_*.deb`
#      with their maintainer scripts, offline: every dependency must already be in the guest's
#      root (the arm64 root's dpkg database: scripts/build-clients-rootfs), nothing is
#      downloaded; the packages end "install ok installed", `dpkg --audit` is silent, the
#      postinst created the daedalus system user;
#   2. every library of the installed daemon, CLI and VA-API driver resolves (ldd);
#   3. the installed daedalusd, started as root, attaches and drops to the daedalus user with no
#      capabilities, no new privileges and its seccomp filter; the installed `daedalus decode`
#      decodes a VP9 8-bit and 10-bit, an H.264 and an AV1 stream byte-exact (FFmpeg's
#      framemd5); `daedalus devices` / `status` work;
#   4. vainfo loads the packaged driver from libva's own directory (LIBVA_DRIVERS_PATH unset) on
#      vgem's render node and lists the VP9, H.264 and AV1 profiles.
# daedalus-dkms is not installed (no DKMS nor kernel tree in the guest; `make test-dkms`).
# virtme-ng gives the guest throwaway overlays on /usr, /etc and /var: nothing reaches the root.
set -uo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
arch=$(dpkg --print-architecture)
fails=0
ok() { echo "ok   $*"; }
ko() { echo "FAIL $*"; fails=$((fails + 1)); }
echo "guest: $(uname -rm), page size $(getconf PAGESIZE), $(. /etc/os-release && echo "$PRETTY_NAME")"

work=$(mktemp -d)
debs=()
for p in daedalusd daedalus-tools daedalus-va-driver; do
  mapfile -t found < <(ls "$repo"/target/deb/"${p}"_*_"$arch".deb 2>/dev/null)
  if ((${#found[@]} != 1)); then
    echo "FAIL $p: ${#found[@]} packages for $arch in $repo/target/deb (run make deb first)"; exit 1
  fi
  cp "${found[0]}" "$work/"
  debs+=("./$(basename "${found[0]}")")
done

# 1. apt, offline. (--no-download would break the local .debs: apt then hands dpkg their bare
# names, "Internal Error, Pathname to install is not absolute".)
mkdir -p /var/lib/apt/lists/partial /var/cache/apt/archives/partial
s=$(date +%s)
if (cd "$work" && DEBIAN_FRONTEND=noninteractive apt-get install -y "${debs[@]}") >"$work/apt.log" 2>&1; then
  ok "apt-get install ${debs[*]} ($(($(date +%s) - s)) s)"
else
  ko "apt-get install: $(tail -n 5 "$work/apt.log")"
fi
for p in daedalusd daedalus-tools daedalus-va-driver; do
  st=$(dpkg-query -W -f '${Version} ${Status}' "$p" 2>&1)
  if [[ $st == *" install ok installed" ]]; then ok "$p $st"; else ko "$p: $st"; fi
done
dpkg -s daedalusd daedalus-tools | grep -E '^(Package|Depends):'
audit=$(dpkg --audit 2>&1)
if [[ -z $audit ]]; then ok "dpkg --audit: nothing to report"; else ko "dpkg --audit: $audit"; fi
if getent passwd daedalus >/dev/null; then ok "postinst: user $(getent passwd daedalus)"; else ko "no daedalus user"; fi

# 2. libraries.
driver=$(dpkg-query -L daedalus-va-driver 2>/dev/null | grep '/dri/daedalus_drv_video\.so$')
for b in /usr/bin/daedalusd /usr/bin/daedalus "${driver:-daedalus_drv_video.so (not in daedalus-va-driver)}"; do
  if l=$(ldd "$b" 2>&1) && ! grep -q 'not found' <<<"$l"; then
    ok "ldd $b: $(wc -l <<<"$l") libraries, all found"
  else
    ko "ldd $b: $(grep 'not found' <<<"$l" || echo "$l")"
  fi
done
/usr/bin/daedalusd --version && /usr/bin/daedalus --version || ko "--version"

# 3. the installed daemon and CLI.
s=$(date +%s)
if pid=$(DAEDALUSD=/usr/bin/daedalusd "$repo/tests/vm/lib/start-daemon"); then
  ok "installed daedalusd attached after $(($(date +%s) - s)) s"
else
  ko "installed daedalusd did not attach"
fi
st=$(grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/$pid/status 2>&1 | tr -s '\t ' ' ' | tr '\n' ';')
uid=$(id -u daedalus 2>/dev/null)
if [[ $st == "Uid: $uid $uid $uid $uid;CapEff: 0000000000000000;NoNewPrivs: 1;Seccomp: 2;" ]]; then
  ok "daemon sandboxed: $st"
else
  ko "daemon's status: $st (daedalus is uid ${uid:-?})"
fi
/usr/bin/daedalus devices || ko "daedalus devices"
exact=0 total=0
for pair in \
  "tiny-96x64-8bit-arf.ivf tiny-96x64-8bit-arf.ivf.ffmpeg-yuv420p.framemd5" \
  "tiny-97x61-10bit-arf.ivf tiny-97x61-10bit-arf.ivf.ffmpeg-yuv420p10le.framemd5" \
  "h264-96x64-bpyramid.264 h264-96x64-bpyramid.264.framemd5" \
  "av1-96x64-8bit-altref.ivf av1-96x64-8bit-altref.ivf.framemd5"; do
  read -r stream ref <<<"$pair"
  total=$((total + 1))
  out=$work/$stream.md5
  /usr/bin/daedalus decode --framemd5 "$out" "$repo/daemon/tests/data/$stream" >"$out.log" 2>&1
  if [[ -s $out ]] && diff <(grep -v '^#' "$repo/daemon/tests/data/$ref") <(grep -v '^#' "$out") >/dev/null; then
    exact=$((exact + 1))
  else
    ko "$stream not byte-exact: $(tail -n 3 "$out.log")"
  fi
done
((exact == total)) && ok "$exact of $total streams byte-exact (installed daedalus and daedalusd)"
/usr/bin/daedalus status || ko "daedalus status"

# 4. the packaged VA-API driver, where libva looks by itself.
if v=$(env -u LIBVA_DRIVERS_PATH LIBVA_DRIVER_NAME=daedalus vainfo --display drm --device /dev/dri/renderD128 2>&1) &&
  grep -q VAProfileVP9Profile0 <<<"$v" && grep -q VAProfileH264High <<<"$v" && grep -q VAProfileAV1Profile0 <<<"$v"; then
  ok "vainfo: $(grep -c 'VAEntrypointVLD' <<<"$v") profiles with the packaged driver: $(grep -o 'Driver version: .*' <<<"$v")"
else
  ko "vainfo: $v"
fi
kill "$pid" 2>/dev/null
((fails == 0)) || { echo "$fails failed"; cat /tmp/daedalusd.log; exit 1; }
echo "all passed"
