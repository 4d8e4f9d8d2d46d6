//! Reduced-size decoding of baseline JPEGs, reading from the entropy-coded data only the DCT
//! coefficients the reduced size uses.
//!
//! At 1/4 scale an 8×8 block becomes 2×2 pixels, computed from its 4 lowest-frequency
//! coefficients; at 1/8 from its DC alone. A general decoder still turns every one of the 64
//! coefficients into a value (most of its time on a 12 MP photo). This one decodes the values it
//! needs and skips each of the others with one table lookup that gives the code's length and its
//! value's length together.
//!
//! Everything after the coefficients (the reduced IDCT, chroma upsampling and colour conversion)
//! follows jpeg-decoder's fixed-point arithmetic step for step, so the pixels are exactly those of
//! its scaled decode (a test holds the two side by side). What this decoder does not handle —
//! progressive and arithmetic-coded files, 12-bit samples, scans that carry one component each,
//! CMYK and RGB-coded JPEGs, unusual sampling — it declines, and so does any file it finds
//! damaged: the caller then decodes with jpeg-decoder, whose verdict and messages stand.

use crate::imaging::decode::MAX_PIXELS;

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

/// A reduced-size decode: `width × height` pixels, RGB (three components) or grey (one).
pub struct Reduced {
    pub width: u32,
    pub height: u32,
    pub components: usize,
    pub data: Vec<u8>,
    /// The EXIF block (from its TIFF header on), if the file has one.
    pub exif: Option<Vec<u8>>,
}

/// Why a file was left to jpeg-decoder.
type Declined = ();

/// Decodes `bytes` with each 8×8 block reduced to `idct_size`² pixels (`idct_size` 1, 2 or 4),
/// or declines (`None`) a file this decoder does not handle or finds damaged.
pub fn decode(bytes: &[u8], idct_size: usize) -> Option<Reduced> {
    if !matches!(idct_size, 1 | 2 | 4) {
        return None;
    }
    decode_inner(bytes, idct_size).ok()
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
    dc_table: usize,
    ac_table: usize,
}

struct Frame {
    width: usize,
    height: usize,
    components: Vec<Component>,
}

