#!/usr/bin/env python3
"""fluster (PyPI fluster-conformance, unpacked in the client chroot's /opt/fluster) with one
change for the VM: FFmpeg's VA-API decoders open the render node FLUSTER_VAAPI_DEVICE (e.g.
/dev/dri/renderD128); and one for time: the GStreamer decoders' output-format probe runs once per
format instead of once per vector (below).

FFmpeg picks a VA device itself when `-hwaccel vaapi` names none, and it passes over vgem, the
VM's only DRM driver (a Pi 5 has v3d's node, which FFmpeg takes): so the VM names the node, as
`-init_hw_device vaapi=va:NODE` (fluster's FFmpeg decoders have that setting; `-hwaccel vaapi`
then uses that device). Everything else is fluster as released: its arguments, decoders, output.
"""

import os
import sys

sys.path.insert(0, os.environ.get("FLUSTER_PATH", "/opt/fluster"))

from fluster.decoders import ffmpeg  # noqa: E402
from fluster.main import fluster_main  # noqa: E402

if os.environ.get("FLUSTER_TIMING"):
    # Diagnostics (FLUSTER_TIMING=1): every command fluster runs (decoder checks, system
    # information probes, decodes) with its wall time, on stderr.
    import subprocess
    import time

    _run = subprocess.run

    def _timed_run(*args, **kwargs):
        start = time.monotonic()
        try:
            return _run(*args, **kwargs)
        finally:
            cmd = args[0] if args else kwargs.get("args", "")
            text = " ".join(cmd) if isinstance(cmd, (list, tuple)) else str(cmd)
            print(f"fluster-timing: {time.monotonic() - start:6.1f} s  {text[:160]}", file=sys.stderr)

    subprocess.run = _timed_run

# fluster's GStreamer decoders probe, per output format, whether videocodectestsink takes it (a
# gst-launch of its own, ~7 s under TCG), cached in the process: the probe runs in the pool
# worker of each vector, so once per vector. Asked here first, in the process the workers fork
# from, it runs once per format for the whole run.
if any(a.startswith("GStreamer-") for a in sys.argv):
    from fluster.decoders import gstreamer  # noqa: E402

    for gst_format in ("I420", "I420_10LE"):
        gstreamer._videocodectestsink_supports_format(gst_format)  # pylint: disable=protected-access

device = os.environ.get("FLUSTER_VAAPI_DEVICE")
if device:
    ffmpeg.FFmpegVaapiDecoder.init_hw_device = f"vaapi=va:{device}"

fluster_main()
