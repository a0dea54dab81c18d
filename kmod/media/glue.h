/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C glue for what bindgen cannot express: static inline functions and function-like macros
 * of the media / V4L2 / videobuf2 / locking headers, and THIS_MODULE; and the C side of the
 * differences between kernel versions (selected by the DAEDALUS_* defines of compat.mk). No
 * logic lives here: each function forwards to exactly one kernel API. Declared here so the Rust
 * bindings are generated from the same prototypes the C compiler checks. Part of the module's
 * safe media layer (kmod/media/): the driver never calls these directly.
 */
#ifndef DAEDALUS_GLUE_H
#define DAEDALUS_GLUE_H

#include <linux/dma-buf.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/wait.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>
#include <media/media-device.h>
#include <media/v4l2-ctrls.h>
#include <media/v4l2-dev.h>
#include <media/v4l2-mem2mem.h>
#include <media/v4l2-fh.h>
#include <media/videobuf2-core.h>
#include <media/videobuf2-v4l2.h>

struct file;

void daedalus_device_set_dma_coherent(struct device *dev);
bool daedalus_device_is_dma_coherent(struct device *dev);
struct module *daedalus_this_module(void);
unsigned int daedalus_job_timeout_ms(void);
void daedalus_mutex_init(struct mutex *lock);
void daedalus_jobs_lock_init(struct mutex *lock);
void daedalus_job_ends_lock_init(struct mutex *lock);
void daedalus_format_lock_init(struct mutex *lock);
void daedalus_hold_lock_init(struct mutex *lock);
void daedalus_mutex_lock(struct mutex *lock);
int daedalus_mutex_lock_interruptible(struct mutex *lock);
int daedalus_ctrl_handler_init(struct v4l2_ctrl_handler *hdl, unsigned int nr_of_controls_hint);
void daedalus_ctrl_request_hdl_put(struct v4l2_ctrl_handler *hdl);
int daedalus_media_device_register(struct media_device *mdev);
int daedalus_video_register_device(struct video_device *vdev);
bool daedalus_vb2_is_busy(struct vb2_queue *q);
bool daedalus_vb2_is_streaming(struct vb2_queue *q);
struct vb2_v4l2_buffer *daedalus_m2m_next_src_buf(struct v4l2_m2m_ctx *m2m_ctx);
struct vb2_v4l2_buffer *daedalus_m2m_next_dst_buf(struct v4l2_m2m_ctx *m2m_ctx);
struct vb2_v4l2_buffer *daedalus_m2m_src_buf_remove(struct v4l2_m2m_ctx *m2m_ctx);
struct vb2_v4l2_buffer *daedalus_m2m_dst_buf_remove(struct v4l2_m2m_ctx *m2m_ctx);
struct vb2_v4l2_buffer *daedalus_m2m_last_src_buf(struct v4l2_m2m_ctx *m2m_ctx);
void daedalus_init_waitqueue_head(struct wait_queue_head *wq);
void daedalus_wake_up_all(struct wait_queue_head *wq);
void daedalus_wake_up_pollfree(struct wait_queue_head *wq);
void daedalus_poll_wait(struct file *file, struct wait_queue_head *wq, struct poll_table_struct *pt);
int daedalus_wait_event_interruptible(struct wait_queue_head *wq, bool (*cond)(void *), void *arg);
void daedalus_init_delayed_work(struct delayed_work *work, void (*fn)(struct work_struct *));
bool daedalus_schedule_delayed_work(struct delayed_work *work, unsigned long delay);
unsigned long daedalus_jiffies(void);
void daedalus_might_sleep(void);
void daedalus_get_dma_buf(struct dma_buf *dmabuf);
void daedalus_wake_up_var(void *var);
void daedalus_wait_var_event(void *var, bool (*cond)(void *), void *arg);
long daedalus_wait_var_event_timeout(void *var, bool (*cond)(void *), void *arg, long timeout);
void daedalus_warn_job_dropped(void);
int daedalus_current_tgid(void);

/* Version differences (see compat.mk). */
void daedalus_fh_add(struct v4l2_fh *fh, struct file *file);
void daedalus_fh_del(struct v4l2_fh *fh, struct file *file);
void daedalus_m2m_buf_copy_metadata(const struct vb2_v4l2_buffer *out_vb,
				    struct vb2_v4l2_buffer *cap_vb);

#endif
