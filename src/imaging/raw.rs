//! Camera RAW files, tagged from the JPEG previews their cameras embed in them.
//!
//! Every camera of the last fifteen years writes the picture it showed on its screen into its RAW
//! file as a JPEG, usually 1600 pixels wide or more: far more than the model's input. cliptag reads
//! those previews instead of decoding the sensor data (demosaicing), as digiKam and darktable do
//! first. This module only finds them: it recognises the containers and lists every embedded
//! JPEG with the orientation the RAW asks for; decoding the largest one that decodes is
//! [`crate::imaging::decode`]'s work, with the same reduced-size JPEG decoding as any photo.
//!
//! The containers, read by cliptag's own small readers (bounds-checked, no allocation sized by
//! the file, every offset checked against the file's length):
//!
//! - TIFF-based (DNG, CR2, NEF, NRW, ARW, SR2, SRF, PEF, SRW, ORF, RW2): the IFD chain and its
//!   SubIFDs. A preview is a `JPEGInterchangeFormat` pair, a single JPEG-compressed strip, or
//!   Panasonic's `JpgFromRaw` tag; the orientation is IFD0's.
//! - CR3 (ISO-BMFF with Canon's `crx ` brand): the `PRVW` preview, the `THMB` thumbnail and the
//!   full-size JPEG in the first track; the orientation is the `CMT1` block's (its IFD0).
//! - RAF (Fujifilm): the JPEG its header points at, which holds the RAW's EXIF (orientation
//!   included) itself.

use image::metadata::Orientation;

/// The kinds of camera RAW cliptag reads, each named as photographers know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dng,
    Cr2,
    Cr3,
    Nef,
    Arw,
    Orf,
    Rw2,
    Raf,
    Pef,
    /// A TIFF-structured RAW recognised by its name alone (`.srw`, `.sr2`, …).
    Tiff,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dng => "DNG",
            Kind::Cr2 => "CR2",
            Kind::Cr3 => "CR3",
            Kind::Nef => "NEF",
            Kind::Arw => "ARW",
            Kind::Orf => "ORF",
            Kind::Rw2 => "RW2",
            Kind::Raf => "RAF",
            Kind::Pef => "PEF",
            Kind::Tiff => "TIFF-based",
        }
    }
}

/// File name extensions of the camera RAW formats cliptag reads (lower case): the formats this
/// module knows, and other TIFF-structured ones (Hasselblad, Phase One, Epson, Kodak, Mamiya,
/// Leaf), read where their previews sit in the TIFF directories.
pub const EXTENSIONS: [&str; 20] = [
    "cr2", "cr3", "nef", "nrw", "arw", "srf", "sr2", "dng", "orf", "rw2", "raf", "pef", "srw",
    "3fr", "iiq", "erf", "kdc", "dcr", "mef", "mos",
];

/// Whether a file name extension names a camera RAW format cliptag reads.
pub fn is_raw_extension(ext: &str) -> bool {
    EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

/// Camera RAW formats cliptag cannot read even a preview from yet, by extension, with the name
/// photographers know them by. They are listed among a library's problems with that reason,
/// rather than left out without a word.
pub fn unsupported(ext: &str) -> Option<&'static str> {
    [
        ("crw", "Canon CRW"),
        ("mrw", "Minolta MRW"),
        ("x3f", "Sigma X3F"),
    ]
    .into_iter()
    .find(|(e, _)| e.eq_ignore_ascii_case(ext))
    .map(|(_, name)| name)
}

/// The RAW formats whose first bytes alone say what they are (no TIFF magic a plain TIFF shares).
pub fn sniff(head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"FUJIFILMCCD-RAW") {
        return Some(Kind::Raf);
    }
    if head.starts_with(b"IIRO") || head.starts_with(b"IIRS") || head.starts_with(b"MMOR") {
        return Some(Kind::Orf);
    }
    if head.starts_with(b"IIU\0") {
        return Some(Kind::Rw2);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" && &head[8..12] == b"crx " {
        return Some(Kind::Cr3);
    }
    if head.starts_with(b"II*\0") && head.get(8..10) == Some(b"CR") {
        return Some(Kind::Cr2);
    }
    None
}

