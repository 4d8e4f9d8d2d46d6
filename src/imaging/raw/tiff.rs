//! The TIFF structure most RAW formats share: directories, their entries, and the previews
//! they point at, read with every offset checked against the file.

/// TIFF tags cliptag reads.
pub(super) mod tag {
    pub const COMPRESSION: u16 = 0x0103;
    pub const PHOTOMETRIC: u16 = 0x0106;
    pub const MAKE: u16 = 0x010F;
    pub const STRIP_OFFSETS: u16 = 0x0111;
    pub const ORIENTATION: u16 = 0x0112;
    pub const STRIP_BYTE_COUNTS: u16 = 0x0117;
    pub const SUB_IFDS: u16 = 0x014A;
    pub const JPEG_OFFSET: u16 = 0x0201;
    pub const JPEG_LENGTH: u16 = 0x0202;
    /// Panasonic's full-size preview in an RW2's IFD0, stored as the tag's own bytes.
    pub const PANASONIC_JPG_FROM_RAW: u16 = 0x002E;
    pub const DNG_VERSION: u16 = 0xC612;
    pub const EXIF_IFD: u16 = 0x8769;
    pub const MAKER_NOTE: u16 = 0x927C;
    /// In an Olympus maker note: the `CameraSettings` directory, and in it the preview.
    pub const OLYMPUS_CAMERA_SETTINGS: u16 = 0x2020;
    pub const OLYMPUS_PREVIEW_START: u16 = 0x0101;
    pub const OLYMPUS_PREVIEW_LENGTH: u16 = 0x0102;
}

pub(super) const PHOTOMETRIC_CFA: u32 = 32803;
pub(super) const PHOTOMETRIC_LINEAR_RAW: u32 = 34892;
/// The most directories read from one file, and the most entries read from one directory: far
/// above any camera's, and a bound on the work a damaged file can ask for.
pub(super) const MAX_IFDS: usize = 64;
pub(super) const MAX_ENTRIES: usize = 1024;

/// A TIFF structure: the file's bytes and their byte order.
pub(super) struct Tiff<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    /// Where the entry's 4-byte value field lies in the file.
    field: usize,
}

pub(super) struct Ifd {
    entries: Vec<Entry>,
    next: u32,
}

impl<'a> Tiff<'a> {
    /// A TIFF-structured file: classic TIFF, and the variants of ORF (`IIRO`, `IIRS`, `MMOR`) and
    /// RW2 (`IIU`) that change only the magic number.
    pub(super) fn new(bytes: &'a [u8]) -> Option<Self> {
        let big_endian = match bytes.get(..2)? {
            b"II" => false,
            b"MM" => true,
            _ => return None,
        };
        let tiff = Tiff { bytes, big_endian };
        match tiff.u16(2)? {
            42 | 0x4F52 | 0x5352 | 0x55 => Some(tiff),
            _ => None,
        }
    }

    pub(super) fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    pub(super) fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub(super) fn first_ifd(&self) -> u32 {
        self.u32(4).unwrap_or(0)
    }

    /// The directory at `offset`.
    pub(super) fn ifd(&self, offset: u32) -> Result<Ifd, String> {
        let start = offset as usize;
        let count = self
            .u16(start)
            .ok_or("lies past the end of the file (truncated?)")?;
        let count = usize::from(count);
        if count == 0 || count > MAX_ENTRIES {
            return Err(format!("claims {count} entries"));
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = start + 2 + 12 * i;
            let (Some(tag), Some(kind), Some(n)) =
                (self.u16(at), self.u16(at + 2), self.u32(at + 4))
            else {
                return Err("ends past the end of the file (truncated?)".into());
            };
            entries.push(Entry {
                tag,
                kind,
                count: n,
                field: at + 8,
            });
        }
        let next = self.u32(start + 2 + 12 * count).unwrap_or(0);
        Ok(Ifd { entries, next })
    }