fn be16(bytes: &[u8], at: usize) -> Result<usize, Declined> {
    let b = bytes.get(at..at + 2).ok_or(())?;
    Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

fn decode_inner(bytes: &[u8], idct_size: usize) -> Result<Reduced, Declined> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(());
    }
    let mut quant = [[0u16; 64]; 4];
    let mut dc_tables: [Option<Box<Huffman>>; 4] = Default::default();
    let mut ac_tables: [Option<Box<Huffman>>; 4] = Default::default();
    let mut frame: Option<Frame> = None;
    let mut restart_interval = 0usize;
    let (mut jfif, mut adobe_transform) = (false, None);
    let mut exif = None;
    let mut pos = 2;
    loop {
        // A marker, after any number of fill bytes (and, as libjpeg allows, stray bytes).
        while bytes.get(pos).ok_or(())? != &0xFF {
            pos += 1;
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos).ok_or(())?;
        pos += 1;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            continue;
        }
        if marker == 0xD9 {
            return Err(()); // the end of the image before any scan
        }
        let len = be16(bytes, pos)?;
        let segment = bytes.get(pos + 2..pos + len).ok_or(())?;
        if len < 2 {
            return Err(());
        }
        pos += len;
        match marker {
            // Baseline and extended sequential, Huffman-coded.
            0xC0 | 0xC1 => {
                if frame.is_some() || segment.len() < 6 || segment[0] != 8 {
                    return Err(());
                }
                let height = be16(segment, 1)?;
                let width = be16(segment, 3)?;
                let count = usize::from(segment[5]);
                if width == 0 || height == 0 || !matches!(count, 1 | 3) {
                    return Err(());
                }
                let mut components = Vec::with_capacity(count);
                for i in 0..count {
                    let c = segment.get(6 + 3 * i..9 + 3 * i).ok_or(())?;
                    let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
                        return Err(());
                    }
                    components.push(Component {
                        id: c[0],
                        h,
                        v,
                        quant: usize::from(c[2]),
                        dc_table: 0,
                        ac_table: 0,
                    });
                }
                if count == 1 && (components[0].h != 1 || components[0].v != 1) {
                    return Err(());
                }
                let (hmax, vmax) = max_sampling(&components);
                // Full-resolution chroma, half across (4:2:2) or half both ways (4:2:0); the
                // rarer forms (4:4:0, 4:1:1) go to jpeg-decoder.
                if components.iter().any(|c| {
                    !matches!(
                        (hmax / c.h, vmax / c.v, hmax % c.h + vmax % c.v),
                        (1, 1, 0) | (2, 1, 0) | (2, 2, 0)
                    )
                }) {
                    return Err(());
                }
                // Images of a block or so across, and decompression bombs, are not worth it.
                let out = |len: usize| (len * idct_size).div_ceil(8);
                if out(width) < 2
                    || out(height) < 2
                    || (width as u64) * (height as u64) > MAX_PIXELS
                {
                    return Err(());
                }
                frame = Some(Frame {
                    width,
                    height,
                    components,
                });
            }
            // Progressive, lossless, hierarchical, arithmetic-coded: left to jpeg-decoder.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Err(()),
            0xC4 => {
                let mut at = 0;
                while at < segment.len() {
                    let class_id = segment[at];
                    let counts = segment.get(at + 1..at + 17).ok_or(())?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = segment.get(at + 17..at + 17 + total).ok_or(())?;
                    let (class, id) = (class_id >> 4, usize::from(class_id & 15));
                    if class > 1 || id > 3 {
                        return Err(());
                    }
                    let table = Some(Box::new(Huffman::new(counts, symbols)?));
                    if class == 0 {
                        dc_tables[id] = table;
                    } else {
                        ac_tables[id] = table;
                    }
                    at += 17 + total;
                }
            }
            0xDB => {
                let mut at = 0;
                while at < segment.len() {
                    let (precision, id) = (segment[at] >> 4, usize::from(segment[at] & 15));
                    if id > 3 || precision > 1 {
                        return Err(());
                    }
                    let table = &mut quant[id];
                    if precision == 0 {
                        let values = segment.get(at + 1..at + 65).ok_or(())?;
                        for (q, v) in table.iter_mut().zip(values) {
                            *q = u16::from(*v);
                        }
                        at += 65;
                    } else {
                        let values = segment.get(at + 1..at + 129).ok_or(())?;
                        for (q, v) in table.iter_mut().zip(values.chunks_exact(2)) {
                            *q = u16::from_be_bytes([v[0], v[1]]);
                        }
                        at += 129;
                    }
                }
            }
            0xDD => restart_interval = be16(segment, 0)?,
            0xE0 => jfif |= segment.starts_with(b"JFIF\0"),
            0xE1 if exif.is_none() && segment.starts_with(b"Exif\0\0") => {
                exif = Some(segment[6..].to_vec());
            }
            0xEE if segment.starts_with(b"Adobe") => {
                adobe_transform = segment.get(11).copied();
            }
            0xDA => {
                let mut frame = frame.ok_or(())?;
                let count = usize::from(*segment.first().ok_or(())?);
                if count != frame.components.len() || segment.len() < 1 + 2 * count + 3 {
                    return Err(()); // a scan per component (or a bad header)
                }
                for i in 0..count {
                    let (id, tables) = (segment[1 + 2 * i], segment[2 + 2 * i]);
                    // Scan components come in frame order in every file this decoder takes.
                    let c = &mut frame.components[i];
                    if c.id != id || tables >> 4 > 3 || tables & 15 > 3 {
                        return Err(());
                    }
                    c.dc_table = usize::from(tables >> 4);
                    c.ac_table = usize::from(tables & 15);
                }
                let spectral = &segment[1 + 2 * count..];
                if spectral != [0, 63, 0] {
                    return Err(());
                }
                if !is_ycbcr_or_grey(&frame, jfif, adobe_transform) {
                    return Err(());
                }
                let tables = Tables {
                    quant: &quant,
                    dc: &dc_tables,
                    ac: &ac_tables,
                };
                let planes =
                    decode_scan(&bytes[pos..], &frame, &tables, restart_interval, idct_size)?;
                let (width, height, data) = assemble(&frame, planes, idct_size);
                return Ok(Reduced {
                    width: width as u32,
                    height: height as u32,
                    components: frame.components.len(),
                    data,
                    exif,
                });
            }
            _ => {}
        }
    }
}