/// What kind of camera RAW `bytes` hold, judged by content; `named_raw` (the file's extension
/// names a RAW format) makes a TIFF that carries no RAW signature count as one too. A plain TIFF
/// (a scan, an export) is `None`.
pub fn recognise(bytes: &[u8], named_raw: bool) -> Option<Kind> {
    if let Some(kind) = sniff(bytes) {
        return Some(kind);
    }
    let tiff = Tiff::new(bytes)?;
    let ifd0 = tiff.ifd(tiff.first_ifd()).ok()?;
    if ifd0.get(tag::DNG_VERSION).is_some() {
        return Some(Kind::Dng);
    }
    let make = ifd0
        .get(tag::MAKE)
        .and_then(|e| tiff.ascii(&e))
        .unwrap_or_default()
        .to_ascii_uppercase();
    // Sensor data: a colour filter array or linear raw pixels, or a maker's own compression
    // (Sony's, Samsung's, Nikon's, Pentax's; not PackBits, 32773, which plain TIFFs use), in IFD0,
    // a following IFD or a SubIFD.
    let sensor = tiff.ifds().0.iter().any(|ifd| {
        matches!(
            ifd.value(&tiff, tag::PHOTOMETRIC),
            Some(PHOTOMETRIC_CFA | PHOTOMETRIC_LINEAR_RAW)
        ) || matches!(
            ifd.value(&tiff, tag::COMPRESSION),
            Some(32767 | 32769 | 32770 | 34713 | 65535)
        )
    });
    if !sensor && !named_raw {
        return None;
    }
    Some(if make.starts_with("NIKON") {
        Kind::Nef
    } else if make.starts_with("SONY") {
        Kind::Arw
    } else if make.starts_with("PENTAX") || make.starts_with("RICOH") {
        Kind::Pef
    } else {
        Kind::Tiff
    })
}

/// A RAW file's embedded JPEGs and the orientation to show them in.
#[derive(Debug)]
pub struct Previews<'a> {
    pub kind: Kind,
    /// Every embedded JPEG found, in file order; each still to be validated by decoding.
    pub jpegs: Vec<&'a [u8]>,
    /// The RAW's own orientation, applied to whichever preview is taken (its own EXIF, if it has
    /// any, is ignored); `None` where the preview's EXIF is the RAW's (RAF).
    pub orientation: Option<Orientation>,
    /// Whether the file ends before something it points at: a file cut off while copying,
    /// whose previews may be what is missing.
    pub cut: bool,
}

/// The embedded JPEGs of a RAW of `kind`; an error says why the container cannot be read.
pub fn previews(bytes: &[u8], kind: Kind) -> Result<Previews<'_>, String> {
    let damaged = |why: &str| format!("damaged camera RAW ({}) file: {why}", kind.name());
    match kind {
        Kind::Raf => {
            // The header: magic, format version, camera id, camera name, then the JPEG's offset
            // and length (big-endian) at bytes 84 and 88.
            let at = |i: usize| {
                bytes
                    .get(i..i + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            };
            let (Some(offset), Some(length)) = (at(84), at(88)) else {
                return Err(damaged("it ends inside its header (truncated?)"));
            };
            let jpeg = offset
                .checked_add(length)
                .and_then(|end| bytes.get(offset..end))
                .ok_or_else(|| damaged("its preview lies past the end of the file (truncated?)"))?;
            Ok(Previews {
                kind,
                jpegs: vec![jpeg],
                orientation: None,
                cut: false,
            })
        }
        Kind::Cr3 => {
            let (jpegs, orientation) = cr3(bytes).map_err(|why| damaged(&why))?;
            Ok(Previews {
                kind,
                jpegs,
                orientation: Some(orientation.unwrap_or(Orientation::NoTransforms)),
                cut: runs_past_end(bytes),
            })
        }
        _ => {
            let tiff = Tiff::new(bytes).ok_or_else(|| damaged("its TIFF header is damaged"))?;
            let ifd0 = tiff
                .ifd(tiff.first_ifd())
                .map_err(|why| damaged(&format!("its first directory {why}")))?;
            let orientation = ifd0
                .value(&tiff, tag::ORIENTATION)
                .and_then(|v| u8::try_from(v).ok())
                .and_then(Orientation::from_exif)
                .unwrap_or(Orientation::NoTransforms);
            let mut jpegs = Vec::new();
            let (ifds, mut cut) = tiff.ifds();
            for ifd in ifds {
                jpegs.extend(ifd.jpegs(&tiff, &mut cut));
            }
            jpegs.extend(olympus_preview(&tiff, &ifd0));
            Ok(Previews {
                kind,
                jpegs,
                orientation: Some(orientation),
                cut,
            })
        }
    }
}

