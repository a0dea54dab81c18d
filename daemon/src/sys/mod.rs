// SPDX-License-Identifier: GPL-2.0
//! The uAPI definitions the daemon needs (bindgen output of the `daedalus-codecs` crate): the
//! stateless codec controls (Linux 6.12) and the dma-buf CPU access ioctl.
//!
//! `DMA_BUF_IOCTL_SYNC` is a function-like macro (`_IOW`), so clang evaluates it for the target
//! (`DAEDALUS_C_*` in `codecs/src/uapi_wrapper.h`) instead of this crate re-deriving the ioctl encoding.

/// The bindgen output (shared with the tools, generated in `codecs/build.rs`).
pub use daedalus_codecs::uapi as bindings;

pub use bindings::{
    v4l2_ctrl_vp9_frame, V4L2_CID_STATELESS_VP9_FRAME, V4L2_VP9_FRAME_FLAG_ERROR_RESILIENT,
    V4L2_VP9_FRAME_FLAG_INTRA_ONLY, V4L2_VP9_FRAME_FLAG_KEY_FRAME, V4L2_VP9_FRAME_FLAG_SHOW_FRAME,
};

/// `DMA_BUF_IOCTL_SYNC`: brackets CPU access to a dma-buf mapping.
pub const DMA_BUF_IOCTL_SYNC: libc::c_ulong = bindings::DAEDALUS_C_DMA_BUF_IOCTL_SYNC as _;
/// `DMA_BUF_SYNC_READ`.
pub const DMA_BUF_SYNC_READ: u64 = bindings::DMA_BUF_SYNC_READ as u64;
/// `DMA_BUF_SYNC_WRITE`.
pub const DMA_BUF_SYNC_WRITE: u64 = bindings::DMA_BUF_SYNC_WRITE as u64;
/// `DMA_BUF_SYNC_START`.
pub const DMA_BUF_SYNC_START: u64 = bindings::DMA_BUF_SYNC_START as u64;
/// `DMA_BUF_SYNC_END`.
pub const DMA_BUF_SYNC_END: u64 = bindings::DMA_BUF_SYNC_END as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_buf_sync_ioctl() {
        // _IOW('b', 0, struct dma_buf_sync) with the generic encoding.
        #[cfg(any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        ))]
        assert_eq!(DMA_BUF_IOCTL_SYNC, 0x4008_6200);
        assert_eq!(std::mem::size_of::<bindings::dma_buf_sync>(), 8);
        assert_eq!((DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE), (1, 2));
        assert_eq!((DMA_BUF_SYNC_START, DMA_BUF_SYNC_END), (0, 4));
    }

    #[test]
    fn vp9_frame_control() {
        assert_eq!(
            std::mem::size_of::<v4l2_ctrl_vp9_frame>(),
            bindings::DAEDALUS_C_SIZEOF_v4l2_ctrl_vp9_frame as usize
        );
        // V4L2_CID_CODEC_STATELESS_BASE (0xa40900) + 300.
        assert_eq!(V4L2_CID_STATELESS_VP9_FRAME, 0x00a4_0a2c);
        assert_eq!(V4L2_VP9_FRAME_FLAG_SHOW_FRAME, 2);
    }
}
