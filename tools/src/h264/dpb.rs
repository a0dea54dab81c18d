// SPDX-License-Identifier: GPL-2.0
//! The decoded picture buffer of a stateless H.264 client, for frames (progressive streams:
//! field pictures and MBAFF are refused before they get here): picture order counts (H.264
//! 8.2.1, types 0, 1 and 2), `frame_num` gaps (8.2.5.2), reference marking by sliding window and
//! memory management control operations 1 to 6 (8.2.5.3/8.2.5.4), picture numbers (8.2.4.1),
//! the initial reference lists and their modifications (8.2.4.2/8.2.4.3), and output in POC
//! order by the bumping process (C.4.4/C.4.5).
//!
//! It works on plain values ([`SeqParams`], [`PicParams`]) so that it can be tested without a
//! bitstream; [`crate::h264::stream`] fills them from the cros-codecs parser. Pictures are named
//! by the client's tag (its OUTPUT timestamp), which is what V4L2 references carry too.

/// What the DPB needs from the active SPS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqParams {
    /// `pic_order_cnt_type`.
    pub poc_type: u8,
    /// `MaxPicOrderCntLsb`.
    pub max_poc_lsb: i32,
    /// `MaxFrameNum`.
    pub max_frame_num: u32,
    /// `offset_for_non_ref_pic`.
    pub offset_for_non_ref_pic: i32,
    /// `offset_for_top_to_bottom_field`.
    pub offset_for_top_to_bottom_field: i32,
    /// `offset_for_ref_frame[0..num_ref_frames_in_pic_order_cnt_cycle]`.
    pub offset_for_ref_frame: Vec<i32>,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: usize,
    /// DPB size in frames (`max_dec_frame_buffering`, or from the level).
    pub dpb_frames: usize,
    /// `max_num_reorder_frames` when the VUI gives it.
    pub max_reorder: Option<usize>,
}

/// A memory management control operation (Table 7-9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mmco {
    /// 1: a short-term picture is no longer a reference.
    ShortTermUnused {
        /// `difference_of_pic_nums_minus1`.
        difference_of_pic_nums_minus1: u32,
    },
    /// 2: a long-term picture is no longer a reference.
    LongTermUnused {
        /// `long_term_pic_num`.
        long_term_pic_num: u32,
    },
    /// 3: a short-term picture becomes long-term.
    ShortToLong {
        /// `difference_of_pic_nums_minus1`.
        difference_of_pic_nums_minus1: u32,
        /// `long_term_frame_idx`.
        long_term_frame_idx: u32,
    },
    /// 4: a new `MaxLongTermFrameIdx` (`None`: no long-term frame indices).
    MaxLongTermFrameIdx(Option<u32>),
    /// 5: every picture is no longer a reference; POC and frame_num restart.
    AllUnused,
    /// 6: the current picture becomes long-term.
    CurrentToLong {
        /// `long_term_frame_idx`.
        long_term_frame_idx: u32,
    },
}

/// What the DPB needs from a picture's (first) slice header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PicParams {
    /// The client's tag of the picture (unique).
    pub id: u64,
    /// An IDR picture.
    pub idr: bool,
    /// `nal_ref_idc`.
    pub nal_ref_idc: u8,
    /// `frame_num`.
    pub frame_num: u32,
    /// `pic_order_cnt_lsb`.
    pub pic_order_cnt_lsb: i32,
    /// `delta_pic_order_cnt_bottom`.
    pub delta_pic_order_cnt_bottom: i32,
    /// `delta_pic_order_cnt[0..2]`.
    pub delta_pic_order_cnt: [i32; 2],
    /// `long_term_reference_flag` (IDR).
    pub long_term_reference_flag: bool,
    /// The MMCOs of `adaptive_ref_pic_marking_mode_flag = 1`; `None`: sliding window.
    pub mmcos: Option<Vec<Mmco>>,
}

impl PicParams {
    fn has_mmco5(&self) -> bool {
        self.mmcos
            .as_ref()
            .is_some_and(|m| m.contains(&Mmco::AllUnused))
    }
}

/// How a frame is used for reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marking {
    /// Not a reference.
    Unused,
    /// Short-term reference.
    ShortTerm,
    /// Long-term reference with this `LongTermFrameIdx`.
    LongTerm(u32),
}

