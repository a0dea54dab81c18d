#!/usr/bin/env bash
# vm-run: --clients
#
# VM test (runs in the client chroot, v4l-utils 1.30): the media controller topology of daedalus.
# `media-ctl -d /dev/media0 -p` must show model daedalus, bus info platform:daedalus, the entities
# daedalus-source, daedalus-proc and daedalus-sink, and the links source:0 -> proc:0 and
# proc:1 -> sink:0, every link ENABLED and IMMUTABLE. media-ctl 1.30 prints the proc entity as
# "type Node subtype Unknown" (it has no name for entity functions), so its function is checked
# with `v4l2-ctl -d /dev/video0 --info`, which names it: "... entity 'daedalus-proc' (Video Decoder)".
#
# Environment: DAEDALUS_TEST_DRIVER (default daedalus; e.g. visl to exercise this script on visl).
set -euo pipefail

drv=${DAEDALUS_TEST_DRIVER:-daedalus}
media=/dev/media0 video=/dev/video0
problems=()
check() { # description, command...: records a problem if the command fails
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else problems+=("$what"); echo "NOT OK: $what"; fi
}

echo "\$ media-ctl -d $media -p"
topo=$(media-ctl -d "$media" -p 2>&1) || problems+=("media-ctl -p failed")
printf '%s\n' "$topo"
echo "\$ v4l2-ctl -d $video --info"
info=$(v4l2-ctl -d "$video" --info 2>&1) || problems+=("v4l2-ctl --info failed")
printf '%s\n' "$info"
echo

has() { grep -qE -- "$1" <<<"$topo"; }
check "model $drv" has "^model[[:space:]]+$drv\$"
check "bus info platform:$drv" has "^bus info[[:space:]]+platform:$drv\$"
for e in source proc sink; do
  check "entity $drv-$e" has "^- entity [0-9]+: $drv-$e "
done
for e in source sink; do
  check "$drv-$e has device node $video" \
    bash -c 'awk -v e="$1" '\''/^- entity/ { cur = $4 } cur == e && /device node name/ { print $4 }'\'' <<<"$2" | grep -qx "$3"' \
    sh "$drv-$e" "$topo" "$video"
done

# Links as "entity:pad -> entity:pad FLAGS", from the pads' outgoing ("->") lines.
links=$(awk '
  /^- entity/ { cur = $4 }
  /^[[:space:]]*pad[0-9]+:/ { pad = $1; sub(/^pad/, "", pad); sub(/:$/, "", pad) }
  /^[[:space:]]*->/ { dst = $2; gsub(/"/, "", dst); print cur ":" pad " -> " dst " " $3 }
' <<<"$topo")
echo "links:"
sed 's/^/  /' <<<"$links"
check "link $drv-source:0 -> $drv-proc:0 [ENABLED,IMMUTABLE]" \
  grep -qxF "$drv-source:0 -> $drv-proc:0 [ENABLED,IMMUTABLE]" <<<"$links"
check "link $drv-proc:1 -> $drv-sink:0 [ENABLED,IMMUTABLE]" \
  grep -qxF "$drv-proc:1 -> $drv-sink:0 [ENABLED,IMMUTABLE]" <<<"$links"
check "exactly 2 links, all ENABLED,IMMUTABLE" \
  bash -c '[[ $(grep -c . <<<"$1") == 2 && -z $(grep -vF "[ENABLED,IMMUTABLE]" <<<"$1") ]]' sh "$links"
check "$drv-proc is a video decoder (MEDIA_ENT_F_PROC_VIDEO_DECODER)" \
  grep -qF "entity '$drv-proc' (Video Decoder)" <<<"$info"

if ((${#problems[@]})); then
  printf 'topology: FAILED: %s\n' "${problems[@]}"
  exit 1
fi
echo "topology: ok"
