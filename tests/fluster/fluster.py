#!/usr/bin/env python3
"""fluster (PyPI fluster-conformance, unpacked in the client chroot's /opt/fluster) with one
change for the VM: FFmpeg's VA-API decoders open the render node FLUSTER_VAAPI_DEVICE (e.g.
/dev/dri/renderD128).

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

device = os.environ.get("FLUSTER_VAAPI_DEVICE")
if device:
    ffmpeg.FFmpegVaapiDecoder.init_hw_device = f"vaapi=va:{device}"

fluster_main()
