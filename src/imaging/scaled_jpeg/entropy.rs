//! The entropy-coded data: Huffman tables with the lookups that decode a kept coefficient or
//! skip two others at once, the bit reader, and one block's coefficients.

use super::Declined;

/// Bits looked up at once when decoding a Huffman code.
const FAST_BITS: u32 = 10;
/// Bits looked up at once when skipping coefficients, two at a time where both fit.
const PAIR_BITS: u32 = 12;

/// The natural (row-major) position of each coefficient in the order they are coded.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// One Huffman table, with a lookup of the first [`FAST_BITS`] bits for the common short codes.
pub(super) struct Huffman {
    /// `length << 8 | symbol` for the codes of at most `FAST_BITS` bits; 0 elsewhere.
    fast: [u16; 1 << FAST_BITS],
    /// For skipping an AC coefficient: `advance << 8 | (code length + value length)`, where
    /// `advance` is the positions it moves (`run + 1`, 16 for a run of sixteen zeros, 0 for the
    /// end of the block).
    skip: [u16; 1 << FAST_BITS],
    /// For skipping AC coefficients two at a time, indexed by the next [`PAIR_BITS`] bits: the
    /// bits to drop (low 5 bits), the positions to move (next 7), whether the block ends there
    /// (`END`) and whether two coefficients are skipped (`PAIR`); [`TOO_LONG`] where the first
    /// code is too long. A single entry is `skip`'s.
    pairs: [u16; 1 << PAIR_BITS],
    /// For decoding an AC coefficient whose code and value fit in [`FAST_BITS`] bits: the value
    /// (high 16 bits), the run of zeros before it (next 8; `RUN_END` for the end of the block,
    /// `RUN_SIXTEEN` for sixteen zeros) and the bits to drop (low 8); 0 elsewhere.
    values: [i32; 1 << FAST_BITS],
    /// The largest code of each length (-1 for none), for the codes too long for the lookup.
    max_code: [i32; 17],
    /// Added to a code of each length to find its symbol's index.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    pub(super) fn new(counts: &[u8], symbols: &[u8]) -> Result<Huffman, Declined> {
        let mut table = Huffman {
            fast: [0; 1 << FAST_BITS],
            skip: [0; 1 << FAST_BITS],
            pairs: [0; 1 << PAIR_BITS],
            values: [0; 1 << FAST_BITS],
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: symbols.to_vec(),
        };
        let mut code = 0u32;
        let mut index = 0usize;
        for length in 1..=16u32 {
            let count = usize::from(counts[length as usize - 1]);
            table.offset[length as usize] = index as i32 - code as i32;
            for _ in 0..count {
                if code >= 1 << length {
                    return Err(()); // more codes than the length allows
                }
                if length <= FAST_BITS {
                    let symbol = symbols[index];
                    let shift = FAST_BITS - length;
                    let size = u32::from(symbol & 15);
                    let skip = ((advance(symbol) as u32) << 8 | (length + size)) as u16;
                    for low in 0..1u32 << shift {
                        let at = ((code << shift) | low) as usize;
                        table.fast[at] = (length << 8) as u16 | u16::from(symbol);
                        table.skip[at] = skip;
                    }
                }
                code += 1;
                index += 1;
            }
            if count > 0 {
                table.max_code[length as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        for index in 0..1usize << PAIR_BITS {
            table.pairs[index] = table.pair_entry(index);
        }
        for index in 0..1usize << FAST_BITS {
            table.values[index] = table.value_entry(index);
        }
        Ok(table)
    }

    /// The `values` entry for the next bits `index`.
    fn value_entry(&self, index: usize) -> i32 {
        let entry = self.fast[index];
        if entry == 0 {
            return 0;
        }
        let (length, symbol) = (u32::from(entry >> 8), entry as u8);
        let (run, size) = (i32::from(symbol >> 4), u32::from(symbol & 15));
        if size == 0 {
            let run = if run == 15 { RUN_SIXTEEN } else { RUN_END };
            return run << 8 | length as i32;
        }
        if length + size > FAST_BITS {
            return 0;
        }
        let raw = ((index >> (FAST_BITS - length - size)) & ((1 << size) - 1)) as i32;
        let value = if raw < 1 << (size - 1) {
            raw - (1 << size) + 1
        } else {
            raw
        };
        value << 16 | run << 8 | (length + size) as i32
    }

    /// The `pairs` entry for the next bits `index`.
    fn pair_entry(&self, index: usize) -> u16 {
        let spare = PAIR_BITS - FAST_BITS;
        let first = self.skip[index >> spare];
        let (length, advance) = (u32::from(first & 0xFF), u32::from(first >> 8));
        if first == 0 {
            return TOO_LONG;
        }
        if advance == 0 {
            return length as u16 | END;
        }
        let single = (length | advance << 5) as u16;
        if length >= PAIR_BITS {
            return single;
        }
        // The second code, from the bits left after the first code and value.
        let rest = (index << length) & ((1 << PAIR_BITS) - 1);
        let second = self.skip[rest >> spare];
        let code_length = u32::from(self.fast[rest >> spare] >> 8);
        let (length2, advance2) = (u32::from(second & 0xFF), u32::from(second >> 8));
        if second == 0 || code_length > PAIR_BITS - length || length + length2 > PAIR_BITS {
            return single;
        }
        let end = if advance2 == 0 { END } else { 0 };
        ((length + length2) | (advance + advance2) << 5) as u16 | end | PAIR
    }
}

/// In a `values` entry: the end of the block.
const RUN_END: i32 = 0xFF;
/// In a `values` entry: sixteen zeros.
const RUN_SIXTEEN: i32 = 0xFE;

/// In a `pairs` entry: the block ends after it.
const END: u16 = 1 << 12;
/// In a `pairs` entry: two coefficients are skipped.
const PAIR: u16 = 1 << 13;
/// The `pairs` entry where the first code is longer than the lookup: it moves past every
/// position, so the block loop's one bounds check sends it to the long way.
const TOO_LONG: u16 = 0x7F << 5;

/// The entropy-coded data, read most significant bit first, with stuffed zero bytes removed.
///
/// `Copy`, and the rare paths take and return it by value, so that the block loop can keep it
/// in registers.
#[derive(Clone, Copy)]
pub(super) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// The next bits, from the top down; `count` of them are valid.
    acc: u64,
    count: u32,
    /// A marker (or the end of the data) was reached: zeros are read from here on.
    at_marker: bool,
    /// Zero bits added past the marker since the last restart.
    padding: u32,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            pos: 0,
            acc: 0,
            count: 0,
            at_marker: false,
            padding: 0,
        }
    }

    /// Whether decoding used bits past the data's end (it is shorter than its blocks need).
    pub(super) fn overran(&self) -> bool {
        self.padding > self.count
    }

    /// Makes at least 32 bits available.
    #[inline(always)]
    fn refill(&mut self) {
        if self.count < 32 && !self.refill_word() {
            *self = self.refill_bytewise();
        }
    }

    /// Tops the bits up to at least 56 on every call without asking first whether they are
    /// needed (a branch the data decides, which the processor mispredicts often), except where
    /// a 0xFF byte is near and 40 bits are still there: enough for the longest skip entry (a
    /// code of `FAST_BITS` and a value of 15 bits) with the next lookup's `PAIR_BITS` left.
    #[inline(always)]
    fn refill_eagerly(&mut self) {
        if !self.refill_word() && self.count < 40 {
            *self = self.refill_bytewise();
        }
    }

    /// Tops the bits up to 56-63 from the next eight bytes where none of them is 0xFF (no
    /// stuffing, no marker); false, changing nothing, where one is or the data ends. Bits past
    /// `count` are the stream's next bits too, so a later refill that ORs them in again changes
    /// nothing.
    #[inline(always)]
    fn refill_word(&mut self) -> bool {
        if self.at_marker {
            return false;
        }
        let Some(chunk) = self.data.get(self.pos..self.pos + 8) else {
            return false;
        };
        let word = u64::from_be_bytes(chunk.try_into().unwrap_or([0xFF; 8]));
        let inverted = !word;
        let has_ff =
            inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
        if has_ff != 0 {
            return false;
        }
        self.acc |= word >> self.count;
        let taken = (63 - self.count) >> 3;
        self.pos += taken as usize;
        self.count += taken * 8;
        true
    }

    #[cold]
    #[inline(never)]
    fn refill_bytewise(mut self) -> Self {
        while self.count < 56 {
            let mut byte = 0u8;
            if self.at_marker {
                self.padding = self.padding.saturating_add(8);
            } else {
                match self.data.get(self.pos) {
                    Some(0xFF) => match self.data.get(self.pos + 1) {
                        Some(0x00) => {
                            byte = 0xFF;
                            self.pos += 2;
                        }
                        _ => {
                            self.at_marker = true;
                            self.padding = self.padding.saturating_add(8);
                        }
                    },
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                    None => {
                        self.at_marker = true;
                        self.padding = self.padding.saturating_add(8);
                    }
                }
            }
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
        self
    }

    #[inline(always)]
    fn peek(&self) -> usize {
        (self.acc >> (64 - FAST_BITS)) as usize
    }

    /// Drops `n` bits (`n <= count`, which the 32 bits a refill leaves guarantee for a code and
    /// its value together).
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.count -= n;
    }

    /// A Huffman-coded symbol; needs a refill before it.
    #[inline(always)]
    fn symbol(&mut self, table: &Huffman) -> Result<u8, Declined> {
        let entry = table.fast[self.peek()];
        if entry != 0 {
            self.consume(u32::from(entry >> 8));
            return Ok(entry as u8);
        }
        let (bits, symbol) = self.symbol_long(table)?;
        *self = bits;
        Ok(symbol)
    }

    #[cold]
    #[inline(never)]
    fn symbol_long(mut self, table: &Huffman) -> Result<(Self, u8), Declined> {
        for length in FAST_BITS + 1..=16 {
            let code = (self.acc >> (64 - length)) as i32;
            if code <= table.max_code[length as usize] {
                self.consume(length);
                let index = table.offset[length as usize] + code;
                let symbol = table.symbols.get(index as usize).copied().ok_or(())?;
                return Ok((self, symbol));
            }
        }
        Err(()) // no such code
    }

    /// `size` value bits as a signed coefficient (JPEG's "receive and extend").
    #[inline(always)]
    fn value(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let raw = (self.acc >> (64 - size)) as i32;
        self.consume(size);
        if raw < 1 << (size - 1) {
            raw - (1 << size) + 1
        } else {
            raw
        }
    }

    /// Moves past the restart marker that ends an interval, with no bits left over.
    pub(super) fn restart(&mut self, expected: u8) -> Result<(), Declined> {
        if self.overran() || self.data.get(self.pos) != Some(&0xFF) {
            return Err(());
        }
        while self.data.get(self.pos) == Some(&0xFF) {
            self.pos += 1;
        }
        if self.data.get(self.pos) != Some(&(0xD0 + expected)) {
            return Err(());
        }
        self.pos += 1;
        self.acc = 0;
        self.count = 0;
        self.at_marker = false;
        self.padding = 0;
        Ok(())
    }
}

