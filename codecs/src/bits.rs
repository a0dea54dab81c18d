// SPDX-License-Identifier: GPL-2.0
//! A most-significant-bit-first bit writer: the one both header rebuilders (H.264 parameter sets,
//! AV1 OBUs) write their syntax elements with.

/// Writes bits MSB first into a byte vector.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits of the last byte already used (0: the next bit starts a new byte).
    used: u32,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> BitWriter {
        BitWriter::default()
    }

    /// Writes the `n` (at most 32) low bits of `value`, most significant first: `f(n)` / `u(n)`.
    pub fn put(&mut self, n: u32, value: u32) {
        debug_assert!(n <= 32);
        for i in (0..n).rev() {
            self.put_bool((value >> i) & 1 == 1);
        }
    }

    /// Writes one bit.
    pub fn put_bool(&mut self, bit: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if bit {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 0x80 >> self.used;
            }
        }
        self.used = (self.used + 1) % 8;
    }

    /// Writes `value` as an unsigned Exp-Golomb code, `ue(v)` (H.264 9.1).
    pub fn put_ue(&mut self, value: u32) {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        self.put(len - 1, 0);
        for i in (0..len).rev() {
            self.put_bool((v >> i) & 1 == 1);
        }
    }

    /// Writes `value` as a signed Exp-Golomb code, `se(v)` (H.264 9.1.1).
    pub fn put_se(&mut self, value: i32) {
        let mapped = if value > 0 {
            2 * value.unsigned_abs() - 1
        } else {
            2 * value.unsigned_abs()
        };
        self.put_ue(mapped);
    }

    /// Whether the writer is at a byte boundary.
    pub fn byte_aligned(&self) -> bool {
        self.used == 0
    }

    /// Bits written so far.
    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8
            - if self.used == 0 {
                0
            } else {
                (8 - self.used) as usize
            }
    }

    /// Pads with zero bits up to the next byte boundary.
    pub fn align_zero(&mut self) {
        self.used = 0;
    }

    /// The bytes written (a partial last byte is zero-padded).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the writer, returning its bytes (a partial last byte is zero-padded).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_fields_pack_msb_first() {
        let mut w = BitWriter::new();
        w.put(3, 0b101);
        w.put(5, 0b10011);
        w.put(4, 0xf);
        assert_eq!(w.bit_len(), 12);
        assert!(!w.byte_aligned());
        assert_eq!(w.bytes(), &[0b1011_0011, 0xf0]);
    }

    #[test]
    fn exp_golomb_codes() {
        // Table 9-2: 0 -> 1, 1 -> 010, 2 -> 011, 3 -> 00100, 7 -> 0001000.
        let mut w = BitWriter::new();
        for v in [0, 1, 2, 3, 7] {
            w.put_ue(v);
        }
        assert_eq!(w.bit_len(), 1 + 3 + 3 + 5 + 7);
        assert_eq!(w.bytes(), &[0b1010_0110, 0b0100_0001, 0b0000_0000]);
        // se(v): 1 -> ue 1, -1 -> ue 2, 2 -> ue 3.
        let mut s = BitWriter::new();
        s.put_se(1);
        s.put_se(-1);
        s.put_se(2);
        assert_eq!(s.bytes(), &[0b0100_1100, 0b1000_0000]);
        // The largest value still fits.
        let mut m = BitWriter::new();
        m.put_ue(u32::MAX);
        assert_eq!(m.bit_len(), 65);
    }
}
