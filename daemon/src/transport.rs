// SPDX-License-Identifier: GPL-2.0
//! The daemon's view of `/dev/daedalus`: receive one message, send one completion. The real
//! device is [`crate::device::Device`]; tests use an in-memory implementation.

use std::io;

use daedalus_proto::wire::Completion;

/// What [`Transport::receive`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A message of this many bytes is at the start of the buffer.
    Message(usize),
    /// Someone asked for statistics (SIGUSR1).
    Stats,
    /// Time to stop (SIGINT/SIGTERM, or the end of a test's input).
    Shutdown,
}

/// Where messages come from and completions go.
///
/// `receive` is called by the dispatcher thread only; `complete` by the context threads,
/// concurrently.
pub trait Transport: Send + Sync {
    /// Waits for the next message and reads it into `buf` (one message per call).
    fn receive(&self, buf: &mut [u8]) -> io::Result<Incoming>;

    /// Sends the answer to a job.
    fn complete(&self, completion: &Completion) -> io::Result<()>;
}
