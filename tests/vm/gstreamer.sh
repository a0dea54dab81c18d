#!/usr/bin/env bash
# vm-run: --clients
#
# VM test (runs in the client chroot, GStreamer 1.26): with a fresh registry (GST_REGISTRY, set by
# vm-run after the module is loaded), `gst-inspect-1.0 v4l2codecs` must list v4l2slvp9dec,
# v4l2slh264dec and v4l2slav1dec, and each of them must be bound to daedalus: the plugin gives every
# element it registers read-only "media-device" and "video-device" properties whose defaults are
# the nodes it probed, and those nodes must be daedalus's (media model / video driver "daedalus").
#
# Environment: DAEDALUS_TEST_DRIVER (default daedalus; e.g. visl to exercise this script on visl).
set -euo pipefail

drv=${DAEDALUS_TEST_DRIVER:-daedalus}
export GST_REGISTRY=${GST_REGISTRY:-/tmp/gst-registry.bin}
rm -f "$GST_REGISTRY"
problems=()

echo "\$ gst-inspect-1.0 v4l2codecs"
plugin=$(gst-inspect-1.0 v4l2codecs 2>&1) || problems+=("gst-inspect-1.0 v4l2codecs failed")
printf '%s\n' "$plugin"

# The default of a string property in gst-inspect-1.0 output.
prop_default() { # element-output property
  awk -v p="$2" '
    $1 == p && $2 == ":" { found = 1; next }
    found && /String\. Default:/ { sub(/.*Default: "/, ""); sub(/".*/, ""); print; exit }
    found && /^  [a-z]/ { exit }
  ' <<<"$1"
}

for el in v4l2slvp9dec v4l2slh264dec v4l2slav1dec; do
  if ! grep -qE "^[[:space:]]+$el:" <<<"$plugin"; then
    problems+=("$el not registered")
    echo "NOT OK: $el not listed"
    continue
  fi
  out=$(gst-inspect-1.0 "$el" 2>&1) || { problems+=("gst-inspect-1.0 $el failed"); continue; }
  media=$(prop_default "$out" media-device)
  video=$(prop_default "$out" video-device)
  model=$( [[ -n $media ]] && cat "/sys/bus/media/devices/$(basename "$media")/model" 2>/dev/null || true)
  vdrv=$( [[ -n $video ]] && v4l2-ctl -d "$video" --info 2>/dev/null |
    awk -F': ' '/^[[:space:]]*Driver name/ { print $2; exit }' || true)
  echo "$el: media-device=$media (model '$model'), video-device=$video (driver '$vdrv')"
  if [[ $model == "$drv" && $vdrv == "$drv" ]]; then
    echo "ok: $el is bound to $drv"
  else
    problems+=("$el is not bound to $drv (media-device '$media' model '$model', video-device '$video' driver '$vdrv')")
  fi
done

if ((${#problems[@]})); then
  printf 'gstreamer: FAILED: %s\n' "${problems[@]}"
  exit 1
fi
echo "gstreamer: ok"
