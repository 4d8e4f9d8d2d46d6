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

mod bmff;
mod tiff;

use bmff::{cr3, runs_past_end};
use tiff::{PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW, Tiff, olympus_preview, tag};

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

#[cfg(test)]
mod tests {
    use super::*;

    use super::tiff::tests::one_entry;

    #[test]
    fn a_plain_tiff_is_not_a_raw_unless_its_name_says_so() {
        // One directory of one entry (ImageWidth, SHORT 16).
        let tiff = one_entry(0x0100, 3, 16, 0);
        assert_eq!(recognise(&tiff, false), None);
        assert_eq!(recognise(&tiff, true), Some(Kind::Tiff));
        // Compressed with PackBits, as scanners and editors write them: still a plain TIFF.
        assert_eq!(
            recognise(&one_entry(tag::COMPRESSION, 3, 32773, 0), false),
            None
        );
        // With a colour filter array, it is sensor data.
        let cfa = one_entry(tag::PHOTOMETRIC, 3, PHOTOMETRIC_CFA, 0);
        assert_eq!(recognise(&cfa, false), Some(Kind::Tiff));
    }
}