    /// Every directory that can hold a preview: the IFD chain from IFD0, and each one's SubIFDs
    /// (nested a few deep), each read once. A directory that cannot be read ends its branch; the
    /// flag says whether one lay past the end of the file.
    pub(super) fn ifds(&self) -> (Vec<Ifd>, bool) {
        let mut seen = std::collections::HashSet::new();
        let mut found = Vec::new();
        let mut cut = false;
        let mut queue = vec![(self.first_ifd(), 0u32)];
        while let Some((offset, depth)) = queue.pop() {
            if offset == 0 || depth > 3 || found.len() >= MAX_IFDS || !seen.insert(offset) {
                continue;
            }
            let Ok(ifd) = self.ifd(offset) else {
                cut |= offset as usize >= self.bytes.len();
                continue;
            };
            if let Some(sub) = ifd.get(tag::SUB_IFDS) {
                queue.extend(self.values(&sub).into_iter().map(|o| (o, depth + 1)));
            }
            // The chain stays at the same depth.
            queue.push((ifd.next, depth));
            found.push(ifd);
        }
        (found, cut)
    }

    /// Size in bytes of one value of TIFF type `kind`.
    pub(super) fn type_size(kind: u16) -> Option<usize> {
        match kind {
            1 | 2 | 6 | 7 => Some(1),
            3 | 8 => Some(2),
            4 | 9 | 11 | 13 => Some(4),
            5 | 10 | 12 => Some(8),
            _ => None,
        }
    }

    /// Where the values of `entry` lie: in its own field when they fit, else at the offset it
    /// holds.
    pub(super) fn data(&self, entry: &Entry) -> Option<&'a [u8]> {
        let len = Self::type_size(entry.kind)?.checked_mul(entry.count as usize)?;
        let start = if len <= 4 {
            entry.field
        } else {
            self.u32(entry.field)? as usize
        };
        self.bytes.get(start..start.checked_add(len)?)
    }

    /// The integer values of `entry` (BYTE, SHORT, LONG or IFD), at most [`MAX_IFDS`] of them.
    pub(super) fn values(&self, entry: &Entry) -> Vec<u32> {
        let Some(data) = self.data(entry) else {
            return Vec::new();
        };
        let size = Self::type_size(entry.kind).unwrap_or(1);
        let value = |chunk: &[u8]| -> Option<u32> {
            match entry.kind {
                1 | 7 => Some(u32::from(chunk[0])),
                3 => Some(u32::from(if self.big_endian {
                    u16::from_be_bytes([chunk[0], chunk[1]])
                } else {
                    u16::from_le_bytes([chunk[0], chunk[1]])
                })),
                4 | 13 => Some(if self.big_endian {
                    u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])
                } else {
                    u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])
                }),
                _ => None,
            }
        };
        data.chunks_exact(size)
            .take(MAX_IFDS)
            .filter_map(value)
            .collect()
    }

    pub(super) fn ascii(&self, entry: &Entry) -> Option<String> {
        let data = self.data(entry)?;
        let text = data.split(|&b| b == 0).next().unwrap_or_default();
        Some(String::from_utf8_lossy(text).into_owned())
    }
}

impl Ifd {
    pub(super) fn get(&self, tag: u16) -> Option<Entry> {
        self.entries.iter().find(|e| e.tag == tag).copied()
    }

    /// The first value of `tag`, where it is an integer.
    pub(super) fn value(&self, tiff: &Tiff, tag: u16) -> Option<u32> {
        tiff.values(&self.get(tag)?).first().copied()
    }

    /// The JPEGs this directory holds: a `JPEGInterchangeFormat` pair, a single JPEG-compressed
    /// strip (CR2's IFD0, DNG's previews), Panasonic's `JpgFromRaw`. Sensor data compressed as
    /// lossless JPEG is not a preview and is not listed.
    /// `cut` is set where a preview starts past the end of the file.
    pub(super) fn jpegs<'a>(&self, tiff: &Tiff<'a>, cut: &mut bool) -> Vec<&'a [u8]> {
        let mut slice = |offset: u32, length: u32| {
            if offset as usize >= tiff.bytes.len() && length > 0 {
                *cut = true;
            }
            jpeg_at(tiff.bytes, offset as usize, length as usize)
        };
        let mut found = Vec::new();
        if let (Some(offset), Some(length)) = (
            self.value(tiff, tag::JPEG_OFFSET),
            self.value(tiff, tag::JPEG_LENGTH),
        ) {
            found.extend(slice(offset, length));
        }
        let sensor = matches!(
            self.value(tiff, tag::PHOTOMETRIC),
            Some(PHOTOMETRIC_CFA | PHOTOMETRIC_LINEAR_RAW)
        );
        if !sensor
            && matches!(self.value(tiff, tag::COMPRESSION), Some(6 | 7))
            && let (Some(offsets), Some(counts)) = (
                self.get(tag::STRIP_OFFSETS),
                self.get(tag::STRIP_BYTE_COUNTS),
            )
            && offsets.count == 1
            && counts.count == 1
            && let (Some(&offset), Some(&length)) =
                (tiff.values(&offsets).first(), tiff.values(&counts).first())
        {
            found.extend(slice(offset, length));
        }
        if let Some(entry) = self.get(tag::PANASONIC_JPG_FROM_RAW) {
            match tiff.data(&entry) {
                Some(data) if data.starts_with(&[0xFF, 0xD8]) => found.push(data),
                Some(_) => {}
                None => *cut = true,
            }
        }
        found
    }
}

