//! One EXIF orientation rule for every decoder and every use (the indexer's reduced decode, the
//! full decode `embed` uses, thumbnails and the photo panel): what PIL and exiftool read.
//!
//! - A JPEG's first APP1 EXIF block wins. Editors that add a block leave the camera's in place,
//!   and decoders disagree about the rest: the image crate's takes the last one, cliptag's
//!   reduced decoder took the first, so one photo could look right in the library and wrong from
//!   `embed`.
//! - A PNG's `eXIf` chunk counts wherever it lies before `IEND`: libpng writes it after the
//!   image data, where the image crate's decoder no longer looks.

use image::ImageFormat;
use image::metadata::Orientation;

/// The orientation `bytes` ask for under cliptag's rule, or `None` for a format whose decoder
/// reads it (TIFF, WebP and the rest keep theirs).
pub fn of(bytes: &[u8], format: ImageFormat) -> Option<Orientation> {
    let exif = match format {
        ImageFormat::Jpeg => first_jpeg_exif(bytes),
        ImageFormat::Png => png_exif(bytes),
        _ => return None,
    };
    Some(
        exif.and_then(orientation_tag)
            .and_then(Orientation::from_exif)
            .unwrap_or(Orientation::NoTransforms),
    )
}

/// The Orientation tag (0x0112) of IFD0 in EXIF's TIFF data, stored as a SHORT as the standard
/// says, or as a BYTE or LONG, which some writers use and PIL and exiftool read.
fn orientation_tag(tiff: &[u8]) -> Option<u8> {
    let big = match tiff.get(..4)? {
        b"II*\0" => false,
        b"MM\0*" => true,
        _ => return None,
    };
    let u16_at = |at: usize| {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let entries = usize::from(u16_at(ifd)?);
    (0..entries).find_map(|i| {
        let entry = ifd + 2 + 12 * i;
        if u16_at(entry)? != 0x0112 || u32_at(entry + 4)? < 1 {
            return None;
        }
        let value = match u16_at(entry + 2)? {
            1 => u32::from(*tiff.get(entry + 8)?),
            3 => u32::from(u16_at(entry + 8)?),
            4 => u32_at(entry + 8)?,
            _ => return None,
        };
        u8::try_from(value).ok()
    })
}

/// Whether `orientation` swaps width and height.
pub fn turns(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Where padding at the right and bottom of a stored image (`pad`: columns, rows) lies once the
/// image is turned by `orientation`: the part of it before the first displayed column and row.
///
/// A JPEG decoded at a reduced scale ends in a block that is partly padding; turned, that block
/// can come first, and the decoded image then starts before the photo does.
pub fn leading_padding(orientation: Orientation, (pad_x, pad_y): (u32, u32)) -> (u32, u32) {
    use Orientation as O;
    match orientation {
        O::NoTransforms | O::Rotate90FlipH => (0, 0),
        O::FlipHorizontal => (pad_x, 0),
        O::Rotate180 => (pad_x, pad_y),
        O::FlipVertical => (0, pad_y),
        // Displayed columns run along the stored rows, bottom to top.
        O::Rotate90 => (pad_y, 0),
        O::Rotate270FlipH => (pad_y, pad_x),
        // Displayed rows run along the stored columns, right to left.
        O::Rotate270 => (0, pad_x),
    }
}

/// The TIFF data of a JPEG's first APP1 EXIF block, from the segments before the first scan.
fn first_jpeg_exif(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 2;
    loop {
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos)?;
        pos += 1;
        match marker {
            // The first scan or the end: no EXIF comes after the frame's data begins.
            0xDA | 0xD9 => return None,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(pos)?, *bytes.get(pos + 1)?]));
        let segment = bytes.get(pos + 2..pos + len.max(2))?;
        // A block with no TIFF data in it (an editor's empty placeholder) is no EXIF block.
        if marker == 0xE1
            && let Some(tiff) = segment.strip_prefix(b"Exif\0\0")
            && tiff.len() >= 8
        {
            return Some(tiff);
        }
        pos += len.max(2);
    }
}