/// A frame in the DPB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The client's tag; `None` for a frame inferred for a `frame_num` gap (no picture).
    pub id: Option<u64>,
    /// `frame_num` (0 after MMCO 5).
    pub frame_num: u32,
    /// `FrameNumWrap` relative to the current picture.
    pub frame_num_wrap: i32,
    /// `TopFieldOrderCnt`.
    pub top_poc: i32,
    /// `BottomFieldOrderCnt`.
    pub bottom_poc: i32,
    /// Reference marking.
    pub marking: Marking,
    /// Waiting to be output.
    pub needed_for_output: bool,
}

impl Frame {
    /// `PicOrderCnt()` of the frame.
    pub fn poc(&self) -> i32 {
        self.top_poc.min(self.bottom_poc)
    }

    /// `PicNum` (short-term) or `LongTermPicNum` (long-term); `None` if not a reference.
    pub fn pic_num(&self) -> Option<i32> {
        match self.marking {
            Marking::Unused => None,
            Marking::ShortTerm => Some(self.frame_num_wrap),
            Marking::LongTerm(idx) => Some(idx as i32),
        }
    }

    /// Whether the frame is a reference.
    pub fn is_reference(&self) -> bool {
        self.marking != Marking::Unused
    }
}

/// The current picture, between [`Dpb::start_picture`] and [`Dpb::finish_picture`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// Its parameters.
    pub params: PicParams,
    /// `TopFieldOrderCnt`.
    pub top_poc: i32,
    /// `BottomFieldOrderCnt`.
    pub bottom_poc: i32,
    /// `FrameNumOffset` (POC types 1 and 2).
    frame_num_offset: i64,
    /// `PicOrderCntMsb` (POC type 0).
    poc_msb: i32,
}

impl Current {
    /// `PicOrderCnt(CurrPic)`.
    pub fn poc(&self) -> i32 {
        self.top_poc.min(self.bottom_poc)
    }
}

/// A DPB error: a stream the process cannot follow.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DpbError {
    /// An MMCO names a picture that is not there.
    #[error("memory management operation {0:?} names no picture in the DPB")]
    NoSuchPicture(Mmco),
}

/// A reference list entry: the frame's tag (`None` for a frame inferred for a gap) and its
/// marking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// The frame's tag.
    pub id: Option<u64>,
    /// Whether it is a long-term reference.
    pub long_term: bool,
}

/// The decoded picture buffer.
#[derive(Clone, Debug, Default)]
pub struct Dpb {
    seq: SeqParams,
    frames: Vec<Frame>,
    max_long_term_frame_idx: Option<u32>,
    // POC state (8.2.1).
    prev_poc_msb: i32,
    prev_poc_lsb: i32,
    prev_frame_num_offset: i64,
    prev_frame_num: u32,
    prev_ref_frame_num: u32,
    started: bool,
}

impl Dpb {
    /// An empty DPB.
    pub fn new() -> Self {
        Dpb::default()
    }

    /// The frames in the DPB (references and frames waiting for output).
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Whether the picture tagged `id` is still in the DPB.
    pub fn holds(&self, id: u64) -> bool {
        self.frames.iter().any(|f| f.id == Some(id))
    }

    /// Activates an SPS (at an IDR picture).
    pub fn set_seq(&mut self, seq: SeqParams) {
        self.seq = seq;
    }

    /// Starts decoding a picture: fills `frame_num` gaps, computes its POC and the picture
    /// numbers of the references. Pictures the gap handling bumps out are appended to `out`
    /// in output order.
    pub fn start_picture(&mut self, params: PicParams, out: &mut Vec<u64>) -> Current {
        let max_frame_num = self.seq.max_frame_num.max(1);
        if !params.idr
            && self.started
            && params.frame_num != self.prev_ref_frame_num
            && params.frame_num != (self.prev_ref_frame_num + 1) % max_frame_num
        {
            self.fill_gap(params.frame_num, out);
        }
        let cur = self.compute_poc(params);
        self.update_pic_nums(cur.params.frame_num);
        cur
    }

    fn fill_gap(&mut self, frame_num: u32, out: &mut Vec<u64>) {
        let max_frame_num = self.seq.max_frame_num.max(1);
        let mut unused = (self.prev_ref_frame_num + 1) % max_frame_num;
        // Bounded: at most MaxFrameNum - 1 frames.
        while unused != frame_num {
            let p = PicParams {
                id: 0,
                nal_ref_idc: 1,
                frame_num: unused,
                ..PicParams::default()
            };
            let cur = self.compute_poc(p);
            self.update_pic_nums(unused);
            self.sliding_window();
            let frame = Frame {
                id: None,
                frame_num: unused,
                frame_num_wrap: unused as i32,
                top_poc: cur.top_poc,
                bottom_poc: cur.bottom_poc,
                marking: Marking::ShortTerm,
                needed_for_output: false,
            };
            self.store(frame, out);
            self.remember(&cur, false, true);
            unused = (unused + 1) % max_frame_num;
        }
    }

