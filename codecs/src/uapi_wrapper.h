/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of bindgen (see build.rs): the V4L2 and media controller uAPI, plus the values the C
 * preprocessor and compiler compute for the ioctl numbers and struct sizes that the Rust side
 * computes on its own. The unit tests in src/sys/mod.rs compare the two, so an ioctl number that
 * is wrong on some architecture fails the tests instead of reaching the kernel.
 */
#include <linux/videodev2.h>
#include <linux/media.h>

#define DAEDALUS_IOCTL(name) const unsigned long DAEDALUS_C_##name = name
#define DAEDALUS_SIZEOF(type) const unsigned long DAEDALUS_C_SIZEOF_##type = sizeof(struct type)

DAEDALUS_IOCTL(VIDIOC_QUERYCAP);
DAEDALUS_IOCTL(VIDIOC_ENUM_FMT);
DAEDALUS_IOCTL(VIDIOC_G_FMT);
DAEDALUS_IOCTL(VIDIOC_S_FMT);
DAEDALUS_IOCTL(VIDIOC_TRY_FMT);
DAEDALUS_IOCTL(VIDIOC_REQBUFS);
DAEDALUS_IOCTL(VIDIOC_QUERYBUF);
DAEDALUS_IOCTL(VIDIOC_QBUF);
DAEDALUS_IOCTL(VIDIOC_DQBUF);
DAEDALUS_IOCTL(VIDIOC_STREAMON);
DAEDALUS_IOCTL(VIDIOC_STREAMOFF);
DAEDALUS_IOCTL(VIDIOC_QUERYMENU);
DAEDALUS_IOCTL(VIDIOC_G_EXT_CTRLS);
DAEDALUS_IOCTL(VIDIOC_S_EXT_CTRLS);
DAEDALUS_IOCTL(VIDIOC_TRY_EXT_CTRLS);
DAEDALUS_IOCTL(VIDIOC_ENUM_FRAMESIZES);
DAEDALUS_IOCTL(VIDIOC_QUERY_EXT_CTRL);
DAEDALUS_IOCTL(VIDIOC_EXPBUF);
DAEDALUS_IOCTL(VIDIOC_CREATE_BUFS);
DAEDALUS_IOCTL(MEDIA_IOC_G_TOPOLOGY);
DAEDALUS_IOCTL(MEDIA_IOC_DEVICE_INFO);
DAEDALUS_IOCTL(MEDIA_IOC_REQUEST_ALLOC);
DAEDALUS_IOCTL(MEDIA_REQUEST_IOC_QUEUE);
DAEDALUS_IOCTL(MEDIA_REQUEST_IOC_REINIT);

DAEDALUS_SIZEOF(v4l2_capability);
DAEDALUS_SIZEOF(v4l2_fmtdesc);
DAEDALUS_SIZEOF(v4l2_format);
DAEDALUS_SIZEOF(v4l2_pix_format_mplane);
DAEDALUS_SIZEOF(v4l2_requestbuffers);
DAEDALUS_SIZEOF(v4l2_buffer);
DAEDALUS_SIZEOF(v4l2_plane);
DAEDALUS_SIZEOF(v4l2_querymenu);
DAEDALUS_SIZEOF(v4l2_ext_control);
DAEDALUS_SIZEOF(v4l2_ext_controls);
DAEDALUS_SIZEOF(v4l2_frmsizeenum);
DAEDALUS_SIZEOF(v4l2_query_ext_ctrl);
DAEDALUS_SIZEOF(media_device_info);
DAEDALUS_SIZEOF(v4l2_exportbuffer);
DAEDALUS_SIZEOF(v4l2_create_buffers);
DAEDALUS_SIZEOF(media_v2_topology);
DAEDALUS_SIZEOF(media_v2_interface);
DAEDALUS_SIZEOF(v4l2_ctrl_vp9_frame);
DAEDALUS_SIZEOF(v4l2_ctrl_vp9_compressed_hdr);
DAEDALUS_SIZEOF(v4l2_ctrl_h264_sps);
DAEDALUS_SIZEOF(v4l2_ctrl_h264_pps);
DAEDALUS_SIZEOF(v4l2_ctrl_h264_decode_params);
DAEDALUS_SIZEOF(v4l2_ctrl_av1_sequence);
DAEDALUS_SIZEOF(v4l2_ctrl_av1_frame);

/* What the daemon needs beyond V4L2: CPU access brackets of dma-buf mappings. */
#include <linux/dma-buf.h>
DAEDALUS_IOCTL(DMA_BUF_IOCTL_SYNC);
DAEDALUS_SIZEOF(v4l2_ctrl_h264_scaling_matrix);
DAEDALUS_SIZEOF(v4l2_ctrl_h264_slice_params);
DAEDALUS_SIZEOF(v4l2_ctrl_h264_pred_weights);
DAEDALUS_SIZEOF(v4l2_ctrl_av1_tile_group_entry);
DAEDALUS_SIZEOF(v4l2_ctrl_av1_film_grain);