/// The preview an Olympus (OM System) camera keeps in its maker note, the only large one an
/// ORF has: the maker note's `CameraSettings` directory (tag 0x2020) gives its offset (0x0101)
/// and length (0x0102), counted from the maker note's start (from the TIFF header in the oldest
/// `OLYMP` notes).
fn olympus_preview<'a>(tiff: &Tiff<'a>, ifd0: &Ifd) -> Option<&'a [u8]> {
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
    let offset = settings.value(&view, tag::OLYMPUS_PREVIEW_START)? as usize;
    let length = settings.value(&view, tag::OLYMPUS_PREVIEW_LENGTH)? as usize;
    let end = offset.saturating_add(length).min(view.bytes.len());
    view.bytes
        .get(offset..end)
        .filter(|s| s.starts_with(&[0xFF, 0xD8]))
}

/// TIFF tags cliptag reads.
mod tag {
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

const PHOTOMETRIC_CFA: u32 = 32803;
const PHOTOMETRIC_LINEAR_RAW: u32 = 34892;
/// The most directories read from one file, and the most entries read from one directory: far
/// above any camera's, and a bound on the work a damaged file can ask for.
const MAX_IFDS: usize = 64;
const MAX_ENTRIES: usize = 1024;

/// A TIFF structure: the file's bytes and their byte order.
struct Tiff<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    /// Where the entry's 4-byte value field lies in the file.
    field: usize,
}

struct Ifd {
    entries: Vec<Entry>,
    next: u32,
}

