// SPDX-License-Identifier: GPL-2.0
/* See glue.h: one-line forwards of static inlines and macros to the Rust side. */

#include <linux/dma-map-ops.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/version.h>
#include "glue.h"

/*
 * The one-argument forwards: `ret name(type arg)` calls `callee(arg)`, a static inline or macro
 * of the kernel headers. Each expansion is a call site of its own: every mutex_init() below
 * still gets its own lock class (named after `arg`, as before).
 */
#define FORWARD(ret, name, callee, type, arg)	\
	ret name(type arg)			\
	{					\
		return callee(arg);		\
	}
#define FORWARD_VOID(name, callee, type, arg)	\
	void name(type arg)			\
	{					\
		callee(arg);			\
	}

/*
 * dma_buf_put() and the dma-buf file are in the DMA_BUF symbol namespace. The one difference
 * that is macro semantics, not a header feature: 6.13 made the namespace a string.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
MODULE_IMPORT_NS("DMA_BUF");
#else
MODULE_IMPORT_NS(DMA_BUF);
#endif

/* module! has no parameters on 6.12: declared here, read by the Rust side. */
static unsigned int job_timeout_ms = 2000;
module_param(job_timeout_ms, uint, 0644);
MODULE_PARM_DESC(job_timeout_ms, "fail a decode job the daemon has not answered after this many ms (default 2000)");

unsigned int daedalus_job_timeout_ms(void)
{
	return READ_ONCE(job_timeout_ms);
}

/*
 * Only CPUs touch daedalus' buffers: the daemon decodes into them and clients read them, and CPUs
 * are cache-coherent with one another. A platform device without a firmware node defaults to
 * non-coherent on arm64 (dma_default_coherent), where dma-contig would then allocate and mmap
 * every buffer uncached (Normal-NC): correct, but slow for the daemon writing pictures and for
 * clients reading them. Declared coherent, they are cached. A real DMA master importing a
 * picture (a display) maps it without CPU sync (vb2-dma-contig's map_dma_buf): the daemon cleans
 * what it wrote to the point of coherency (daemon/src/mapping.rs). Architectures without
 * non-coherent DMA (x86) have no such bit.
 */
void daedalus_device_set_dma_coherent(struct device *dev)
{
#if defined(DAEDALUS_DEV_FLAG_ACCESSORS)
	dev_set_dma_coherent(dev);
#elif defined(CONFIG_ARCH_HAS_SYNC_DMA_FOR_DEVICE) || defined(CONFIG_ARCH_HAS_SYNC_DMA_FOR_CPU) || \
	defined(CONFIG_ARCH_HAS_SYNC_DMA_FOR_CPU_ALL)
	dev->dma_coherent = true;
#endif
}

bool daedalus_device_is_dma_coherent(struct device *dev)
{
	return dev_is_dma_coherent(dev);
}

struct module *daedalus_this_module(void)
{
	return THIS_MODULE;
}

FORWARD_VOID(daedalus_mutex_init, mutex_init, struct mutex *, lock)

/* A lock class of its own: it nests inside the device lock. */
FORWARD_VOID(daedalus_jobs_lock_init, mutex_init, struct mutex *, lock)

/* The device's job ends: a lock class of its own, outside the job queue's. */
FORWARD_VOID(daedalus_job_ends_lock_init, mutex_init, struct mutex *, lock)

/* A file's format snapshot: a leaf lock class of its own, nested inside the device lock. */
FORWARD_VOID(daedalus_format_lock_init, mutex_init, struct mutex *, lock)

/* A file's held-picture bookkeeping: a leaf lock class of its own, nested inside the device lock. */
FORWARD_VOID(daedalus_hold_lock_init, mutex_init, struct mutex *, lock)

FORWARD_VOID(daedalus_mutex_lock, mutex_lock, struct mutex *, lock)

FORWARD(int, daedalus_mutex_lock_interruptible, mutex_lock_interruptible, struct mutex *, lock)

int daedalus_ctrl_handler_init(struct v4l2_ctrl_handler *hdl, unsigned int nr_of_controls_hint)
{
	return v4l2_ctrl_handler_init(hdl, nr_of_controls_hint);
}

FORWARD_VOID(daedalus_ctrl_request_hdl_put, v4l2_ctrl_request_hdl_put, struct v4l2_ctrl_handler *,
	hdl)

FORWARD(int, daedalus_media_device_register, media_device_register, struct media_device *, mdev)

int daedalus_video_register_device(struct video_device *vdev)
{
	return video_register_device(vdev, VFL_TYPE_VIDEO, -1);
}

FORWARD(bool, daedalus_vb2_is_busy, vb2_is_busy, struct vb2_queue *, q)

