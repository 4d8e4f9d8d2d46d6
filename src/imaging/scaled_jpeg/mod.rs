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

mod entropy;
mod pixels;

use entropy::{Bits, Huffman, Plan, decode_block};
use pixels::{assemble, idct};

/// A reduced-size decode: `width × height` pixels, RGB (three components) or grey (one).
pub struct Reduced {
    pub width: u32,
    pub height: u32,
    pub components: usize,
    pub data: Vec<u8>,
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
