#!/usr/bin/env bash
# vm-run: --clients
#
# VM test (runs in the client chroot, v4l-utils 1.30): v4l2-compliance on the daedalus media device
# (and through it, its video device) must pass cleanly: every "Total for daedalus device ..." line
# reads "Failed: 0, Warnings: 0", no "fail:" or "warn:" line anywhere, exit status 0. Prints the
# totals; the full output on failure.
#
# Environment: DAEDALUS_TEST_DRIVER (default daedalus; e.g. visl to exercise this script on visl).
set -euo pipefail

drv=${DAEDALUS_TEST_DRIVER:-daedalus}
media=/dev/media0
v4l2-compliance --version 2>&1 | sed -n 1p
echo "\$ v4l2-compliance -m $media"
rc=0
out=$(v4l2-compliance -m "$media" 2>&1) || rc=$?

problems=()
totals=$(grep -E 'Total for' <<<"$out" || true)
if [[ -z $totals ]]; then
  problems+=("no 'Total for' line in the output")
else
  while IFS= read -r line; do
    [[ $line == *"Failed: 0, Warnings: 0"* ]] || problems+=("not clean: $line")
    [[ $line == *"Total for $drv device "* ]] || problems+=("not a $drv device: $line")
  done <<<"$totals"
fi
bad=$(grep -nE '(^|[[:space:]])(fail|warn):' <<<"$out" || true)
[[ -z $bad ]] || problems+=("fail:/warn: lines:"$'\n'"$bad")
((rc == 0)) || problems+=("v4l2-compliance exited with status $rc")

if ((${#problems[@]})); then
  echo "----- full v4l2-compliance output -----"
  printf '%s\n' "$out"
  echo "----- end of output -----"
  printf 'compliance: %s\n' "${problems[@]}"
  exit 1
fi
printf '%s\n' "$totals"
echo "compliance: ok"
