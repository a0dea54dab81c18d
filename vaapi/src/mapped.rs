// SPDX-License-Identifier: GPL-2.0
//! What a codec mapping makes of one VA picture: the request the driver queues (its controls,
//! owned, and its OUTPUT bytes) and the picture's format.
//!
//! Each codec module (`vp9.rs`, `h264.rs`, ...) turns the VA buffers of a picture into a
//! [`Mapped`]; `driver.rs` opens the decoder with its stream controls, binds surfaces and
//! queues it, the same way for every codec.

use daedalus_client::sys::ControlPayload;
use daedalus_client::v4l2::CtrlPayload;
use daedalus_proto::formats::BitDepth;

/// A control value the request owns: one payload struct, or an array of them.
trait Value: Send {
    fn payload(&mut self, id: u32) -> CtrlPayload<'_>;
}

struct One<T>(Box<T>);

impl<T: ControlPayload + Send> Value for One<T> {
    fn payload(&mut self, id: u32) -> CtrlPayload<'_> {
        CtrlPayload::new(id, &mut *self.0)
    }
}

struct Array<T>(Vec<T>);

impl<T: ControlPayload + Send> Value for Array<T> {
    fn payload(&mut self, id: u32) -> CtrlPayload<'_> {
        CtrlPayload::array(id, &mut self.0)
    }
}

/// One control of a request.
pub struct Control {
    id: u32,
    /// Whether it selects the stream's format (set before the decoder's formats are chosen,
    /// e.g. VP9_FRAME, H264_SPS, AV1_SEQUENCE).
    stream: bool,
    value: Box<dyn Value>,
}

impl Control {
    /// Control `id` carrying `value`.
    pub fn new<T: ControlPayload + Send + 'static>(id: u32, value: T) -> Control {
        Control {
            id,
            stream: false,
            value: Box::new(One(Box::new(value))),
        }
    }

    /// Array control `id` carrying `values` (as many elements as it holds).
    pub fn array<T: ControlPayload + Send + 'static>(id: u32, values: Vec<T>) -> Control {
        Control {
            id,
            stream: false,
            value: Box::new(Array(values)),
        }
    }

    /// The same control, marked as one that selects the stream's format.
    pub fn stream(mut self) -> Control {
        self.stream = true;
        self
    }

    /// Its id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// The payloads of `controls`, lent for one ioctl.
pub fn payloads<'a>(controls: impl IntoIterator<Item = &'a mut Control>) -> Vec<CtrlPayload<'a>> {
    controls
        .into_iter()
        .map(|c| c.value.payload(c.id))
        .collect()
}

/// One picture, ready to queue.
pub struct Mapped {
    /// Coded size.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Bit depth of the decoded picture.
    pub depth: BitDepth,
    /// The OUTPUT buffer's bytes, in order.
    pub data: Vec<Vec<u8>>,
    /// The request's controls.
    pub controls: Vec<Control>,
    /// Menu controls the decoder is set up with, before its formats are chosen (e.g. H.264's
    /// decode mode and start codes).
    pub menus: Vec<(u32, i32)>,
    /// Whether the stream starts over at this picture (a VP9 key frame, a shown AV1 key frame,
    /// an H.264 IDR picture): it needs no earlier picture, so a new decoder can begin with it.
    pub starts_stream: bool,
}

impl Mapped {
    /// The payloads of the stream controls, to choose the decoder's formats.
    pub fn stream_payloads(&mut self) -> Vec<CtrlPayload<'_>> {
        payloads(self.controls.iter_mut().filter(|c| c.stream))
    }
}
