#!/usr/bin/env bash
# Part of tests/vm/vaapi.sh (one VM for the VA-API parts; run as scripts/test-vm --env VAAPI_PARTS=PART vaapi).
#
# VM test (in the Debian 13 client chroot; daedalusd started outside it): fluster 0.8 (PyPI
# fluster-conformance, the conformance runner decoder drivers report with; /opt/fluster in the
# chroot, scripts/build-clients-rootfs) runs its suites built from the vector store
# (tests/fluster/suites.py: AV1-TEST-VECTORS and JVT-AVC_V1 cut down to the streams the store has,
# DAEDALUS-VP9) against daedalus' decoders as fluster names them:
#   GStreamer-<codec>-V4L2SL   v4l2slvp9dec / v4l2slh264dec / v4l2slav1dec (the device directly)
#   FFmpeg-<codec>-VAAPI       ffmpeg -hwaccel vaapi (the VA-API driver; the render node named
#                              through tests/fluster/fluster.py, as FFmpeg skips vgem)
#   GStreamer-<codec>-VA       vavp9dec / vah264dec / vaav1dec (GST_VA_ALL_DRIVERS=1)
# Fluster compares the MD5 of each vector's whole output with the suite's reference; every
# vector must pass except those tests/fluster/known-failures.tsv lists with their reason
# (tests/fluster/check.py; a listed vector that passes fails the run too).
#   default       a quick set: a few vectors of each suite (make test)
#   FLUSTER_ALL=1 every vector of every suite (make fluster: hours under TCG)
#   FLUSTER_DECODERS="D ..." / FLUSTER_SUITES="S ..." / FLUSTER_JOBS=N narrow or widen a run;
#   FLUSTER_TIMING=1 prints every command fluster runs with its time (tests/fluster/fluster.py).
# The scores per decoder and suite, and every failure, are printed (check.py) to the test's log.
set -euo pipefail
repo=${DAEDALUS_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}
source "$repo/tests/vm/lib/vaapi"
if [[ ! -d $vectors ]]; then
  echo "vaapi-fluster: shared conformance streams $VECTORS_SKIPPED"
  exit 0
fi
[[ -f /opt/fluster/fluster/main.py ]] || { echo "FAIL: fluster is not in the client chroot (/opt/fluster): rebuild it (make clients-rootfs)"; exit 1; }
export GST_VA_ALL_DRIVERS=1 FLUSTER_VAAPI_DEVICE=$dri
out=$work/out
mkdir -p "$out"

echo "== suites from $vectors"
started=$SECONDS
python3 "$repo/tests/fluster/suites.py" "$vectors" "$work/fluster"
echo "suites built in $((SECONDS - started)) s"

fluster() { python3 "$repo/tests/fluster/fluster.py" "$@"; }
decoders_of() {
  case $1 in
    AV1-TEST-VECTORS) echo GStreamer-AV1-V4L2SL FFmpeg-AV1-VAAPI GStreamer-AV1-VA ;;
    JVT-AVC_V1) echo GStreamer-H.264-V4L2SL FFmpeg-H.264-VAAPI GStreamer-H.264-VA ;;
    DAEDALUS-VP9) echo GStreamer-VP9-V4L2SL FFmpeg-VP9-VAAPI GStreamer-VP9-VA ;;
  esac
}
# The quick set (make test's time is short): 8 and 10 bit, a tiny odd size, hidden and
# show-existing frames, several IDRs.
quick_of() {
  case $1 in
    AV1-TEST-VECTORS) echo av1-1-b8-01-size-16x18 av1-1-b10-00-quantizer-10 ;;
    JVT-AVC_V1) echo MIDR_MW_D ;;
    DAEDALUS-VP9) echo vp90-2-10-show-existing-frame vp92-synth-202x210-10bit-oddsize ;;
  esac
}

# One fluster run for all suites and decoders (fluster pairs them by codec): its start, which
# checks every decoder, costs tens of seconds under TCG.
suites=() decoders=() quick=()
for suite in ${FLUSTER_SUITES:-DAEDALUS-VP9 JVT-AVC_V1 AV1-TEST-VECTORS}; do
  [[ -f $(ls "$work/fluster/test_suites"/*/"$suite.json" 2>/dev/null | head -n 1) ]] ||
    { echo "$suite: not built from this store, skipped"; continue; }
  suites+=("$suite")
  read -ra d <<<"$(decoders_of "$suite")"; decoders+=("${d[@]}")
  read -ra q <<<"$(quick_of "$suite")"; quick+=("${q[@]}")
done
((${#suites[@]})) || { fail "no fluster suite"; exit 1; }
[[ -z ${FLUSTER_DECODERS:-} ]] || read -ra decoders <<<"$FLUSTER_DECODERS"
vectors_opt=()
[[ -n ${FLUSTER_ALL:-} ]] || vectors_opt=(-tv "${quick[@]}")
echo "== ${suites[*]}: ${decoders[*]}${FLUSTER_ALL:+ (all vectors)}"
# -t: per vector; TCG makes 1080p AV1 slow. fluster's status is 1 when any vector failed, known
# or not: check.py decides from the JSON summary, which must exist.
rc=0 started=$SECONDS
fluster -r "$work/fluster/resources" -tsd "$work/fluster/test_suites" -o "$work/fluster-out" -ne \
  run -ts "${suites[@]}" -d "${decoders[@]}" "${vectors_opt[@]}" -j "${FLUSTER_JOBS:-2}" -t 600 \
  -f json -so "$out/summary.json" || rc=$?
echo "fluster: status $rc after $((SECONDS - started)) s"
if [[ -f $out/summary.json ]]; then
  python3 "$repo/tests/fluster/check.py" "$repo/tests/fluster/known-failures.tsv" "$out/summary.json" ||
    fail "fluster results differ from the expected ones"
else
  fail "fluster wrote no summary (status $rc)"
fi
[[ $failures -eq 0 ]] || exit 1
