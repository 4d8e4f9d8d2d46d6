//! HEIC/HEIF photos, as iPhones save them, decoded in pure Rust: heifer reads the container and
//! decodes the HEVC pictures (no C libraries); cliptag assembles and converts them as libheif
//! does for display, so that a HEIC embeds as the Python pipeline (pillow-heif) sees it.
//! Recognised by content (the `ftyp` brands), not by extension.
//!
//! The primary image is decoded (not a thumbnail or a depth map): grid tiles assembled, then the
//! file's own display transformations (`clap` crop, `irot` rotation, `imir` mirror) applied in
//! the order the file lists them. An EXIF orientation in the file is then not applied again.
//! Alpha planes are not decoded at all; 10- and 12-bit samples are brought to 8 bits before
//! the colour conversion, and chroma is taken from the nearest sample, both as libheif does.

use heifer::heifer_hevc_dec::decoder::{DecodeOptions, decode_picture};
use heifer::heifer_hevc_dec::recon::Frame;
use heifer::heifer_isobmff::boxes::{ColorInfo, Property};
use heifer::heifer_isobmff::{Error as ContainerError, HeifFile, ItemId};
use image::{RgbImage, imageops};

use crate::imaging::Decoded;

/// Brands of HEIF files coded with HEVC (and the structural ones they declare alongside).
const HEIF_BRANDS: [&[u8; 4]; 10] = [
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
];

/// How deeply derived images (a grid of identities of …) may nest.
const MAX_DEPTH: u32 = 4;

/// Whether `bytes` start like a HEIF file: an `ftyp` box naming a HEIF brand.
pub fn is_heif(bytes: &[u8]) -> bool {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return false;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = size.clamp(16, bytes.len());
    // The major brand, then the compatible brands after the minor version.
    std::iter::once(&bytes[8..12])
        .chain(bytes[16..end].chunks_exact(4))
        .any(|brand| HEIF_BRANDS.iter().any(|b| b.as_slice() == brand))
}

/// Decodes the primary image of a HEIF file. The size its header declares is checked against
/// `check` before any pixel is decoded.
pub fn decode(
    bytes: &[u8],
    check: impl Fn(u32, u32) -> Result<(), String>,
) -> Result<Decoded, String> {
    let file = HeifFile::parse(bytes).map_err(container)?;
    let declared = file
        .image_size(file.primary_id)
        .map_err(container)?
        .ok_or("damaged HEIF file: its primary image declares no size")?;
    check(declared.0, declared.1)?;
    // Coded pictures are padded to whole coding blocks (up to 64 pixels a side) beyond the size
    // they declare; no picture of this file may be larger than the photo so padded.
    let limit = (u64::from(declared.0) + 128) * (u64::from(declared.1) + 128);
    let decoder = Decoder { file, limit };
    let image = decoder.item(decoder.file.primary_id, 0)?;
    check(image.width(), image.height())?;
    Ok(Decoded {
        display_size: image.dimensions(),
        image,
        scale: 1,
        lead: (0, 0),
    })
}

fn container(e: ContainerError) -> String {
    match e {
        ContainerError::UnexpectedEof => "damaged HEIF file: it ends early (cut off while \
                                          copying?); container: unexpected end of data"
            .into(),
        ContainerError::UnknownItem(id) => format!(
            "damaged HEIF file: part of its picture is missing (it refers to item {id}, which \
             is not in the file; a grid tile lost?)"
        ),
        e => format!("damaged HEIF file: container: {e}"),
    }
}

struct Decoder<'a> {
    file: HeifFile<'a>,
    /// The most pixels any picture or canvas of this file may have.
    limit: u64,
}

