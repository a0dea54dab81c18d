#!/usr/bin/env bash
# Part of tests/vm/vaapi.sh (one VM for the VA-API parts; run as scripts/test-vm --env VAAPI_PARTS=PART vaapi).
#
# VM test (in the Debian 13 client chroot; daedalusd started outside it): the VA-API driver
# (vaapi/, daedalus_drv_video.so) with libva 2.22 and FFmpeg 7.1, as a user runs them:
# scripts/vm-run --clients loads vgem (the VA display's render node) and sets LIBVA_DRIVER_NAME
# and LIBVA_DRIVERS_PATH (LIBVA_DRIVER_NAME in this file makes scripts/test-vm build the driver).
#   1. `vainfo --display drm --device /dev/dri/renderD128` lists VP9 profiles 0 and 2, H.264
#      Constrained Baseline / Main / High and AV1 profile 0 (VLD) for the daedalus driver. (A
#      bare `vainfo` skips vgem on purpose: libva-utils' DRM display ignores a device whose DRM
#      driver is "vgem", so in the VM the device is named; on a board the GPU's node is found.)
#   2. VP9 through `ffmpeg -hwaccel vaapi -hwaccel_device /dev/dri/renderD128
#      -hwaccel_output_format vaapi -i IN -vf hwdownload,format=nv12|p010le,...` frame by frame
#      against the references' per-frame MD5s (yuv420p / yuv420p10le: the downloaded NV12 / P010
#      is converted by swscale, which is exact for these, then hashed by -f framemd5). Keeping
#      the frames in VA surfaces (-hwaccel_output_format vaapi) makes a silent fallback to
#      software decoding fail (hwdownload gets software frames) instead of pass.
#   2b. Zero-copy export, as players hand surfaces to a compositor: an 8-bit odd-size and a
#      10-bit stream with each surface exported (vaExportSurfaceHandle, DRM PRIME 2: the CAPTURE
#      buffer's dma-buf) and read by FFmpeg's DRM device mmapping that dma-buf, byte-exact.
#   3. A corrupted stream ends (no hang), and the streams after it still decode byte-exact.
# One ffmpeg process per stream (each start costs seconds under TCG, even with the client
# rootfs in the page cache). Default set, ~10 streams, ~1000 requests: the committed streams
# (8/10-bit, odd sizes 35x19 / 97x61 / 18x10, hidden ARFs, 10-bit lossless, a size change at a
# keyframe) and from $DAEDALUS_VECTORS/vp9 the official show-existing-frame vector, the 10-bit
# 202x210 and 352x288 2-tile-column ARF streams and the first 60 frames of
# resolution_change_500frames (640x360 -> 426x240 at frame 50: a new VA context mid-stream,
# while pictures of the old one wait to be downloaded). VAAPI_VP9_ALL=1 decodes every VP9 vector
# whole instead (adds the 250-frame test-25fps, the 500 frames of resolution_change with its
# three size changes, the error-resilient RT stream and the 1080p 10-bit 4x2-tile stream:
# several minutes more under TCG).
set -euo pipefail
source "${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}/tests/vm/lib/vaapi"

echo "== 1. vainfo"
vaapi_vainfo VP9Profile0 VP9Profile2 H264ConstrainedBaseline H264Main H264High AV1Profile0

echo "== 2. committed streams"
for s in "$repo"/tools/tests/data/*.ivf "$repo"/daemon/tests/data/*.ivf; do
  # VP9 streams only: these directories hold AV1 IVF streams too (the IVF header's fourcc).
  [[ $(head -c 12 "$s" | tail -c 4) == VP90 ]] || continue
  ref=${s%.ivf}.framemd5; [[ -f $ref ]] || ref=$(ls "$s".ffmpeg-*.framemd5 2>/dev/null | head -n 1)
  [[ -n $ref && -f $ref ]] || continue
  vaapi_decode "$(basename "$s")" "$s" "$ref"
done

echo "== 2b. zero-copy: each surface exported (vaExportSurfaceHandle) and read through its dma-buf"
# (VAAPI_READ=export, tests/vm/lib/vaapi: what a player handing surfaces to a compositor does.)
for s in "$repo/tools/tests/data/vp9-8bit-35x19-arf.ivf" "$repo/daemon/tests/data/tiny-97x61-10bit-arf.ivf"; do
  ref=${s%.ivf}.framemd5; [[ -f $ref ]] || ref=$(ls "$s".ffmpeg-*.framemd5)
  VAAPI_READ=export vaapi_decode "$(basename "$s") (exported)" "$s" "$ref"
done

echo "== 3. a corrupted stream"
bad=$repo/daemon/tests/data/tiny-96x64-8bit-arf.ivf
vaapi_corrupt_ivf "$bad" "$work/corrupt.ivf"
vaapi_expect_errors "the corrupted stream" "$work/corrupt.ivf"

echo "== 4. $vectors/vp9"
if [[ -d $vectors/vp9 ]]; then
  v=$vectors/vp9
  if [[ -n ${VAAPI_VP9_ALL:-} ]]; then
    while IFS= read -r ref; do
      s=${ref%.ffmpeg-*.framemd5}
      vaapi_decode "$(basename "$s")" "$s" "$ref"
    done < <(find "$v" -name '*.ffmpeg-*.framemd5' | sort)
  else
    for s in cros-codecs/vp90-2-10-show-existing-frame.vp9.ivf \
      synthetic-libvpx/vp92-synth-202x210-10bit-oddsize.ivf synthetic-libvpx/vp92-synth-352x288-10bit-arf-2tilecols.ivf; do
      vaapi_decode "$(basename "$s")" "$v/$s" "$(ls "$v/$s".ffmpeg-*.framemd5)"
    done
    s=cros-codecs/resolution_change_500frames-vp9.ivf
    vaapi_decode "$(basename "$s") (first 60 frames)" "$v/$s" "$v/$s.ffmpeg-yuv420p.framemd5" 60
  fi
else
  echo "vaapi-vp9: shared conformance streams $VECTORS_SKIPPED"
fi

echo "VA-API (ffmpeg -hwaccel vaapi) VP9: $exact of $total streams byte-exact"
[[ $failures -eq 0 ]] || exit 1