    fn compute_poc(&self, params: PicParams) -> Current {
        let seq = &self.seq;
        let max_frame_num = i64::from(seq.max_frame_num.max(1));
        let frame_num = i64::from(params.frame_num);
        let frame_num_offset = if params.idr {
            0
        } else if i64::from(self.prev_frame_num) > frame_num {
            self.prev_frame_num_offset + max_frame_num
        } else {
            self.prev_frame_num_offset
        };
        let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let (top, bottom, poc_msb) = match seq.poc_type {
            0 => {
                let (prev_msb, prev_lsb) = if params.idr {
                    (0, 0)
                } else {
                    (self.prev_poc_msb, self.prev_poc_lsb)
                };
                let lsb = params.pic_order_cnt_lsb;
                let max = seq.max_poc_lsb.max(1);
                let msb = if lsb < prev_lsb && prev_lsb - lsb >= max / 2 {
                    prev_msb.wrapping_add(max)
                } else if lsb > prev_lsb && lsb - prev_lsb > max / 2 {
                    prev_msb.wrapping_sub(max)
                } else {
                    prev_msb
                };
                let top = msb.wrapping_add(lsb);
                (
                    top,
                    top.wrapping_add(params.delta_pic_order_cnt_bottom),
                    msb,
                )
            }
            1 => {
                let cycle = &seq.offset_for_ref_frame;
                let n = cycle.len() as i64;
                let mut abs_frame_num = if n != 0 {
                    frame_num_offset + frame_num
                } else {
                    0
                };
                if params.nal_ref_idc == 0 && abs_frame_num > 0 {
                    abs_frame_num -= 1;
                }
                let mut expected: i64 = 0;
                if abs_frame_num > 0 {
                    let delta_per_cycle: i64 = cycle.iter().map(|&o| i64::from(o)).sum();
                    let cycle_cnt = (abs_frame_num - 1) / n;
                    let in_cycle = ((abs_frame_num - 1) % n) as usize;
                    expected = cycle_cnt * delta_per_cycle
                        + cycle[..=in_cycle]
                            .iter()
                            .map(|&o| i64::from(o))
                            .sum::<i64>();
                }
                if params.nal_ref_idc == 0 {
                    expected += i64::from(seq.offset_for_non_ref_pic);
                }
                let top = expected + i64::from(params.delta_pic_order_cnt[0]);
                let bottom = top
                    + i64::from(seq.offset_for_top_to_bottom_field)
                    + i64::from(params.delta_pic_order_cnt[1]);
                (clamp(top), clamp(bottom), 0)
            }
            _ => {
                let t = if params.idr {
                    0
                } else if params.nal_ref_idc == 0 {
                    2 * (frame_num_offset + frame_num) - 1
                } else {
                    2 * (frame_num_offset + frame_num)
                };
                (clamp(t), clamp(t), 0)
            }
        };
        Current {
            params,
            top_poc: top,
            bottom_poc: bottom,
            frame_num_offset,
            poc_msb,
        }
    }

    /// Remembers what the next picture's POC and gap detection need (after marking).
    ///
    /// `inferred`: a frame inferred for a `frame_num` gap, which has no POC of its own (type 0
    /// keeps the last real reference's).
    fn remember(&mut self, cur: &Current, mmco5: bool, inferred: bool) {
        self.started = true;
        let is_ref = cur.params.nal_ref_idc != 0;
        if mmco5 {
            self.prev_frame_num_offset = 0;
            self.prev_frame_num = 0;
        } else {
            self.prev_frame_num_offset = cur.frame_num_offset;
            self.prev_frame_num = cur.params.frame_num;
        }
        if is_ref {
            self.prev_ref_frame_num = if mmco5 { 0 } else { cur.params.frame_num };
            if inferred {
                return;
            }
            if mmco5 {
                // 8.2.1.1: after MMCO 5, the previous reference picture counts as POC
                // (tempPicOrderCnt-adjusted) top with MSB 0.
                self.prev_poc_msb = 0;
                self.prev_poc_lsb = cur.top_poc;
            } else {
                self.prev_poc_msb = cur.poc_msb;
                self.prev_poc_lsb = cur.params.pic_order_cnt_lsb;
            }
        }
    }