/// Decodes one block's coefficients, writing the `n × n` lowest (dequantised, row-major) into
/// `out`.
#[inline(always)]
pub(super) fn decode_block(
    state: &mut Bits,
    dc: &Huffman,
    ac: &Huffman,
    quant: &[u16; 64],
    predictor: &mut i16,
    plan: &Plan,
    out: &mut [i32; 16],
) -> Result<(), Declined> {
    *out = [0; 16];
    let mut bits = *state;
    bits.refill();
    let size = u32::from(bits.symbol(dc)?);
    if size > 11 {
        return Err(());
    }
    let diff = bits.value(size);
    *predictor = predictor.wrapping_add(diff as i16);
    out[0] = i32::from(*predictor).wrapping_mul(i32::from(quant[0]));
    let mut k = 1usize;
    // The coefficients the reduced size uses, decoded (code and value in one lookup where
    // they fit).
    //
    // The lookup first, then the refill beside it, as in the skipping loop below. The eager
    // refill leaves at least 40 bits; a code with its value the long way can take 31, leaving
    // fewer than the next lookup reads, so that way refills again after it.
    bits.refill();
    while k <= plan.last_needed {
        let entry = ac.values[bits.peek()];
        bits.refill_eagerly();
        let (run, value) = if entry != 0 {
            bits.consume((entry & 0xFF) as u32);
            let run = (entry >> 8) & 0xFF;
            if run == RUN_END {
                *state = bits;
                return Ok(());
            }
            if run == RUN_SIXTEEN {
                k += 16;
                continue;
            }
            (run as usize, entry >> 16)
        } else {
            let symbol = bits.symbol(ac)?;
            let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
            if size == 0 {
                if run != 15 {
                    *state = bits;
                    return Ok(());
                }
                k += 16;
                continue;
            }
            let value = bits.value(size);
            bits.refill();
            (run, value)
        };
        k += run;
        if k > 63 {
            return Err(());
        }
        if let Some(slot) = plan.slot[k] {
            out[usize::from(slot)] = i32::from(value as i16).wrapping_mul(i32::from(quant[k]));
        }
        k += 1;
    }
    // The rest, skipped: one lookup gives the bits to drop and the positions to move, for two
    // coefficients where their codes and values fit in `PAIR_BITS` bits. The loop has one
    // branch that depends on the data, the end of the block; the rest are almost never taken.
    //
    // The lookup comes before the refill, which then runs beside it instead of in the chain
    // from one code to the next: the bits looked up are always there, since a refill leaves at
    // least 32 (40 the eager one) and an entry drops at most 25 (a code and a value).
    bits.refill();
    while k < 64 {
        let pair = ac.pairs[(bits.acc >> (64 - PAIR_BITS)) as usize];
        bits.refill_eagerly();
        let after = k + usize::from((pair >> 5) & 0x7F);
        // Both codes must belong to this block: a pair that ends it must leave a position for
        // the end (else the second code is the next block's DC), and no code may move past the
        // last position. A first code too long for the lookup moves past every position.
        let last = 64 - usize::from((pair & END != 0) && (pair & PAIR != 0));
        if after > last {
            let ended;
            (bits, k, ended) = skip_one(bits, ac, k)?;
            if ended {
                break;
            }
            continue;
        }
        bits.consume(u32::from(pair & 31));
        k = after;
        if pair & END != 0 {
            break;
        }
    }
    *state = bits;
    Ok(())
}

