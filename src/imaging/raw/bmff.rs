//! ISO-BMFF boxes, as Canon's CR3 keeps its previews and metadata in them.

use image::metadata::Orientation;

use super::tiff::{Tiff, tag};

/// ISO-BMFF boxes: the `(type, payload)` of each box in `bytes`, in order. A box that claims to
/// run past the end of `bytes` (a file cut off while copying) is given with what there is of it,
/// and ends the list: what lies inside it before the cut can still be read.
pub(super) fn boxes(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = bytes.get(pos..pos.checked_add(8)?)?;
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let (size, skip) = match size32 {
            // To the end of the file.
            0 => (bytes.len() - pos, 8),
            1 => {
                let large: [u8; 8] = bytes.get(pos + 8..pos + 16)?.try_into().ok()?;
                (
                    usize::try_from(u64::from_be_bytes(large)).unwrap_or(usize::MAX),
                    16,
                )
            }
            n => (n as usize, 8),
        };
        if size < skip {
            pos = bytes.len();
            return None;
        }
        let start = pos + skip;
        let end = pos.saturating_add(size).min(bytes.len());
        pos = if end < pos.saturating_add(size) {
            bytes.len()
        } else {
            end
        };
        Some((kind, bytes.get(start..end).unwrap_or_default()))
    })
}

/// Whether the top-level boxes of `bytes` claim more than the file holds.
pub(super) fn runs_past_end(bytes: &[u8]) -> bool {
    let mut pos = 0usize;
    while let Some(header) = bytes.get(pos..pos.saturating_add(8)) {
        let size = match u32::from_be_bytes([header[0], header[1], header[2], header[3]]) {
            0 => return false,
            1 => match bytes.get(pos + 8..pos + 16) {
                Some(b) => u64::from_be_bytes(b.try_into().unwrap_or_default()),
                None => return true,
            },
            n => u64::from(n),
        };
        if size < 8 {
            return false;
        }
        pos = match usize::try_from(size).ok().and_then(|s| pos.checked_add(s)) {
            Some(end) if end <= bytes.len() => end,
            _ => return true,
        };
    }
    pos < bytes.len()
}

/// Canon's metadata box in a CR3's `moov` (CMT1…CMT4, THMB).
const CANON_UUID: [u8; 16] = [
    0x85, 0xc0, 0xb6, 0x87, 0x82, 0x0f, 0x11, 0xe0, 0x81, 0x11, 0xf4, 0xce, 0x46, 0x2b, 0x6a, 0x48,
];
/// The top-level box holding a CR3's `PRVW` preview.
const PREVIEW_UUID: [u8; 16] = [
    0xea, 0xf4, 0x2b, 0x5e, 0x1c, 0x98, 0x4b, 0x88, 0xb9, 0xfb, 0xb7, 0xdc, 0x40, 0x6e, 0x4d, 0x16,
];

/// The JPEG inside a `PRVW` or `THMB` box: after a short header of sizes, up to the box's end.
pub(super) fn jpeg_in(payload: &[u8]) -> Option<&[u8]> {
    let start = payload
        .windows(3)
        .take(32)
        .position(|w| w == [0xFF, 0xD8, 0xFF])?;
    Some(&payload[start..])
}

/// A CR3's embedded JPEGs and its orientation (from `CMT1`, which is a TIFF IFD0).
pub(super) fn cr3(bytes: &[u8]) -> Result<(Vec<&[u8]>, Option<Orientation>), String> {
    let mut jpegs = Vec::new();
    let mut orientation = None;
    let mut moov = None;
    for (kind, payload) in boxes(bytes) {
        match &kind {
            b"moov" => moov = Some(payload),
            b"uuid" if payload.get(..16) == Some(&PREVIEW_UUID) => {
                // 8 bytes of Canon's, then the PRVW box.
                let inner = payload.get(24..).unwrap_or_default();
                for (kind, inner) in boxes(inner) {
                    if &kind == b"PRVW" {
                        jpegs.extend(jpeg_in(inner));
                    }
                }
            }
            _ => {}
        }
    }
    let moov = moov.ok_or("it has no `moov` box (its metadata)")?;
    for (kind, payload) in boxes(moov) {
        match &kind {
            b"uuid" if payload.get(..16) == Some(&CANON_UUID) => {
                for (kind, inner) in boxes(&payload[16..]) {
                    match &kind {
                        b"CMT1" => {
                            orientation = Tiff::new(inner)
                                .and_then(|t| {
                                    let ifd = t.ifd(t.first_ifd()).ok()?;
                                    ifd.value(&t, tag::ORIENTATION)
                                })
                                .and_then(|v| u8::try_from(v).ok())
                                .and_then(Orientation::from_exif);
                        }
                        b"THMB" => jpegs.extend(jpeg_in(inner)),
                        _ => {}
                    }
                }
            }
            b"trak" => jpegs.extend(first_sample(bytes, payload)),
            _ => {}
        }
    }
    Ok((jpegs, orientation))
}

/// The first sample of a track, where it is a JPEG (a CR3's first track holds the full-size
/// JPEG): its offset from `stco`/`co64`, its size from `stsz`.
pub(super) fn first_sample<'a>(file: &'a [u8], trak: &[u8]) -> Option<&'a [u8]> {
    pub(super) fn child<'b>(parent: &'b [u8], want: &[u8; 4]) -> Option<&'b [u8]> {
        boxes(parent)
            .find(|(kind, _)| kind == want)
            .map(|(_, payload)| payload)
    }
    let mdia = child(trak, b"mdia")?;
    let minf = child(mdia, b"minf")?;
    let stbl = child(minf, b"stbl")?;
    let be32 = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    // Full boxes: version and flags, then their fields.
    let offset = if let Some(stco) = child(stbl, b"stco") {
        u64::from(be32(stco, 8)?)
    } else {
        let co64 = child(stbl, b"co64")?;
        u64::from_be_bytes(co64.get(8..16)?.try_into().ok()?)
    };
    let stsz = child(stbl, b"stsz")?;
    let size = match be32(stsz, 4)? {
        0 => be32(stsz, 12)?,
        fixed => fixed,
    };
    let start = usize::try_from(offset).ok()?;
    file.get(start..start.checked_add(size as usize)?)
        .filter(|s| s.starts_with(&[0xFF, 0xD8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_claiming_more_than_the_file_gives_what_there_is_and_ends_the_list() {
        let bytes = [
            0, 0, 0, 0x40, b'm', b'o', b'o', b'v', 1, 2, 0, 0, 0, 8, b'f', b'r',
        ];
        let found: Vec<_> = boxes(&bytes).collect();
        assert_eq!(found, vec![(*b"moov", &bytes[8..])]);
        let huge = [
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
        ];
        assert_eq!(boxes(&huge).count(), 1);
        // A size smaller than its own header ends the list at once.
        assert_eq!(boxes(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']).count(), 0);
    }
}
