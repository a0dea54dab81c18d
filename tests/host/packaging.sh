#!/usr/bin/env bash
# Host test of `make install` / `make uninstall` (userspace half; the module half is
# tests/vm/install.sh) and of the systemd unit: stages into a temporary DESTDIR and checks
#   - the installed files (programs, VA-API driver in the multiarch dri directory, unit, udev
#     rule, modules-load.d, sysusers.d, man pages, bash / zsh / fish completions);
#   - the unit's ExecStart follows PREFIX;
#   - `systemd-analyze verify` accepts the unit, and `systemd-analyze security` rates it at most
#     1.0 (printed);
#   - every man page renders without a groff warning;
#   - `make uninstall` removes every file it installed.
# Prints "N passed, N failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
ko() { fail=$((fail + 1)); echo "FAIL $*"; }
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

# Built once (the VM tests need the same release build).
make -s -C "$repo" generated-docs >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; ko "make generated-docs"; }

for prefix in /usr /usr/local; do
  d=$tmp/root$prefix
  if make -s -C "$repo" install-files DESTDIR="$d" PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
    ok "make install-files DESTDIR=... PREFIX=$prefix"
  else
    ko "make install-files PREFIX=$prefix: $(cat "$tmp/install.log")"; continue
  fi
  missing=()
  for f in bin/daedalusd bin/daedalus "lib/$multiarch/dri/daedalus_drv_video.so" \
    lib/systemd/system/daedalusd.service lib/udev/rules.d/60-daedalus.rules \
    lib/modules-load.d/daedalus.conf lib/sysusers.d/daedalus.conf share/man/man8/daedalusd.8 \
    share/man/man1/daedalus.1 share/man/man1/daedalus-decode.1 share/man/man1/daedalus-devices.1 \
    share/bash-completion/completions/daedalus share/bash-completion/completions/daedalusd \
    share/zsh/vendor-completions/_daedalus share/fish/vendor_completions.d/daedalus.fish; do
    [[ -e $d$prefix/$f ]] || missing+=("$prefix/$f")
  done
  if ((${#missing[@]})); then ko "PREFIX=$prefix: not installed: ${missing[*]}"; else ok "PREFIX=$prefix: every file installed"; fi
  unit=$d$prefix/lib/systemd/system/daedalusd.service
  if grep -q "^ExecStart=$prefix/bin/daedalusd " "$unit"; then ok "PREFIX=$prefix: ExecStart=$prefix/bin/daedalusd"; else ko "PREFIX=$prefix: $(grep ExecStart "$unit")"; fi
  warned=()
  for page in "$d$prefix"/share/man/man*/*; do
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [[ -z $w ]] || warned+=("$(basename "$page"): $w")
  done
  if ((${#warned[@]})); then ko "man pages with warnings: ${warned[*]}"; else ok "PREFIX=$prefix: $(ls "$d$prefix"/share/man/man*/* | wc -l) man pages render without warnings"; fi
  if [[ $prefix == /usr ]]; then
    # verify runs ExecStart's binary: point it at the staged one.
    mkdir -p "$tmp/unit"
    sed "s|^ExecStart=/usr/bin/daedalusd|ExecStart=$d/usr/bin/daedalusd|" "$unit" >"$tmp/unit/daedalusd.service"
    if out=$(systemd-analyze verify --man=no "$tmp/unit/daedalusd.service" 2>&1) && [[ -z $out ]]; then
      ok "systemd-analyze verify daedalusd.service: clean"
    else
      ko "systemd-analyze verify: $out"
    fi
    score=$(systemd-analyze security --offline=yes "$tmp/unit/daedalusd.service" 2>/dev/null |
      sed -n 's/.*Overall exposure level for daedalusd.service: \([0-9.]*\).*/\1/p')
    if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 1.0) }'; then
      ok "systemd-analyze security: exposure $score (at most 1.0)"
    else
      ko "systemd-analyze security: exposure '${score:-?}', more than 1.0"
    fi
  fi
  make -s -C "$repo" uninstall-user DESTDIR="$d" PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1 || ko "make uninstall-user: $(cat "$tmp/uninstall.log")"
  left=$(find "$d" -type f)
  if [[ -z $left ]]; then ok "PREFIX=$prefix: make uninstall removed every file"; else ko "left after uninstall: $left"; fi
done
echo "$pass passed, $fail failed"
((fail == 0))