    fn update_pic_nums(&mut self, frame_num: u32) {
        let max = self.seq.max_frame_num as i64;
        for f in &mut self.frames {
            f.frame_num_wrap = if f.frame_num > frame_num {
                (i64::from(f.frame_num) - max) as i32
            } else {
                f.frame_num as i32
            };
        }
    }

    /// The references for `V4L2_CID_STATELESS_H264_DECODE_PARAMS` (frames with a picture).
    pub fn references(&self) -> impl Iterator<Item = &Frame> {
        self.frames.iter().filter(|f| f.is_reference())
    }

    fn sliding_window(&mut self) {
        let limit = self.seq.max_num_ref_frames.max(1);
        while self.frames.iter().filter(|f| f.is_reference()).count() >= limit {
            let oldest = self
                .frames
                .iter_mut()
                .filter(|f| f.marking == Marking::ShortTerm)
                .min_by_key(|f| f.frame_num_wrap);
            match oldest {
                Some(f) => f.marking = Marking::Unused,
                None => break,
            }
        }
        self.frames
            .retain(|f| f.is_reference() || f.needed_for_output);
    }

    /// Ends the current picture: reference marking, then storage with output by bumping; the
    /// pictures output are appended to `out` in output order.
    pub fn finish_picture(&mut self, mut cur: Current, out: &mut Vec<u64>) -> Result<(), DpbError> {
        let p = &cur.params;
        let is_ref = p.nal_ref_idc != 0;
        let mmco5 = p.has_mmco5();
        let mut marking = if is_ref {
            Marking::ShortTerm
        } else {
            Marking::Unused
        };
        if p.idr || mmco5 {
            // C.4.4: every earlier picture is output before this one is stored.
            self.flush(out);
        }
        if p.idr {
            self.frames.clear();
            if p.long_term_reference_flag {
                marking = Marking::LongTerm(0);
                self.max_long_term_frame_idx = Some(0);
            } else {
                self.max_long_term_frame_idx = None;
            }
        } else if is_ref {
            match &p.mmcos {
                None => self.sliding_window(),
                Some(ops) => {
                    let curr_pic_num = p.frame_num as i32;
                    for &op in ops {
                        if let Some(m) = self.apply_mmco(op, curr_pic_num)? {
                            marking = m;
                        }
                    }
                }
            }
            // A stream with more references than allowed: drop the oldest short-term ones.
            if marking == Marking::ShortTerm {
                self.sliding_window();
            }
        }
        if mmco5 {
            let temp = cur.top_poc.min(cur.bottom_poc);
            cur.top_poc -= temp;
            cur.bottom_poc -= temp;
        }
        self.frames
            .retain(|f| f.is_reference() || f.needed_for_output);
        let frame = Frame {
            id: Some(cur.params.id),
            frame_num: if mmco5 { 0 } else { cur.params.frame_num },
            frame_num_wrap: if mmco5 {
                0
            } else {
                cur.params.frame_num as i32
            },
            top_poc: cur.top_poc,
            bottom_poc: cur.bottom_poc,
            marking,
            needed_for_output: true,
        };
        self.store(frame, out);
        self.remember(&cur, mmco5, false);
        Ok(())
    }