/// The data of a PNG's first `eXIf` chunk before `IEND`.
fn png_exif(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 8;
    loop {
        let len = u32::from_be_bytes(bytes.get(pos..pos + 4)?.try_into().ok()?) as usize;
        let kind = bytes.get(pos + 4..pos + 8)?;
        let data = bytes.get(pos + 8..(pos + 8).checked_add(len)?)?;
        match kind {
            b"eXIf" => {
                // Some writers keep the JPEG block's "Exif" prefix; the chunk holds TIFF data.
                return Some(data.strip_prefix(b"Exif\0\0").unwrap_or(data));
            }
            b"IEND" => return None,
            _ => pos += 12 + len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exif(orientation: u16) -> Vec<u8> {
        // A little-endian TIFF header and one IFD entry: Orientation (0x0112), SHORT, 1 value.
        let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        tiff
    }

    fn app1(orientation: u16) -> Vec<u8> {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(exif(orientation));
        let mut segment = vec![0xFF, 0xE1];
        segment.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
        segment.extend(payload);
        segment
    }

    /// The table agrees with turning a real image: a stored 3×2 image whose only photo pixel is
    /// its top-left one (2 columns and 1 row of padding), turned every way, has the photo pixel
    /// after exactly the padding the table puts before it.
    #[test]
    fn leading_padding_follows_the_turn() {
        use image::{DynamicImage, Rgb, RgbImage};
        let stored = RgbImage::from_fn(3, 2, |x, y| Rgb([u8::from(x != 0 || y != 0), 0, 0]));
        for exif in 1..=8 {
            let turn = Orientation::from_exif(exif).unwrap();
            let mut image = DynamicImage::ImageRgb8(stored.clone());
            image.apply_orientation(turn);
            let image = image.into_rgb8();
            let photo = image
                .enumerate_pixels()
                .find(|(_, _, p)| p[0] == 0)
                .map(|(x, y, _)| (x, y));
            assert_eq!(
                photo,
                Some(leading_padding(turn, (2, 1))),
                "orientation {exif}"
            );
        }
    }

    #[test]
    fn an_orientation_stored_as_a_long_or_a_byte_counts() {
        for (kind, value) in [(4u16, [6u8, 0, 0, 0]), (1, [6, 0, 0, 0]), (3, [6, 0, 0, 0])] {
            let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01".to_vec();
            tiff.extend_from_slice(&kind.to_le_bytes());
            tiff.extend_from_slice(&[1, 0, 0, 0]);
            tiff.extend_from_slice(&value);
            assert_eq!(orientation_tag(&tiff), Some(6), "type {kind}");
        }
        // Big-endian, as Canon and Nikon write it.
        let tiff = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x08\0\0".to_vec();
        assert_eq!(orientation_tag(&tiff), Some(8));
    }

    #[test]
    fn an_empty_exif_block_does_not_hide_the_next() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0, 8];
        jpeg.extend_from_slice(b"Exif\0\0");
        jpeg.extend(app1(6));
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        assert_eq!(of(&jpeg, ImageFormat::Jpeg), Some(Orientation::Rotate90));
    }

    #[test]
    fn the_first_of_two_exif_blocks_wins() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(app1(6));
        jpeg.extend(app1(3));
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        assert_eq!(of(&jpeg, ImageFormat::Jpeg), Some(Orientation::Rotate90));
    }

    #[test]
    fn a_png_exif_chunk_after_the_image_data_counts() {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend_from_slice(&[0; 4]);
            c
        };
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        png.extend(chunk(b"IDAT", &[1, 2, 3]));
        png.extend(chunk(b"eXIf", &exif(3)));
        png.extend(chunk(b"IEND", &[]));
        assert_eq!(of(&png, ImageFormat::Png), Some(Orientation::Rotate180));
        // Cut before the chunk, or with a length running past the end: no orientation.
        assert_eq!(
            of(&png[..png.len() - 30], ImageFormat::Png),
            Some(Orientation::NoTransforms)
        );
    }
}