impl Decoder<'_> {
    /// An image item as displayed: decoded or assembled, then transformed.
    fn item(&self, id: ItemId, depth: u32) -> Result<RgbImage, String> {
        if depth > MAX_DEPTH {
            return Err("damaged HEIF file: its images are nested too deeply".into());
        }
        let item = self.file.item(id).map_err(container)?;
        let mut image = match &item.item_type.0 {
            b"hvc1" => self.coded(id)?,
            b"grid" => self.grid(id, depth)?,
            b"iden" => match self.file.referenced_items(id, b"dimg") {
                [source] => self.item(*source, depth + 1)?,
                _ => return Err("damaged HEIF file: an identity image without one source".into()),
            },
            other => {
                return Err(format!(
                    "HEIF file cliptag cannot read yet: its picture is of type `{}`",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        // Transformative properties, in the order the file associates them.
        for property in self.file.item_properties(id).map_err(container)? {
            image = match *property {
                Property::CleanAperture {
                    width,
                    height,
                    horiz_offset,
                    vert_offset,
                } => clean_aperture(&image, width, height, horiz_offset, vert_offset)?,
                // `irot` turns anticlockwise by quarters.
                Property::Rotation(1) => imageops::rotate270(&image),
                Property::Rotation(2) => imageops::rotate180(&image),
                Property::Rotation(3) => imageops::rotate90(&image),
                Property::Mirror(true) => imageops::flip_vertical(&image),
                Property::Mirror(false) => imageops::flip_horizontal(&image),
                _ => image,
            };
        }
        Ok(image)
    }

    /// A coded picture, cut to the size its `ispe` declares (what is coded past it is padding).
    fn coded(&self, id: ItemId) -> Result<RgbImage, String> {
        let (frame, colour, (width, height)) = self.picture(id)?;
        let mut image = RgbImage::new(width, height);
        convert(&frame, colour, &mut image, (0, 0), (width, height))?;
        Ok(image)
    }

    /// A coded item's decoded picture, its colour description and the size it shows.
    fn picture(&self, id: ItemId) -> Result<(Frame, Colour, (u32, u32)), String> {
        let stream = self.file.hevc_bitstream(id).map_err(container)?;
        let options = DecodeOptions {
            max_pixels: self.limit,
            ..Default::default()
        };
        let frame = decode_picture(&stream, options)
            .map_err(|e| format!("damaged HEIF file: its picture does not decode (HEVC: {e})"))?;
        let (width, height) = self
            .file
            .image_size(id)
            .map_err(container)?
            .unwrap_or((frame.widths[0], frame.heights[0]));
        let colour = self.colour(id, &frame)?;
        let size = (width.min(frame.widths[0]), height.min(frame.heights[0]));
        Ok((frame, colour, size))
    }

    /// Whether an item is a coded picture shown as decoded (no crop, rotation or mirror), which
    /// a grid converts straight into its canvas.
    fn is_plain_picture(&self, id: ItemId) -> Result<bool, String> {
        if self.file.item(id).map_err(container)?.item_type.0 != *b"hvc1" {
            return Ok(false);
        }
        Ok(!self.file.item_properties(id).map_err(container)?.any(|p| {
            matches!(
                p,
                Property::CleanAperture { .. } | Property::Rotation(_) | Property::Mirror(_)
            )
        }))
    }

    /// The colour description of a coded item: its `colr` (nclx) property, else the HEVC
    /// stream's.
    fn colour(&self, id: ItemId, frame: &Frame) -> Result<Colour, String> {
        let nclx = self
            .file
            .item_properties(id)
            .map_err(container)?
            .find_map(|p| match p {
                Property::Color(ColorInfo::Nclx {
                    matrix, full_range, ..
                }) => Some(Colour {
                    matrix: *matrix,
                    full_range: *full_range,
                }),
                _ => None,
            });
        Ok(nclx.unwrap_or(Colour {
            matrix: u16::from(frame.matrix_coeffs),
            full_range: frame.full_range,
        }))
    }

    /// A grid of tiles (512×512 in iPhone photos), assembled row by row and cut to its size.
    fn grid(&self, id: ItemId, depth: u32) -> Result<RgbImage, String> {
        let grid = self.file.grid(id).map_err(container)?;
        let tiles = self.file.referenced_items(id, b"dimg");
        let columns = usize::from(grid.columns);
        if tiles.is_empty() || tiles.len() != usize::from(grid.rows) * columns {
            return Err(format!(
                "damaged HEIF file: its grid has {} of {}×{} tiles",
                tiles.len(),
                grid.rows,
                grid.columns
            ));
        }
        let (width, height) = (grid.output_width, grid.output_height);
        if width == 0 || height == 0 || u64::from(width) * u64::from(height) > self.limit {
            return Err(format!(
                "damaged HEIF file: its grid is {width}×{height}, unlike the photo it belongs to"
            ));
        }
        let mut canvas = RgbImage::new(width, height);
        let mut tile_size = None;
        for (i, &tile_id) in tiles.iter().enumerate() {
            // Tiles as iPhones write them are plain pictures, converted in place; others are
            // decoded and transformed first.
            let (tile, picture) = if self.is_plain_picture(tile_id)? {
                let (frame, colour, size) = self.picture(tile_id)?;
                (None, Some((frame, colour, size)))
            } else {
                (Some(self.item(tile_id, depth + 1)?), None)
            };
            let size = match (&tile, &picture) {
                (Some(tile), _) => tile.dimensions(),
                (None, Some((_, _, size))) => *size,
                (None, None) => unreachable!("one of the two is set"),
            };
            // Every tile has the first one's size; the last row and column may reach past the
            // canvas and are cut.
            let (tw, th) = *tile_size.get_or_insert(size);
            if size != (tw, th) {
                return Err("damaged HEIF file: its grid tiles differ in size".into());
            }
            let x = (i % columns) as u64 * u64::from(tw);
            let y = (i / columns) as u64 * u64::from(th);
            if x >= u64::from(width) || y >= u64::from(height) {
                continue;
            }
            let (x, y) = (x as u32, y as u32);
            match (tile, picture) {
                (Some(tile), _) => {
                    imageops::replace(&mut canvas, &tile, i64::from(x), i64::from(y))
                }
                (None, Some((frame, colour, _))) => {
                    let shown = (tw.min(width - x), th.min(height - y));
                    convert(&frame, colour, &mut canvas, (x, y), shown)?;
                }
                (None, None) => unreachable!("one of the two is set"),
            }
        }
        Ok(canvas)
    }
}

/// How YCbCr samples map to RGB (ITU-T H.273).
#[derive(Clone, Copy)]
struct Colour {
    matrix: u16,
    full_range: bool,
}

/// Writes the top-left `size` pixels of a decoded picture into `out` at `at`, in 8-bit RGB as
/// libheif converts for display: samples of more than 8 bits shifted down to 8 first, each
/// pixel's chroma from the chroma sample that covers it, fixed-point coefficients in 1/256.
fn convert(
    frame: &Frame,
    colour: Colour,
    out: &mut RgbImage,
    at: (u32, u32),
    size: (u32, u32),
) -> Result<(), String> {
    let [luma_depth, chroma_depth] = frame.bit_depth;
    if !(8..=16).contains(&luma_depth) || !(8..=16).contains(&chroma_depth) {
        return Err(format!(
            "HEIF file cliptag cannot read yet: {luma_depth}-bit samples"
        ));
    }
    let (shift_y, shift_c) = (luma_depth - 8, chroma_depth - 8);
    let (width, height) = (size.0 as usize, size.1 as usize);
    let stride = frame.widths[0] as usize;
    let out_stride = out.width() as usize * 3;
    let (x0, y0) = (at.0 as usize, at.1 as usize);
    if width == 0
        || height == 0
        || width > stride
        || height > frame.heights[0] as usize
        || x0 + width > out.width() as usize
        || y0 + height > out.height() as usize
    {
        return Err("damaged HEIF file: a picture does not fit where it belongs".into());
    }
    let out = out.as_mut();
    let luma_row = |y: usize| &frame.planes[0][y * stride..y * stride + width];
    if frame.widths[1] == 0 || frame.heights[1] == 0 {
        // Monochrome: grey, range expanded where the range is limited.
        for y in 0..height {
            let start = (y0 + y) * out_stride + x0 * 3;
            let row = &mut out[start..start + width * 3];
            for (pixel, &v) in row.chunks_exact_mut(3).zip(luma_row(y)) {
                let v = expand_luma(i32::from(v >> shift_y), colour.full_range);
                pixel.copy_from_slice(&[v, v, v]);
            }
        }
        return Ok(());
    }
    let (cw, ch) = (frame.widths[1] as usize, frame.heights[1] as usize);
    let sx = (stride / cw).max(1);
    let sy = (frame.heights[0] as usize / ch).max(1);
    if (width - 1) / sx >= cw || (height - 1) / sy >= ch {
        return Err("damaged HEIF file: its chroma planes are too small".into());
    }
    let coefficients = Coefficients::new(colour);
    for y in 0..height {
        let start = (y0 + y) * out_stride + x0 * 3;
        let row = &mut out[start..start + width * 3];
        let c = (y / sy) * cw;
        let (cb_row, cr_row) = (&frame.planes[1][c..c + cw], &frame.planes[2][c..c + cw]);
        for (x, (pixel, &luma)) in row.chunks_exact_mut(3).zip(luma_row(y)).enumerate() {
            let cx = x / sx;
            let rgb = coefficients.rgb(
                i32::from(luma >> shift_y),
                i32::from(cb_row[cx] >> shift_c),
                i32::from(cr_row[cx] >> shift_c),
            );
            pixel.copy_from_slice(&rgb);
        }
    }
    Ok(())
}

/// YCbCr → RGB in 8 bits, with libheif's fixed-point coefficients.
struct Coefficients {
    /// The identity matrix: the planes are G, B and R.
    identity: bool,
    full_range: bool,
    r_cr: i32,
    g_cb: i32,
    g_cr: i32,
    b_cb: i32,
}

impl Coefficients {
    fn new(colour: Colour) -> Self {
        let (kr, kb) = match colour.matrix {
            1 => (0.2126, 0.0722),
            4 => (0.30, 0.11),
            7 => (0.212, 0.087),
            9 | 10 => (0.2627, 0.0593),
            _ => (0.299, 0.114), // 5, 6 and unspecified: BT.601
        };
        let kg = 1.0 - kr - kb;
        // Limited-range chroma spans 224 levels instead of 255.
        let range = if colour.full_range {
            1.0
        } else {
            255.0 / 224.0
        };
        let fixed = |c: f64| (c * range * 256.0).round() as i32;
        Coefficients {
            identity: colour.matrix == 0,
            full_range: colour.full_range,
            r_cr: fixed(2.0 * (1.0 - kr)),
            g_cb: fixed(-2.0 * kb * (1.0 - kb) / kg),
            g_cr: fixed(-2.0 * kr * (1.0 - kr) / kg),
            b_cb: fixed(2.0 * (1.0 - kb)),
        }
    }

    #[inline]
    fn rgb(&self, y: i32, cb: i32, cr: i32) -> [u8; 3] {
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        if self.identity {
            return [clamp(cr), clamp(y), clamp(cb)];
        }
        let y = i32::from(expand_luma(y, self.full_range));
        let (cb, cr) = (cb - 128, cr - 128);
        [
            clamp(y + ((self.r_cr * cr + 128) >> 8)),
            clamp(y + ((self.g_cb * cb + self.g_cr * cr + 128) >> 8)),
            clamp(y + ((self.b_cb * cb + 128) >> 8)),
        ]
    }
}

/// An 8-bit luma sample on the full range.
fn expand_luma(v: i32, full_range: bool) -> u8 {
    if full_range {
        v.clamp(0, 255) as u8
    } else {
        (((v - 16) * 255 * 2 + 219) / (219 * 2)).clamp(0, 255) as u8
    }
}

/// The `clap` crop: a centred rectangle given as fractions.
fn clean_aperture(
    image: &RgbImage,
    width: (u32, u32),
    height: (u32, u32),
    horiz: (i32, u32),
    vert: (i32, u32),
) -> Result<RgbImage, String> {
    if width.1 == 0 || height.1 == 0 || horiz.1 == 0 || vert.1 == 0 {
        return Err("damaged HEIF file: its crop (clap) divides by zero".into());
    }
    let crop_w = f64::from(width.0) / f64::from(width.1);
    let crop_h = f64::from(height.0) / f64::from(height.1);
    let cx = f64::from(horiz.0) / f64::from(horiz.1) + (f64::from(image.width()) - 1.0) / 2.0;
    let cy = f64::from(vert.0) / f64::from(vert.1) + (f64::from(image.height()) - 1.0) / 2.0;
    let left = (cx - (crop_w - 1.0) / 2.0)
        .round()
        .clamp(0.0, f64::from(image.width()));
    let top = (cy - (crop_h - 1.0) / 2.0)
        .round()
        .clamp(0.0, f64::from(image.height()));
    let (left, top) = (left as u32, top as u32);
    let w = (crop_w.round().max(0.0) as u32).min(image.width() - left);
    let h = (crop_h.round().max(0.0) as u32).min(image.height() - top);
    if w == 0 || h == 0 {
        return Err("damaged HEIF file: its crop (clap) leaves nothing".into());
    }
    Ok(imageops::crop_imm(image, left, top, w, h).to_image())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_are_read_from_the_ftyp_box() {
        let mut heic = Vec::new();
        heic.extend_from_slice(&24u32.to_be_bytes());
        heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        assert!(is_heif(&heic));
        let mut avif = Vec::new();
        avif.extend_from_slice(&20u32.to_be_bytes());
        avif.extend_from_slice(b"ftypavif\0\0\0\0avif");
        assert!(!is_heif(&avif));
        assert!(!is_heif(b"\xff\xd8\xff\xe0 not a heif"));
    }

    #[test]
    fn a_crop_is_centred_and_stays_inside() {
        let image = RgbImage::from_fn(10, 8, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let cropped = clean_aperture(&image, (6, 1), (4, 1), (0, 1), (0, 1)).unwrap();
        assert_eq!(cropped.dimensions(), (6, 4));
        assert_eq!(cropped.get_pixel(0, 0).0[..2], [2, 2]);
        let past = clean_aperture(&image, (40, 1), (40, 1), (0, 1), (0, 1)).unwrap();
        assert_eq!(past.dimensions(), (10, 8));
        assert!(clean_aperture(&image, (6, 0), (4, 1), (0, 1), (0, 1)).is_err());
    }
}