    fn apply_mmco(&mut self, op: Mmco, curr_pic_num: i32) -> Result<Option<Marking>, DpbError> {
        let short = |frames: &mut Vec<Frame>, diff: u32| {
            let pic_num = curr_pic_num - (diff as i32 + 1);
            frames
                .iter_mut()
                .position(|f| f.marking == Marking::ShortTerm && f.frame_num_wrap == pic_num)
        };
        match op {
            Mmco::ShortTermUnused {
                difference_of_pic_nums_minus1,
            } => {
                let i = short(&mut self.frames, difference_of_pic_nums_minus1)
                    .ok_or(DpbError::NoSuchPicture(op))?;
                self.frames[i].marking = Marking::Unused;
            }
            Mmco::LongTermUnused { long_term_pic_num } => {
                let f = self
                    .frames
                    .iter_mut()
                    .find(|f| f.marking == Marking::LongTerm(long_term_pic_num))
                    .ok_or(DpbError::NoSuchPicture(op))?;
                f.marking = Marking::Unused;
            }
            Mmco::ShortToLong {
                difference_of_pic_nums_minus1,
                long_term_frame_idx,
            } => {
                let i = short(&mut self.frames, difference_of_pic_nums_minus1)
                    .ok_or(DpbError::NoSuchPicture(op))?;
                for f in &mut self.frames {
                    if f.marking == Marking::LongTerm(long_term_frame_idx) {
                        f.marking = Marking::Unused;
                    }
                }
                self.frames[i].marking = Marking::LongTerm(long_term_frame_idx);
            }
            Mmco::MaxLongTermFrameIdx(max) => {
                self.max_long_term_frame_idx = max;
                for f in &mut self.frames {
                    if let Marking::LongTerm(idx) = f.marking {
                        if max.map_or(true, |m| idx > m) {
                            f.marking = Marking::Unused;
                        }
                    }
                }
            }
            Mmco::AllUnused => {
                for f in &mut self.frames {
                    f.marking = Marking::Unused;
                }
                self.max_long_term_frame_idx = None;
            }
            Mmco::CurrentToLong {
                long_term_frame_idx,
            } => {
                for f in &mut self.frames {
                    if f.marking == Marking::LongTerm(long_term_frame_idx) {
                        f.marking = Marking::Unused;
                    }
                }
                return Ok(Some(Marking::LongTerm(long_term_frame_idx)));
            }
        }
        Ok(None)
    }

    /// Stores `frame` (C.4.5): bumps while the DPB is full; a non-reference picture that
    /// would come out first anyway is output at once instead of being stored.
    fn store(&mut self, frame: Frame, out: &mut Vec<u64>) {
        let size = self.seq.dpb_frames.max(1);
        if !frame.is_reference() && frame.needed_for_output {
            while self.frames.len() >= size {
                let first_waiting = self
                    .frames
                    .iter()
                    .filter(|f| f.needed_for_output)
                    .map(Frame::poc)
                    .min();
                if first_waiting.map_or(true, |p| frame.poc() < p) {
                    out.extend(frame.id);
                    return;
                }
                if !self.bump(out) {
                    break;
                }
            }
        } else {
            while self.frames.len() >= size {
                if !self.bump(out) {
                    break;
                }
            }
        }
        self.frames.push(frame);
        if let Some(max) = self.seq.max_reorder {
            while self.frames.iter().filter(|f| f.needed_for_output).count() > max {
                if !self.bump(out) {
                    break;
                }
            }
        }
    }