/// Whether jpeg-decoder would read this frame's colours as YCbCr (three components) or grey.
fn is_ycbcr_or_grey(frame: &Frame, jfif: bool, adobe_transform: Option<u8>) -> bool {
    if frame.components.len() == 1 {
        return true;
    }
    let ids: Vec<u8> = frame.components.iter().map(|c| c.id).collect();
    match ids.as_slice() {
        [1, 2, 3] => true,
        [1, 34, 35] | [82, 71, 66] | [114, 103, 98] => false,
        _ => jfif || adobe_transform.is_none_or(|t| t == 1),
    }
}

fn max_sampling(components: &[Component]) -> (usize, usize) {
    let h = components.iter().map(|c| c.h).max().unwrap_or(1);
    let v = components.iter().map(|c| c.v).max().unwrap_or(1);
    (h, v)
}

struct Tables<'a> {
    quant: &'a [[u16; 64]; 4],
    dc: &'a [Option<Box<Huffman>>; 4],
    ac: &'a [Option<Box<Huffman>>; 4],
}

/// One Huffman table, with a lookup of the first [`FAST_BITS`] bits for the common short codes.
struct Huffman {
    /// `length << 8 | symbol` for the codes of at most `FAST_BITS` bits; 0 elsewhere.
    fast: [u16; 1 << FAST_BITS],
    /// For skipping an AC coefficient: `advance << 8 | (code length + value length)`, where
    /// `advance` is the positions it moves (`run + 1`, 16 for a run of sixteen zeros, 0 for the
    /// end of the block).
    skip: [u16; 1 << FAST_BITS],
    /// For skipping AC coefficients two at a time, indexed by the next [`PAIR_BITS`] bits: the
    /// bits to drop (low 5 bits), the positions to move (next 7), whether the block ends there
    /// (`END`) and whether two coefficients are skipped (`PAIR`); 0 where the first code is too
    /// long. A single entry is `skip`'s.
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
    fn new(counts: &[u8], symbols: &[u8]) -> Result<Huffman, Declined> {
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
                    let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                    let advance = match (run, size) {
                        (0, 0) => 0,
                        (15, 0) => 16,
                        (_, 0) => 0, // not valid in a baseline AC table; read as an end of block
                        _ => run + 1,
                    };
                    let skip = (advance << 8 | (length + size)) as u16;
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
            return 0;
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

/// The entropy-coded data, read most significant bit first, with stuffed zero bytes removed.
///
/// `Copy`, and the rare paths take and return it by value, so that the block loop can keep it
/// in registers.
#[derive(Clone, Copy)]
struct Bits<'a> {
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
    fn new(data: &'a [u8]) -> Bits<'a> {
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
    fn overran(&self) -> bool {
        self.padding > self.count
    }

    /// Makes at least 32 bits available.
    #[inline(always)]
    fn refill(&mut self) {
        if self.count >= 32 {
            return;
        }
        // Eight bytes at once where none of them is 0xFF (no stuffing, no marker). Bits past
        // `count` are the stream's next bits too, so a later refill that ORs them in again
        // changes nothing.
        if !self.at_marker
            && let Some(chunk) = self.data.get(self.pos..self.pos + 8)
        {
            let word = u64::from_be_bytes(chunk.try_into().unwrap_or([0xFF; 8]));
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                self.acc |= word >> self.count;
                let taken = (63 - self.count) >> 3;
                self.pos += taken as usize;
                self.count += taken * 8;
                return;
            }
        }
        *self = self.refill_bytewise();
    }

    #[cold]
    #[inline(never)]
    fn refill_bytewise(mut self) -> Self {
        while self.count <= 56 {
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
    fn restart(&mut self, expected: u8) -> Result<(), Declined> {
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
fn decode_block(
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
    while k <= plan.last_needed {
        bits.refill();
        let entry = ac.values[bits.peek()];
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
            (run, bits.value(size))
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
    // coefficients where their codes and values fit in `PAIR_BITS` bits.
    while k < 64 {
        bits.refill();
        let pair = ac.pairs[(bits.acc >> (64 - PAIR_BITS)) as usize];
        if pair != 0 {
            let after = k + usize::from((pair >> 5) & 0x7F);
            // A pair is taken only when both codes belong to this block: the first must not
            // reach its end (then the second would be the next block's DC).
            let fits = pair & PAIR == 0
                || if pair & END != 0 {
                    after < 64
                } else {
                    after <= 64
                };
            if fits {
                bits.consume(u32::from(pair & 31));
                if pair & END != 0 {
                    break;
                }
                k = after;
                if k > 64 {
                    return Err(());
                }
                continue;
            }
        }
        let entry = ac.skip[bits.peek()];
        let (length, advance) = if entry != 0 {
            (u32::from(entry & 0xFF), usize::from(entry >> 8))
        } else {
            let symbol;
            (bits, symbol) = bits.symbol_long(ac)?;
            let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
            let advance = match (run, size) {
                (15, 0) => 16,
                (_, 0) => 0,
                _ => run + 1,
            };
            (size, advance)
        };
        bits.consume(length);
        if advance == 0 {
            break;
        }
        k += advance;
        if k > 64 {
            return Err(());
        }
    }
    *state = bits;
    Ok(())
}

/// Which coded positions a reduced size needs, and where each goes.
struct Plan {
    /// The last position in coding order that the reduced size uses.
    last_needed: usize,
    /// For each position in coding order, its index in the `n × n` block, if used.
    slot: [Option<u8>; 64],
}

impl Plan {
    fn new(n: usize) -> Plan {
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

/// A component's reduced-size samples, `stride` wide.
struct Plane {
    data: Vec<u8>,
    stride: usize,
    /// The samples that cover the image (jpeg-decoder's component size).
    width: usize,
    height: usize,
}

fn decode_scan(
    data: &[u8],
    frame: &Frame,
    tables: &Tables,
    restart_interval: usize,
    n: usize,
) -> Result<Vec<Plane>, Declined> {
    let plan = Plan::new(n);
    let (hmax, vmax) = max_sampling(&frame.components);
    let single = frame.components.len() == 1;
    let (mcus_x, mcus_y) = if single {
        (frame.width.div_ceil(8), frame.height.div_ceil(8))
    } else {
        (
            frame.width.div_ceil(8 * hmax),
            frame.height.div_ceil(8 * vmax),
        )
    };
    let mut planes = Vec::with_capacity(frame.components.len());
    let mut huffman = Vec::with_capacity(frame.components.len());
    for c in &frame.components {
        let stride = mcus_x * c.h * n;
        let rows = mcus_y * c.v * n;
        planes.push(Plane {
            data: vec![0; stride * rows],
            stride,
            width: (frame.width * c.h * n).div_ceil(hmax * 8),
            height: (frame.height * c.v * n).div_ceil(vmax * 8),
        });
        let dc = tables.dc[c.dc_table].as_deref().ok_or(())?;
        let ac = tables.ac[c.ac_table].as_deref().ok_or(())?;
        huffman.push((dc, ac, &tables.quant[c.quant]));
    }
    let mut bits = Bits::new(data);
    let mut predictors = vec![0i16; frame.components.len()];
    let mut coefficients = [0i32; 16];
    let mut until_restart = restart_interval;
    let mut next_restart = 0u8;
    for mcu_y in 0..mcus_y {
        if bits.overran() {
            return Err(()); // damaged: no use decoding the rest
        }
        for mcu_x in 0..mcus_x {
            if restart_interval > 0 {
                if until_restart == 0 {
                    bits.restart(next_restart)?;
                    next_restart = (next_restart + 1) & 7;
                    until_restart = restart_interval;
                    predictors.iter_mut().for_each(|p| *p = 0);
                }
                until_restart -= 1;
            }
            for (index, c) in frame.components.iter().enumerate() {
                let (dc, ac, quant) = huffman[index];
                let plane = &mut planes[index];
                for by in 0..c.v {
                    for bx in 0..c.h {
                        decode_block(
                            &mut bits,
                            dc,
                            ac,
                            quant,
                            &mut predictors[index],
                            &plan,
                            &mut coefficients,
                        )?;
                        let x = (mcu_x * c.h + bx) * n;
                        let y = (mcu_y * c.v + by) * n;
                        let at = y * plane.stride + x;
                        idct(&coefficients, n, &mut plane.data[at..], plane.stride);
                    }
                }
            }
        }
    }
    if bits.overran() {
        return Err(());
    }
    Ok(planes)
}

fn clamp(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

/// jpeg-decoder's reduced inverse DCTs (from stb_image), on dequantised coefficients.
fn idct(c: &[i32; 16], n: usize, out: &mut [u8], stride: usize) {
    match n {
        1 => out[0] = clamp(c[0].wrapping_add(128 * 8) / 8),
        2 => {
            const SCALE_BITS: u32 = 3;
            let (s00, s01, s10, s11) = (c[0], c[1], c[2], c[3]);
            let round = (1 << (SCALE_BITS - 1)) + (128 << SCALE_BITS);
            let x0 = s00.wrapping_add(s10).wrapping_add(round);
            let x2 = s00.wrapping_sub(s10).wrapping_add(round);
            let x1 = s01.wrapping_add(s11);
            let x3 = s01.wrapping_sub(s11);
            out[0] = clamp(x0.wrapping_add(x1) >> SCALE_BITS);
            out[1] = clamp(x0.wrapping_sub(x1) >> SCALE_BITS);
            out[stride] = clamp(x2.wrapping_add(x3) >> SCALE_BITS);
            out[stride + 1] = clamp(x2.wrapping_sub(x3) >> SCALE_BITS);
        }
        _ => idct4(c, out, stride),
    }
}

fn f2f(x: f32) -> i32 {
    (x * 4096.0 + 0.5) as i32
}

fn idct4(c: &[i32; 16], out: &mut [u8], stride: usize) {
    const CONST_BITS: u32 = 12;
    const PASS1_BITS: u32 = 2;
    const FINAL_BITS: u32 = CONST_BITS + PASS1_BITS + 3;
    let mut temp = [0i32; 16];
    for i in 0..4 {
        let (s0, s1, s2, s3) = (c[i], c[4 + i], c[8 + i], c[12 + i]);
        let x0 = s0.wrapping_add(s2) << PASS1_BITS;
        let x2 = s0.wrapping_sub(s2) << PASS1_BITS;
        let p1 = s1.wrapping_add(s3).wrapping_mul(f2f(0.541_196_1));
        let t0 = p1
            .wrapping_add(s3.wrapping_mul(f2f(-1.847_759_1)))
            .wrapping_add(512)
            >> (CONST_BITS - PASS1_BITS);
        let t2 = p1
            .wrapping_add(s1.wrapping_mul(f2f(0.765_366_87)))
            .wrapping_add(512)
            >> (CONST_BITS - PASS1_BITS);
        temp[i] = x0.wrapping_add(t2);
        temp[12 + i] = x0.wrapping_sub(t2);
        temp[4 + i] = x2.wrapping_add(t0);
        temp[8 + i] = x2.wrapping_sub(t0);
    }
    for i in 0..4 {
        let (s0, s1, s2, s3) = (
            temp[i * 4],
            temp[i * 4 + 1],
            temp[i * 4 + 2],
            temp[i * 4 + 3],
        );
        let x0 = s0.wrapping_add(s2) << CONST_BITS;
        let x2 = s0.wrapping_sub(s2) << CONST_BITS;
        let p1 = s1.wrapping_add(s3).wrapping_mul(f2f(0.541_196_1));
        let t0 = p1.wrapping_add(s3.wrapping_mul(f2f(-1.847_759_1)));
        let t2 = p1.wrapping_add(s1.wrapping_mul(f2f(0.765_366_87)));
        let round = (1 << (FINAL_BITS - 1)) + (128 << FINAL_BITS);
        let x0 = x0.wrapping_add(round);
        let x2 = x2.wrapping_add(round);
        let row = &mut out[i * stride..i * stride + 4];
        row[0] = clamp(x0.wrapping_add(t2) >> FINAL_BITS);
        row[3] = clamp(x0.wrapping_sub(t2) >> FINAL_BITS);
        row[1] = clamp(x2.wrapping_add(t0) >> FINAL_BITS);
        row[2] = clamp(x2.wrapping_sub(t0) >> FINAL_BITS);
    }
}

/// The output image: the planes upsampled to full resolution and converted to RGB, row by row,
/// as jpeg-decoder does.
fn assemble(frame: &Frame, planes: Vec<Plane>, n: usize) -> (usize, usize, Vec<u8>) {
    let width = (frame.width * n).div_ceil(8);
    let height = (frame.height * n).div_ceil(8);
    if planes.len() == 1 {
        let plane = &planes[0];
        let mut out = Vec::with_capacity(width * height);
        for y in 0..height {
            out.extend_from_slice(&plane.data[y * plane.stride..][..width]);
        }
        return (width, height, out);
    }
    let (hmax, vmax) = max_sampling(&frame.components);
    let line = planes.iter().map(|p| p.width).max().unwrap_or(0) * hmax + 2;
    let mut lines = vec![vec![0u8; line.max(width)]; 3];
    let mut out = vec![0u8; width * height * 3];
    for (y, row) in out.chunks_exact_mut(width * 3).enumerate() {
        for ((c, plane), buffer) in frame.components.iter().zip(&planes).zip(&mut lines) {
            upsample_row(plane, (c.h, c.v), (hmax, vmax), width, y, buffer);
        }
        let (ys, cbs, crs) = (&lines[0][..width], &lines[1][..width], &lines[2][..width]);
        for (((pixel, &y), &cb), &cr) in row.chunks_exact_mut(3).zip(ys).zip(cbs).zip(crs) {
            let (r, g, b) = ycbcr_to_rgb(y, cb, cr);
            pixel.copy_from_slice(&[r, g, b]);
        }
    }
    (width, height, out)
}

/// jpeg-decoder's upsampling of one output row of a component: a copy, or its "fancy" triangle
/// filter for 2× across or 2× both ways (the forms `decode_inner` accepts).
fn upsample_row(
    plane: &Plane,
    (h, v): (usize, usize),
    (hmax, vmax): (usize, usize),
    out_width: usize,
    row: usize,
    out: &mut [u8],
) {
    let (h1, v1) = (h == hmax, v == vmax);
    let (input, width, height) = (&plane.data, plane.width, plane.height);
    let stride = plane.stride;
    // Triangle filter rows: the near one and the one on the other side of the sample.
    let near = row / 2;
    let far = if row.is_multiple_of(2) {
        near.saturating_sub(1)
    } else {
        (near + 1).min(height.saturating_sub(1))
    };
    if h1 && v1 {
        out[..out_width].copy_from_slice(&input[row * stride..][..out_width]);
    } else if hmax == 2 * h && v1 {
        let input = &input[row * stride..];
        if width == 1 {
            out[0] = input[0];
            out[1] = input[0];
            return;
        }
        out[0] = input[0];
        out[1] = ((u32::from(input[0]) * 3 + u32::from(input[1]) + 2) >> 2) as u8;
        for i in 1..width - 1 {
            let sample = 3 * u32::from(input[i]) + 2;
            out[i * 2] = ((sample + u32::from(input[i - 1])) >> 2) as u8;
            out[i * 2 + 1] = ((sample + u32::from(input[i + 1])) >> 2) as u8;
        }
        out[(width - 1) * 2] =
            ((u32::from(input[width - 1]) * 3 + u32::from(input[width - 2]) + 2) >> 2) as u8;
        out[(width - 1) * 2 + 1] = input[width - 1];
    } else {
        // 2× in both directions, the only other form the frame check lets through.
        let (near, far) = (&input[near * stride..], &input[far * stride..]);
        if width == 1 {
            let value = ((3 * u32::from(near[0]) + u32::from(far[0]) + 2) >> 2) as u8;
            out[0] = value;
            out[1] = value;
            return;
        }
        let mut t1 = 3 * u32::from(near[0]) + u32::from(far[0]);
        out[0] = ((t1 + 2) >> 2) as u8;
        for i in 1..width {
            let t0 = t1;
            t1 = 3 * u32::from(near[i]) + u32::from(far[i]);
            out[i * 2 - 1] = ((3 * t0 + t1 + 8) >> 4) as u8;
            out[i * 2] = ((3 * t1 + t0 + 8) >> 4) as u8;
        }
        out[width * 2 - 1] = ((t1 + 2) >> 2) as u8;
    }
}

/// jpeg-decoder's fixed-point YCbCr to RGB.
#[inline(always)]
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    const SHIFT: i32 = 20;
    fn f(x: f32) -> i32 {
        (x * (1 << SHIFT) as f32 + 0.5) as i32
    }
    let y = i32::from(y) * (1 << SHIFT) + (1 << (SHIFT - 1));
    let cb = i32::from(cb) - 128;
    let cr = i32::from(cr) - 128;
    let fix = |v: i32| (v >> SHIFT).clamp(0, 255) as u8;
    (
        fix(y + f(1.402) * cr),
        fix(y - f(0.34414) * cb - f(0.71414) * cr),
        fix(y + f(1.772) * cb),
    )
}