/// Skips one AC coefficient the long way (its code too long for the pair lookup, or the pair
/// not all this block's): the new position, and whether the block ended.
#[cold]
#[inline(never)]
fn skip_one<'a>(
    mut bits: Bits<'a>,
    ac: &Huffman,
    k: usize,
) -> Result<(Bits<'a>, usize, bool), Declined> {
    bits.refill();
    let entry = ac.skip[bits.peek()];
    let (length, advance) = if entry != 0 {
        (u32::from(entry & 0xFF), usize::from(entry >> 8))
    } else {
        let symbol;
        (bits, symbol) = bits.symbol_long(ac)?;
        (u32::from(symbol & 15), advance(symbol))
    };
    bits.consume(length);
    if k + advance > 64 {
        return Err(());
    }
    bits.refill();
    Ok((bits, k + advance, advance == 0))
}

/// The positions an AC symbol moves: its run of zeros and the coefficient after them, 16 for a
/// run of sixteen zeros, 0 for the end of the block (and for the other zero-size symbols, which a
/// baseline table should not have).
fn advance(symbol: u8) -> usize {
    match (symbol >> 4, symbol & 15) {
        (15, 0) => 16,
        (_, 0) => 0,
        (run, _) => usize::from(run) + 1,
    }
}

/// Which coded positions a reduced size needs, and where each goes.
pub(super) struct Plan {
    /// The last position in coding order that the reduced size uses.
    last_needed: usize,
    /// For each position in coding order, its index in the `n × n` block, if used.
    slot: [Option<u8>; 64],
}