impl<'a> Tiff<'a> {
    /// A TIFF-structured file: classic TIFF, and the variants of ORF (`IIRO`, `IIRS`, `MMOR`) and
    /// RW2 (`IIU`) that change only the magic number.
    fn new(bytes: &'a [u8]) -> Option<Self> {
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

    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn first_ifd(&self) -> u32 {
        self.u32(4).unwrap_or(0)
    }

    /// The directory at `offset`.
    fn ifd(&self, offset: u32) -> Result<Ifd, String> {
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
    fn ifds(&self) -> (Vec<Ifd>, bool) {
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
    fn type_size(kind: u16) -> Option<usize> {
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
    fn data(&self, entry: &Entry) -> Option<&'a [u8]> {
        let len = Self::type_size(entry.kind)?.checked_mul(entry.count as usize)?;
        let start = if len <= 4 {
            entry.field
        } else {
            self.u32(entry.field)? as usize
        };
        self.bytes.get(start..start.checked_add(len)?)
    }

    /// The integer values of `entry` (BYTE, SHORT, LONG or IFD), at most [`MAX_IFDS`] of them.
    fn values(&self, entry: &Entry) -> Vec<u32> {
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

    fn ascii(&self, entry: &Entry) -> Option<String> {
        let data = self.data(entry)?;
        let text = data.split(|&b| b == 0).next().unwrap_or_default();
        Some(String::from_utf8_lossy(text).into_owned())
    }
}

impl Ifd {
    fn get(&self, tag: u16) -> Option<Entry> {
        self.entries.iter().find(|e| e.tag == tag).copied()
    }

    /// The first value of `tag`, where it is an integer.
    fn value(&self, tiff: &Tiff, tag: u16) -> Option<u32> {
        tiff.values(&self.get(tag)?).first().copied()
    }

    /// The JPEGs this directory holds: a `JPEGInterchangeFormat` pair, a single JPEG-compressed
    /// strip (CR2's IFD0, DNG's previews), Panasonic's `JpgFromRaw`. Sensor data compressed as
    /// lossless JPEG is not a preview and is not listed.
    /// `cut` is set where a preview starts past the end of the file.
    fn jpegs<'a>(&self, tiff: &Tiff<'a>, cut: &mut bool) -> Vec<&'a [u8]> {
        // A preview that runs past the end of the file (cut off while copying) is given as far
        // as it goes, for the decoder to say it is truncated.
        let mut slice = |offset: u32, length: u32| {
            let start = offset as usize;
            if start >= tiff.bytes.len() && length > 0 {
                *cut = true;
            }
            let end = start.saturating_add(length as usize).min(tiff.bytes.len());
            tiff.bytes
                .get(start..end)
                .filter(|s| s.starts_with(&[0xFF, 0xD8]))
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

/// ISO-BMFF boxes: the `(type, payload)` of each box in `bytes`, in order. A box that claims to
/// run past the end of `bytes` (a file cut off while copying) is given with what there is of it,
/// and ends the list: what lies inside it before the cut can still be read.
fn boxes(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
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
fn runs_past_end(bytes: &[u8]) -> bool {
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
fn jpeg_in(payload: &[u8]) -> Option<&[u8]> {
    let start = payload
        .windows(3)
        .take(32)
        .position(|w| w == [0xFF, 0xD8, 0xFF])?;
    Some(&payload[start..])
}

/// A CR3's embedded JPEGs and its orientation (from `CMT1`, which is a TIFF IFD0).
fn cr3(bytes: &[u8]) -> Result<(Vec<&[u8]>, Option<Orientation>), String> {
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
fn first_sample<'a>(file: &'a [u8], trak: &[u8]) -> Option<&'a [u8]> {
    fn child<'b>(parent: &'b [u8], want: &[u8; 4]) -> Option<&'b [u8]> {
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
    fn a_plain_tiff_is_not_a_raw_unless_its_name_says_so() {
        // A little-endian TIFF with one directory of one entry (ImageWidth).
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&[1, 0, 0x00, 0x01, 3, 0, 1, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(recognise(&tiff, false), None);
        assert_eq!(recognise(&tiff, true), Some(Kind::Tiff));
        // Compressed with PackBits, as scanners and editors write them: still a plain TIFF.
        let mut packbits = b"II*\0\x08\0\0\0".to_vec();
        packbits.extend_from_slice(&[
            1, 0, 0x03, 0x01, 3, 0, 1, 0, 0, 0, 0x05, 0x80, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(recognise(&packbits, false), None);
        // With a colour filter array, it is sensor data.
        let mut cfa = b"II*\0\x08\0\0\0".to_vec();
        cfa.extend_from_slice(&[
            1, 0, 0x06, 0x01, 3, 0, 1, 0, 0, 0, 0x23, 0x80, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(recognise(&cfa, false), Some(Kind::Tiff));
    }

    #[test]
    fn directories_that_point_at_each_other_are_read_once() {
        // IFD0 at 8 whose next IFD is itself, and whose SubIFDs tag points at itself too.
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&[1, 0, 0x4A, 0x01, 4, 0, 1, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0]);
        let tiff = Tiff::new(&tiff).unwrap();
        assert_eq!(tiff.ifds().0.len(), 1);
    }

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