FORWARD(bool, daedalus_vb2_is_streaming, vb2_is_streaming, struct vb2_queue *, q)

FORWARD(struct vb2_v4l2_buffer *, daedalus_m2m_next_src_buf, v4l2_m2m_next_src_buf,
	struct v4l2_m2m_ctx *, m2m_ctx)

FORWARD(struct vb2_v4l2_buffer *, daedalus_m2m_next_dst_buf, v4l2_m2m_next_dst_buf,
	struct v4l2_m2m_ctx *, m2m_ctx)

FORWARD(struct vb2_v4l2_buffer *, daedalus_m2m_src_buf_remove, v4l2_m2m_src_buf_remove,
	struct v4l2_m2m_ctx *, m2m_ctx)

FORWARD(struct vb2_v4l2_buffer *, daedalus_m2m_dst_buf_remove, v4l2_m2m_dst_buf_remove,
	struct v4l2_m2m_ctx *, m2m_ctx)

FORWARD(struct vb2_v4l2_buffer *, daedalus_m2m_last_src_buf, v4l2_m2m_last_src_buf,
	struct v4l2_m2m_ctx *, m2m_ctx)

FORWARD_VOID(daedalus_init_waitqueue_head, init_waitqueue_head, struct wait_queue_head *, wq)

FORWARD_VOID(daedalus_wake_up_all, wake_up_all, struct wait_queue_head *, wq)

FORWARD_VOID(daedalus_wake_up_pollfree, wake_up_pollfree, struct wait_queue_head *, wq)

void daedalus_poll_wait(struct file *file, struct wait_queue_head *wq, struct poll_table_struct *pt)
{
	poll_wait(file, wq, pt);
}

int daedalus_wait_event_interruptible(struct wait_queue_head *wq, bool (*cond)(void *), void *arg)
{
	return wait_event_interruptible(*wq, cond(arg));
}

void daedalus_init_delayed_work(struct delayed_work *work, void (*fn)(struct work_struct *))
{
	INIT_DELAYED_WORK(work, fn);
}

bool daedalus_schedule_delayed_work(struct delayed_work *work, unsigned long delay)
{
	return schedule_delayed_work(work, delay);
}

unsigned long daedalus_jiffies(void)
{
	return jiffies;
}

void daedalus_might_sleep(void)
{
	might_sleep();
}

FORWARD_VOID(daedalus_get_dma_buf, get_dma_buf, struct dma_buf *, dmabuf)

/*
 * wake_up_var() only hashes the address (the variable may be freed as soon as the waiter sees
 * the change); the barrier orders the caller's update before the check for waiters.
 */
void daedalus_wake_up_var(void *var)
{
	smp_mb();
	wake_up_var(var);
}

void daedalus_wait_var_event(void *var, bool (*cond)(void *), void *arg)
{
	wait_var_event(var, cond(arg));
}

long daedalus_wait_var_event_timeout(void *var, bool (*cond)(void *), void *arg, long timeout)
{
	return wait_var_event_timeout(var, cond(arg), timeout);
}

/* A decode job was dropped without being completed: a bug of the driver (its buffers fail). */
void daedalus_warn_job_dropped(void)
{
	WARN_ONCE(1, "daedalus: decode job dropped without completion\n");
}

/*
 * 6.18 made v4l2_fh_add() / v4l2_fh_del() take the file and set / clear its private_data;
 * before, the driver does it. Either way: private_data == fh between the two calls.
 */
void daedalus_fh_add(struct v4l2_fh *fh, struct file *file)
{
#ifdef DAEDALUS_FH_TAKES_FILE
	v4l2_fh_add(fh, file);
#else
	file->private_data = fh;
	v4l2_fh_add(fh);
#endif
}

void daedalus_fh_del(struct v4l2_fh *fh, struct file *file)
{
#ifdef DAEDALUS_FH_TAKES_FILE
	v4l2_fh_del(fh, file);
#else
	v4l2_fh_del(fh);
	file->private_data = NULL;
#endif
}

/*
 * 6.19 dropped copy_frame_flags (KEY/P/B frame flags describe bitstream buffers); older
 * kernels keep copying them, as the module always did (docs/kmod-safe-layer.md, R11).
 */
void daedalus_m2m_buf_copy_metadata(const struct vb2_v4l2_buffer *out_vb,
				    struct vb2_v4l2_buffer *cap_vb)
{
#ifdef DAEDALUS_COPY_METADATA_2ARGS
	v4l2_m2m_buf_copy_metadata(out_vb, cap_vb);
#else
	v4l2_m2m_buf_copy_metadata(out_vb, cap_vb, true);
#endif
}

/* The thread group (process) id of the calling task, in the initial pid namespace. */
int daedalus_current_tgid(void)
{
	return task_tgid_nr(current);
}