    /// Outputs the waiting frame with the smallest POC; false if none waits.
    fn bump(&mut self, out: &mut Vec<u64>) -> bool {
        let Some(i) = self
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.needed_for_output)
            .min_by_key(|(_, f)| f.poc())
            .map(|(i, _)| i)
        else {
            return false;
        };
        let f = &mut self.frames[i];
        f.needed_for_output = false;
        out.extend(f.id);
        if !f.is_reference() {
            self.frames.remove(i);
        }
        true
    }

    /// Outputs every waiting frame (end of stream, IDR, MMCO 5).
    pub fn flush(&mut self, out: &mut Vec<u64>) {
        while self.bump(out) {}
    }

    /// The initial reference picture lists of a P (`b = false`) or B slice of `cur` (8.2.4.2.1,
    /// 8.2.4.2.3), before modification and truncation.
    pub fn initial_lists(&self, cur: &Current, b: bool) -> (Vec<ListEntry>, Vec<ListEntry>) {
        let entry = |f: &Frame| ListEntry {
            id: f.id,
            long_term: matches!(f.marking, Marking::LongTerm(_)),
        };
        let mut long: Vec<&Frame> = self
            .frames
            .iter()
            .filter(|f| matches!(f.marking, Marking::LongTerm(_)))
            .collect();
        long.sort_by_key(|f| f.pic_num());
        let short = self
            .frames
            .iter()
            .filter(|f| f.marking == Marking::ShortTerm);
        if !b {
            let mut s: Vec<&Frame> = short.collect();
            s.sort_by_key(|f| std::cmp::Reverse(f.frame_num_wrap));
            let l0 = s.into_iter().chain(long).map(entry).collect();
            return (l0, Vec::new());
        }
        let poc = cur.poc();
        let mut before: Vec<&Frame> = short.clone().filter(|f| f.poc() <= poc).collect();
        before.sort_by_key(|f| std::cmp::Reverse(f.poc()));
        let mut after: Vec<&Frame> = short.filter(|f| f.poc() > poc).collect();
        after.sort_by_key(|f| f.poc());
        let l0: Vec<ListEntry> = before
            .iter()
            .chain(after.iter())
            .chain(long.iter())
            .map(|f| entry(f))
            .collect();
        let mut l1: Vec<ListEntry> = after
            .iter()
            .chain(before.iter())
            .chain(long.iter())
            .map(|f| entry(f))
            .collect();
        if l1.len() > 1 && l0 == l1 {
            l1.swap(0, 1);
        }
        (l0, l1)
    }

    /// Applies `ref_pic_list_modification()` (8.2.4.3) to `list` for `num_active` entries:
    /// `mods` are (`modification_of_pic_nums_idc`, `abs_diff_pic_num_minus1` or
    /// `long_term_pic_num`). Entries that name no picture are `None`.
    pub fn modify_list(
        &self,
        cur: &Current,
        list: &[ListEntry],
        num_active: usize,
        mods: &[(u8, u32)],
    ) -> Vec<Option<ListEntry>> {
        let mut l: Vec<Option<ListEntry>> = list.iter().copied().map(Some).collect();
        l.resize(num_active.max(list.len()), None);
        l.truncate(num_active);
        let max_pic_num = i64::from(self.seq.max_frame_num.max(1));
        let curr_pic_num = i64::from(cur.params.frame_num);
        let mut pred = curr_pic_num;
        for (ref_idx, &(idc, value)) in mods.iter().enumerate() {
            if ref_idx >= num_active {
                break;
            }
            let (target, is_long, num): (Option<&Frame>, bool, i64) = match idc {
                0 | 1 => {
                    let abs = i64::from(value) + 1;
                    let mut no_wrap = if idc == 0 { pred - abs } else { pred + abs };
                    if idc == 0 && no_wrap < 0 {
                        no_wrap += max_pic_num;
                    } else if idc == 1 && no_wrap >= max_pic_num {
                        no_wrap -= max_pic_num;
                    }
                    pred = no_wrap;
                    let pic_num = if no_wrap > curr_pic_num {
                        no_wrap - max_pic_num
                    } else {
                        no_wrap
                    };
                    let f = self.frames.iter().find(|f| {
                        f.marking == Marking::ShortTerm && i64::from(f.frame_num_wrap) == pic_num
                    });
                    (f, false, pic_num)
                }
                2 => {
                    let f = self
                        .frames
                        .iter()
                        .find(|f| f.marking == Marking::LongTerm(value));
                    (f, true, i64::from(value))
                }
                _ => break,
            };
            let new = target.map(|f| ListEntry {
                id: f.id,
                long_term: is_long,
            });
            // Insert at ref_idx, then drop the later copy of the same picture.
            l.insert(ref_idx, new);
            let same = |e: &Option<ListEntry>| -> bool {
                let Some(e) = e else { return false };
                let Some(f) = self.frames.iter().find(|f| f.id == e.id && f.id.is_some()) else {
                    return false;
                };
                if is_long {
                    e.long_term && f.marking == Marking::LongTerm(num as u32)
                } else {
                    !e.long_term && i64::from(f.frame_num_wrap) == num
                }
            };
            let mut n = ref_idx + 1;
            for c in ref_idx + 1..l.len() {
                if !same(&l[c]) {
                    l[n] = l[c];
                    n += 1;
                }
            }
            l.truncate(n.max(ref_idx + 1));
            l.resize(num_active, None);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(poc_type: u8) -> SeqParams {
        SeqParams {
            poc_type,
            max_poc_lsb: 16,
            max_frame_num: 16,
            max_num_ref_frames: 2,
            dpb_frames: 3,
            ..SeqParams::default()
        }
    }

    fn pic(id: u64, frame_num: u32, lsb: i32, nal_ref_idc: u8) -> PicParams {
        PicParams {
            id,
            idr: id == 0,
            nal_ref_idc,
            frame_num,
            pic_order_cnt_lsb: lsb,
            ..PicParams::default()
        }
    }

    /// A DPB for the sequence `s`.
    fn dpb_for(s: SeqParams) -> Dpb {
        let mut dpb = Dpb::new();
        dpb.set_seq(s);
        dpb
    }

    /// A DPB for `s` that has decoded IDR picture 0, and the output list.
    fn after_idr(s: SeqParams) -> (Dpb, Vec<u64>) {
        let mut dpb = dpb_for(s);
        let mut out = Vec::new();
        decode(&mut dpb, pic(0, 0, 0, 1), &mut out);
        (dpb, out)
    }

    /// POC type 0 with room for three references (long-term and gap tests).
    fn three_refs() -> SeqParams {
        SeqParams {
            max_num_ref_frames: 3,
            dpb_frames: 4,
            ..seq(0)
        }
    }

    fn decode(dpb: &mut Dpb, p: PicParams, out: &mut Vec<u64>) -> Current {
        let cur = dpb.start_picture(p, out);
        dpb.finish_picture(cur.clone(), out).unwrap();
        cur
    }

    #[test]
    fn poc_type0_ibbp_output_order() {
        // Decode order I0 P3 B1 B2 P6 B4 B5 (POC lsb = 2 * display index), lsb wraps at 16.
        let mut dpb = dpb_for(seq(0));
        let mut out = Vec::new();
        let order = [
            (0, 0, 0, 1),
            (1, 1, 6, 1),
            (2, 2, 2, 0),
            (3, 2, 4, 0),
            (4, 2, 12, 1),
            (5, 3, 8, 0),
            (6, 3, 10, 0),
            (7, 3, 2, 1),
        ];
        let mut pocs = Vec::new();
        for (id, fnum, lsb, r) in order {
            let c = decode(&mut dpb, pic(id, fnum, lsb, r), &mut out);
            pocs.push(c.poc());
        }
        // The last lsb (2) after 12 wraps: 16 + 2 = 18.
        assert_eq!(pocs, [0, 6, 2, 4, 12, 8, 10, 18]);
        dpb.flush(&mut out);
        assert_eq!(out, [0, 2, 3, 1, 5, 6, 4, 7]);
        assert!(dpb.frames().iter().all(|f| f.is_reference()));
        // Sliding window kept max_num_ref_frames = 2 references.
        assert_eq!(dpb.references().count(), 2);
    }

    #[test]
    fn poc_types_1_and_2() {
        let mut s = seq(2);
        s.max_frame_num = 4;
        let mut dpb = dpb_for(s.clone());
        let mut out = Vec::new();
        let pocs: Vec<i32> = [
            (0, 0, 1),
            (1, 1, 1),
            (2, 2, 0),
            (3, 2, 1),
            (4, 3, 1),
            (5, 0, 1),
        ]
        .into_iter()
        .map(|(id, f, r)| decode(&mut dpb, pic(id, f, 0, r), &mut out).poc())
        .collect();
        // Type 2: 2 * (FrameNumOffset + frame_num), minus 1 for non-reference; frame_num wraps
        // at 4 and FrameNumOffset grows.
        assert_eq!(pocs, [0, 2, 3, 4, 6, 8]);

        let mut s1 = seq(1);
        s1.offset_for_ref_frame = vec![2, 4];
        s1.offset_for_non_ref_pic = -1;
        s1.offset_for_top_to_bottom_field = 1;
        let mut dpb = dpb_for(s1);
        let c: Vec<(i32, i32)> = [(0, 0, 1), (1, 1, 1), (2, 2, 1), (3, 3, 0)]
            .into_iter()
            .map(|(id, f, r)| {
                let c = decode(&mut dpb, pic(id, f, 0, r), &mut out);
                (c.top_poc, c.bottom_poc)
            })
            .collect();
        // absFrameNum 1 -> 2, 2 -> 6, non-ref absFrameNum 3-1=2 -> 6 - 1 = 5.
        assert_eq!(c, [(0, 1), (2, 3), (6, 7), (5, 6)]);
    }

    #[test]
    fn mmco_long_term_and_mmco5() {
        let (mut dpb, mut out) = after_idr(three_refs());
        decode(&mut dpb, pic(1, 1, 2, 1), &mut out);
        // Picture 2 makes picture 0 (PicNum 0 = 2 - (1 + 1)) long-term index 1, and limits the
        // long-term indices to 0..=1.
        let mut p = pic(2, 2, 4, 1);
        p.mmcos = Some(vec![
            Mmco::MaxLongTermFrameIdx(Some(1)),
            Mmco::ShortToLong {
                difference_of_pic_nums_minus1: 1,
                long_term_frame_idx: 1,
            },
        ]);
        let cur = decode(&mut dpb, p, &mut out);
        let marks: Vec<(Option<u64>, Marking)> =
            dpb.frames().iter().map(|f| (f.id, f.marking)).collect();
        assert!(marks.contains(&(Some(0), Marking::LongTerm(1))));
        assert!(marks.contains(&(Some(1), Marking::ShortTerm)));
        // P list: short-term by descending PicNum, then long-term.
        let cur3 = dpb.start_picture(pic(3, 3, 6, 1), &mut out);
        let (l0, _) = dpb.initial_lists(&cur3, false);
        let ids: Vec<Option<u64>> = l0.iter().map(|e| e.id).collect();
        assert_eq!(ids, [Some(2), Some(1), Some(0)]);
        // Modification: long-term 1 first, then PicNum 1 (3 - 2).
        let m = dpb.modify_list(&cur3, &l0, 3, &[(2, 1), (0, 1)]);
        let ids: Vec<Option<u64>> = m.iter().map(|e| e.map(|e| e.id.unwrap())).collect();
        assert_eq!(ids, [Some(0), Some(1), Some(2)]);
        let _ = cur;
        // MMCO 1 then 2: drop short-term PicNum 2 and long-term 1.
        let mut cur3 = cur3;
        cur3.params.mmcos = Some(vec![
            Mmco::ShortTermUnused {
                difference_of_pic_nums_minus1: 0,
            },
            Mmco::LongTermUnused {
                long_term_pic_num: 1,
            },
        ]);
        dpb.finish_picture(cur3, &mut out).unwrap();
        let refs: Vec<Option<u64>> = dpb.references().map(|f| f.id).collect();
        assert_eq!(refs, [Some(1), Some(3)]);
        // MMCO 5: everything output, POC restarts; the next picture's POC is relative to it.
        let mut p = pic(4, 4, 10, 1);
        p.mmcos = Some(vec![Mmco::AllUnused]);
        let c = dpb.start_picture(p, &mut out);
        assert_eq!(c.poc(), 10);
        dpb.finish_picture(c, &mut out).unwrap();
        assert_eq!(out, [0, 1, 2, 3]);
        assert_eq!(dpb.references().count(), 1);
        let c = dpb.start_picture(pic(5, 1, 2, 1), &mut out);
        assert_eq!(c.poc(), 2);
        dpb.finish_picture(c, &mut out).unwrap();
        dpb.flush(&mut out);
        assert_eq!(out, [0, 1, 2, 3, 4, 5]);
        // A missing picture is an error.
        let mut p = pic(6, 2, 4, 1);
        p.mmcos = Some(vec![Mmco::ShortTermUnused {
            difference_of_pic_nums_minus1: 7,
        }]);
        let c = dpb.start_picture(p, &mut out);
        assert!(dpb.finish_picture(c, &mut out).is_err());
    }

    #[test]
    fn frame_num_gap_and_b_lists() {
        let (mut dpb, mut out) = after_idr(three_refs());
        // frame_num jumps 0 -> 3: frames 1 and 2 are inferred (no picture).
        decode(&mut dpb, pic(1, 3, 8, 1), &mut out);
        let nums: Vec<(Option<u64>, u32)> = dpb.references().map(|f| (f.id, f.frame_num)).collect();
        assert_eq!(nums, [(None, 1), (None, 2), (Some(1), 3)]);
        // B picture at POC 4 between POC 0 .. 8 (frame 0 slid out).
        let mut dpb = dpb_for(SeqParams {
            max_poc_lsb: 64,
            ..three_refs()
        });
        decode(&mut dpb, pic(0, 0, 0, 1), &mut out);
        decode(&mut dpb, pic(1, 1, 8, 1), &mut out);
        decode(&mut dpb, pic(2, 2, 12, 1), &mut out);
        let cur = dpb.start_picture(pic(3, 3, 4, 0), &mut out);
        let (l0, l1) = dpb.initial_lists(&cur, true);
        let ids = |l: &[ListEntry]| l.iter().map(|e| e.id.unwrap()).collect::<Vec<_>>();
        assert_eq!(ids(&l0), [0, 1, 2]);
        assert_eq!(ids(&l1), [1, 2, 0]);
        // Only references after: l1 would equal l0, so its first two swap.
        let cur = dpb.start_picture(pic(4, 3, 14, 0), &mut out);
        let (l0, l1) = dpb.initial_lists(&cur, true);
        assert_eq!(ids(&l0), [2, 1, 0]);
        assert_eq!(ids(&l1), [1, 2, 0]);
    }
}