/// The preview an Olympus (OM System) camera keeps in its maker note, the only large one an
/// ORF has: the maker note's `CameraSettings` directory (tag 0x2020) gives its offset (0x0101)
/// and length (0x0102), counted from the maker note's start (from the TIFF header in the oldest
/// `OLYMP` notes).
pub(super) fn olympus_preview<'a>(tiff: &Tiff<'a>, ifd0: &Ifd) -> Option<&'a [u8]> {
    let exif = tiff.ifd(ifd0.value(tiff, tag::EXIF_IFD)?).ok()?;
    let note = exif.get(tag::MAKER_NOTE)?;
    let data = tiff.data(&note).filter(|d| d.len() > 16)?;
    // Where the note lies in the file (a value this long is always at an offset), and the size
    // of its header before its directory.
    let start = tiff.u32(note.field)? as usize;
    let (header, base) = if data.starts_with(b"OLYMPUS\0") {
        (12, start)
    } else if data.starts_with(b"OM SYSTEM\0") {
        (16, start)
    } else if data.starts_with(b"OLYMP\0") {
        (8, 0)
    } else {
        return None;
    };
    // The newer notes say their byte order after the name; the oldest use the file's.
    let big_endian = match data.get(header - 4..header - 2) {
        Some(b"MM") if header > 8 => true,
        Some(b"II") if header > 8 => false,
        _ => tiff.big_endian,
    };
    let view = Tiff {
        bytes: tiff.bytes.get(base..)?,
        big_endian,
    };
    let main = view.ifd(u32::try_from(start + header - base).ok()?).ok()?;
    let settings = view
        .ifd(main.value(&view, tag::OLYMPUS_CAMERA_SETTINGS)?)
        .ok()?;
    let offset = settings.value(&view, tag::OLYMPUS_PREVIEW_START)?;
    let length = settings.value(&view, tag::OLYMPUS_PREVIEW_LENGTH)?;
    jpeg_at(view.bytes, offset as usize, length as usize)
}

/// The JPEG `length` bytes long at `offset` of `bytes`, where one starts there. One that runs
/// past the end of the file (cut off while copying) is given as far as it goes, for the decoder
/// to say it is truncated.
fn jpeg_at(bytes: &[u8], offset: usize, length: usize) -> Option<&[u8]> {
    let end = offset.saturating_add(length).min(bytes.len());
    bytes
        .get(offset..end)
        .filter(|s| s.starts_with(&[0xFF, 0xD8]))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A little-endian TIFF whose IFD0, at byte 8, holds one entry (`tag`, of TIFF type `kind`,
    /// one value) and points at `next` as the following directory.
    pub(in crate::imaging::raw) fn one_entry(
        tag: u16,
        kind: u16,
        value: u32,
        next: u32,
    ) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
        tiff.extend_from_slice(&next.to_le_bytes());
        tiff
    }

    #[test]
    fn directories_that_point_at_each_other_are_read_once() {
        // IFD0 at 8 whose next IFD is itself, and whose SubIFDs tag points at itself too.
        let tiff = one_entry(tag::SUB_IFDS, 4, 8, 8);
        let tiff = Tiff::new(&tiff).unwrap();
        assert_eq!(tiff.ifds().0.len(), 1);
    }
}