impl Plan {
    pub(super) fn new(n: usize) -> Plan {
        let mut slot = [None; 64];
        let mut last_needed = 0;
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            let (row, col) = (usize::from(natural) / 8, usize::from(natural) % 8);
            if row < n && col < n {
                slot[k] = Some((row * n + col) as u8);
                last_needed = k;
            }
        }
        Plan { last_needed, slot }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn the_reader_returns_the_stream_s_bits_whatever_the_mix_of_refills_and_reads() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
        for case in 0..200 {
            // Bytes with 0xFF (stuffed in the data as 0xFF 0x00) often or as rarely as in
            // photos, then a marker.
            let one_in = [3, 6, 40, 200][case % 4];
            let payload: Vec<u8> = (0..rng.random_range(0..600))
                .map(|_| match rng.random_range(0..one_in) {
                    0 => 0xFF,
                    _ => rng.random(),
                })
                .collect();
            let mut data = Vec::new();
            for &b in &payload {
                data.push(b);
                if b == 0xFF {
                    data.push(0x00);
                }
            }
            data.extend([0xFF, 0xD9]);
            // The stream's bits, most significant first, then the zeros read past the marker.
            let bit = |i: usize| payload.get(i / 8).map_or(0, |b| (b >> (7 - i % 8)) & 1);
            let mut bits = Bits::new(&data);
            let mut at = 0;
            while at < payload.len() * 8 + 64 {
                // Either refill, then as many bits as the block loop may read after it: all
                // 32 a plain one leaves, or of an eager one's 40 all but the next lookup's.
                let most = if rng.random() {
                    bits.refill();
                    32
                } else {
                    bits.refill_eagerly();
                    40 - PAIR_BITS as usize
                };
                // Sometimes none: the block loop refills twice in a row at times.
                let n = rng.random_range(0..=most);
                let got = bits.acc.checked_shr(64 - n as u32).unwrap_or(0) as u32;
                bits.consume(n as u32);
                let want = (0..n).fold(0u32, |v, i| v << 1 | u32::from(bit(at + i)));
                assert_eq!(got, want, "case {case}: {n} bits from bit {at}");
                at += n;
                assert_eq!(
                    bits.overran(),
                    at > payload.len() * 8,
                    "case {case}: at bit {at} of {}",
                    payload.len() * 8
                );
            }
        }
    }
}
