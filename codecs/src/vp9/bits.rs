// SPDX-License-Identifier: GPL-2.0
//! The two bit readers of a VP9 frame header: the plain MSB-first reader of the uncompressed
//! header (`f(n)` / `su(n)` in the specification, section 4.9) and the boolean decoder of the
//! compressed header (section 9.2).

use super::ParseError;

/// MSB-first reader of fixed-width fields (`f(n)`), as the uncompressed header uses.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits read so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// `f(1)`.
    pub(crate) fn bit(&mut self) -> Result<bool, ParseError> {
        let byte = *self
            .data
            .get(self.pos / 8)
            .ok_or(ParseError::Truncated("uncompressed header"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// `f(n)`, `n` <= 32.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, ParseError> {
        debug_assert!(n <= 32);
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Ok(v)
    }

    /// `f(n)` for a field of at most 8 bits.
    pub(crate) fn bits_u8(&mut self, n: u32) -> Result<u8, ParseError> {
        debug_assert!(n <= 8);
        // At most 8 bits were read: the value fits.
        Ok(self.bits(n)? as u8)
    }

    /// `su(n)`: `n` bits of magnitude, then a sign bit (`n` <= 7).
    pub(crate) fn signed(&mut self, n: u32) -> Result<i8, ParseError> {
        debug_assert!(n <= 7);
        // At most 7 bits: the magnitude fits in an i8.
        let value = self.bits(n)? as i8;
        Ok(if self.bit()? { -value } else { value })
    }
}

/// The boolean (arithmetic) decoder of the compressed header (9.2.1 - 9.2.3).
#[derive(Debug)]
pub(crate) struct BoolDecoder<'a> {
    bits: BitReader<'a>,
    value: u32,
    range: u32,
    /// Bits of the header not yet read into `value` (`BoolMaxBits`).
    max_bits: usize,
}

impl<'a> BoolDecoder<'a> {
    /// `init_bool(sz)` over `data` (exactly the compressed header): reads the first byte and
    /// the marker bit, which must be 0.
    pub(crate) fn new(data: &'a [u8]) -> Result<Self, ParseError> {
        if data.is_empty() {
            return Err(ParseError::Invalid("empty compressed header"));
        }
        let mut bits = BitReader::new(data);
        let value = bits.bits(8)?;
        let mut dec = BoolDecoder {
            bits,
            value,
            range: 255,
            max_bits: 8 * data.len() - 8,
        };
        if dec.read_bool(128)? {
            return Err(ParseError::Invalid("compressed header marker bit is 1"));
        }
        Ok(dec)
    }

    /// `read_bool(p)`: one boolean whose probability of being 0 is `p / 256`.
    pub(crate) fn read_bool(&mut self, p: u8) -> Result<bool, ParseError> {
        let split = 1 + (((self.range - 1) * u32::from(p)) >> 8);
        let bit = if self.value < split {
            self.range = split;
            false
        } else {
            self.range -= split;
            self.value -= split;
            true
        };
        while self.range < 128 {
            let new_bit = if self.max_bits > 0 {
                self.max_bits -= 1;
                u32::from(self.bits.bit()?)
            } else {
                0
            };
            self.range *= 2;
            self.value = (self.value << 1) | new_bit;
        }
        Ok(bit)
    }

    /// `L(n)`: an `n`-bit literal, MSB first, each bit with probability 128.
    pub(crate) fn read_literal(&mut self, n: u32) -> Result<u8, ParseError> {
        debug_assert!(n <= 8);
        let mut v = 0u8;
        for _ in 0..n {
            v = (v << 1) | u8::from(self.read_bool(128)?);
        }
        Ok(v)
    }

    /// `exit_bool()`: the padding after the last symbol. The specification requires it to be
    /// zero; returns whether it is.
    pub(crate) fn padding_is_zero(mut self) -> Result<bool, ParseError> {
        let mut zero = true;
        while self.max_bits > 0 {
            self.max_bits -= 1;
            zero &= !self.bits.bit()?;
        }
        Ok(zero)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_reader_fields() {
        let mut r = BitReader::new(&[0b1010_0110, 0b1100_0000]);
        assert!(r.bit().unwrap());
        assert_eq!(r.bits(3).unwrap(), 0b010);
        // su(3): magnitude 0b011, sign 0 -> +3.
        assert_eq!(r.signed(3).unwrap(), 3);
        // su(1): magnitude 1, sign 1 -> -1.
        assert_eq!(r.signed(1).unwrap(), -1);
        assert_eq!(r.position(), 10);
        assert_eq!(r.bits(6).unwrap(), 0);
        assert!(matches!(r.bit(), Err(ParseError::Truncated(_))));
    }

    #[test]
    fn bool_decoder_marker_and_literals() {
        // A first byte below the split (128) makes the marker 0.
        assert!(BoolDecoder::new(&[0x00, 0x00]).is_ok());
        assert!(matches!(
            BoolDecoder::new(&[0xff, 0xff]),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(BoolDecoder::new(&[]), Err(ParseError::Invalid(_))));
        // All-zero data decodes as zeros for ever (missing bits read as 0).
        let mut d = BoolDecoder::new(&[0x00]).unwrap();
        assert_eq!(d.read_literal(8).unwrap(), 0);
        assert!(!d.read_bool(1).unwrap());
        assert!(d.padding_is_zero().unwrap());
    }
}
