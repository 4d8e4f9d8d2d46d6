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

mod colour;
mod grid;

pub use grid::helpers_started;

use colour::{Colour, convert, convert_reduced};

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
///
/// With `reduce_to = Some(n)` (indexing), a photo whose short side is at least `4 n` is
/// decoded for a model that sees `n` pixels: the in-loop filters (deblocking and SAO, which
/// smooth block edges a few pixels wide) are skipped, and the picture is converted to RGB at
/// a half, a quarter or an eighth of its size (the smallest whose short side stays at least
/// `2 n`, as for JPEGs), each pixel the mean of the block it covers. Skipping the filters
/// changes no other sample: intra prediction reads the samples before filtering. Anything
/// else, and every photo without `reduce_to`, is decoded exactly as libheif decodes it.
pub fn decode(
    bytes: &[u8],
    check: impl Fn(u32, u32) -> Result<(), String>,
    reduce_to: Option<u32>,
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
    let mut decoder = Decoder {
        file,
        limit,
        scale: 1,
    };
    if let Some(n) = reduce_to {
        let short = declared.0.min(declared.1);
        let scale = [8, 4, 2]
            .into_iter()
            .find(|s| short / s >= 2 * n.max(1))
            .unwrap_or(1);
        if scale > 1 && decoder.reducible(decoder.file.primary_id, scale)? {
            decoder.scale = scale;
        }
    }
    let Shown {
        image,
        size,
        padding,
    } = decoder.item(decoder.file.primary_id, 0)?;
    check(size.0, size.1)?;
    Ok(Decoded {
        display_size: size,
        image,
        scale: decoder.scale,
        lead: (padding[0], padding[1]),
    })
}

/// An item as displayed: its pixels (reduced by [`Decoder::scale`]), its size in full pixels,
/// and the full pixels of padding its reduced pixels cover past the photo on each side (left,
/// top, right, bottom): a last block only partly inside the photo, turned wherever the file's
/// rotation or mirror turns it.
struct Shown {
    image: RgbImage,
    size: (u32, u32),
    padding: [u32; 4],
}

impl Shown {
    fn new(image: RgbImage, size: (u32, u32), scale: u32) -> Self {
        let right = image.width() * scale - size.0;
        let bottom = image.height() * scale - size.1;
        Shown {
            image,
            size,
            padding: [0, 0, right, bottom],
        }
    }

    /// Turned clockwise by a quarter.
    fn rotate90(self) -> Self {
        let [l, t, r, b] = self.padding;
        Shown {
            image: imageops::rotate90(&self.image),
            size: (self.size.1, self.size.0),
            padding: [b, l, t, r],
        }
    }

    /// Turned anticlockwise by a quarter.
    fn rotate270(self) -> Self {
        let [l, t, r, b] = self.padding;
        Shown {
            image: imageops::rotate270(&self.image),
            size: (self.size.1, self.size.0),
            padding: [t, r, b, l],
        }
    }

    fn rotate180(self) -> Self {
        let [l, t, r, b] = self.padding;
        Shown {
            image: imageops::rotate180(&self.image),
            size: self.size,
            padding: [r, b, l, t],
        }
    }

    fn flip_horizontal(self) -> Self {
        let [l, t, r, b] = self.padding;
        Shown {
            image: imageops::flip_horizontal(&self.image),
            size: self.size,
            padding: [r, t, l, b],
        }
    }

    fn flip_vertical(self) -> Self {
        let [l, t, r, b] = self.padding;
        Shown {
            image: imageops::flip_vertical(&self.image),
            size: self.size,
            padding: [l, b, r, t],
        }
    }
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
    /// Full pixels per decoded pixel along each side (see [`decode`]); 1 decodes exactly.
    scale: u32,
}

impl Decoder<'_> {
    /// Whether the item can be decoded `scale` times smaller: a coded picture, or a grid of
    /// plain pictures whose tiles are whole numbers of `scale`-pixel blocks, with no crop (the
    /// rest are decoded in full).
    fn reducible(&self, id: ItemId, scale: u32) -> Result<bool, String> {
        let cropped = self
            .file
            .item_properties(id)
            .map_err(container)?
            .any(|p| matches!(p, Property::CleanAperture { .. }));
        if cropped {
            return Ok(false);
        }
        match &self.file.item(id).map_err(container)?.item_type.0 {
            b"hvc1" => Ok(true),
            b"grid" => {
                for &tile in self.file.referenced_items(id, b"dimg") {
                    if !self.is_plain_picture(tile)? {
                        return Ok(false);
                    }
                    match self.file.image_size(tile).map_err(container)? {
                        Some((w, h)) if w % scale == 0 && h % scale == 0 => {}
                        _ => return Ok(false),
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// An image item as displayed: decoded or assembled, then transformed.
    fn item(&self, id: ItemId, depth: u32) -> Result<Shown, String> {
        if depth > MAX_DEPTH {
            return Err("damaged HEIF file: its images are nested too deeply".into());
        }
        let item = self.file.item(id).map_err(container)?;
        let mut shown = match &item.item_type.0 {
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
            shown = match *property {
                Property::CleanAperture {
                    width,
                    height,
                    horiz_offset,
                    vert_offset,
                } => {
                    // Only full decodes reach here with a crop (see `reducible`).
                    let image =
                        clean_aperture(&shown.image, width, height, horiz_offset, vert_offset)?;
                    let size = image.dimensions();
                    Shown::new(image, size, 1)
                }
                // `irot` turns anticlockwise by quarters.
                Property::Rotation(1) => shown.rotate270(),
                Property::Rotation(2) => shown.rotate180(),
                Property::Rotation(3) => shown.rotate90(),
                Property::Mirror(true) => shown.flip_vertical(),
                Property::Mirror(false) => shown.flip_horizontal(),
                _ => shown,
            };
        }
        Ok(shown)
    }

    /// A coded picture, cut to the size its `ispe` declares (what is coded past it is padding).
    fn coded(&self, id: ItemId) -> Result<Shown, String> {
        let (frame, colour, size) = self.picture(id)?;
        let mut image = RgbImage::new(size.0.div_ceil(self.scale), size.1.div_ceil(self.scale));
        self.convert(&frame, colour, &mut image, (0, 0), size)?;
        Ok(Shown::new(image, size, self.scale))
    }

    /// Converts `size` pixels of a picture into `out` at `at` (full pixels), reduced by
    /// [`Decoder::scale`].
    fn convert(
        &self,
        frame: &Frame,
        colour: Colour,
        out: &mut RgbImage,
        at: (u32, u32),
        size: (u32, u32),
    ) -> Result<(), String> {
        if self.scale == 1 {
            return convert(frame, colour, out, at, size);
        }
        let at = (at.0 / self.scale, at.1 / self.scale);
        convert_reduced(frame, colour, out, at, size, self.scale)
    }

    /// A coded item's decoded picture, its colour description and the size it shows.
    fn picture(&self, id: ItemId) -> Result<(Frame, Colour, (u32, u32)), String> {
        let stream = self.file.hevc_bitstream(id).map_err(container)?;
        let options = DecodeOptions {
            max_pixels: self.limit,
            skip_loop_filters: self.scale > 1,
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

    /// `image` reduced `scale` times: each pixel the mean of the block it covers, blocks cut
    /// at the right and bottom edges.
    fn block_means(image: &RgbImage, scale: u32) -> Vec<[u32; 3]> {
        let (w, h) = image.dimensions();
        let mut out = Vec::new();
        for by in 0..h.div_ceil(scale) {
            for bx in 0..w.div_ceil(scale) {
                let (mut sum, mut n) = ([0u32; 3], 0);
                for y in by * scale..((by + 1) * scale).min(h) {
                    for x in bx * scale..((bx + 1) * scale).min(w) {
                        let p = image.get_pixel(x, y).0;
                        (0..3).for_each(|c| sum[c] += u32::from(p[c]));
                        n += 1;
                    }
                }
                out.push(sum.map(|v| v * 1000 / n));
            }
        }
        out
    }

    /// The means of the blocks of `image` that start `lead` pixels before it.
    fn block_means_led(image: &RgbImage, scale: u32, lead: (u32, u32)) -> Vec<[u32; 3]> {
        let (w, h) = image.dimensions();
        let mut padded = image::ImageBuffer::<image::Rgb<u8>, Vec<u8>>::new(w + lead.0, h + lead.1);
        imageops::replace(&mut padded, image, i64::from(lead.0), i64::from(lead.1));
        // Means over the pixels of the photo only: count them apart from the padding.
        let (pw, ph) = padded.dimensions();
        let mut out = Vec::new();
        for by in 0..ph.div_ceil(scale) {
            for bx in 0..pw.div_ceil(scale) {
                let (mut sum, mut n) = ([0u32; 3], 0);
                for y in (by * scale).max(lead.1)..((by + 1) * scale).min(ph) {
                    for x in (bx * scale).max(lead.0)..((bx + 1) * scale).min(pw) {
                        let p = padded.get_pixel(x, y).0;
                        (0..3).for_each(|c| sum[c] += u32::from(p[c]));
                        n += 1;
                    }
                }
                out.push(sum.map(|v| v * 1000 / n.max(1)));
            }
        }
        out
    }

    #[test]
    fn a_turned_reduced_image_says_where_its_partial_blocks_went() {
        // 11×7 photo pixels in blocks of 4: the last column and row of blocks are partial.
        let photo = RgbImage::from_fn(11, 7, |x, y| {
            image::Rgb([(x * 20) as u8, (y * 30) as u8, (x * y) as u8])
        });
        let scale = 4;
        let reduced = |p: &RgbImage| {
            let means = block_means(p, scale);
            let (w, h) = (p.width().div_ceil(scale), p.height().div_ceil(scale));
            // Stored at 1/1000 precision to compare means exactly.
            let mut image = image::ImageBuffer::<image::Rgb<u8>, Vec<u8>>::new(w, h);
            for (i, m) in means.iter().enumerate() {
                image.put_pixel(
                    i as u32 % w,
                    i as u32 / w,
                    image::Rgb(m.map(|v| (v / 1000) as u8)),
                );
            }
            image
        };
        type Turn = (&'static str, fn(Shown) -> Shown, fn(&RgbImage) -> RgbImage);
        let turns: [Turn; 5] = [
            ("rotate90", Shown::rotate90, |i| imageops::rotate90(i)),
            ("rotate180", Shown::rotate180, |i| imageops::rotate180(i)),
            ("rotate270", Shown::rotate270, |i| imageops::rotate270(i)),
            ("flip_horizontal", Shown::flip_horizontal, |i| {
                imageops::flip_horizontal(i)
            }),
            ("flip_vertical", Shown::flip_vertical, |i| {
                imageops::flip_vertical(i)
            }),
        ];
        let mut leads = Vec::new();
        for (name, turn_shown, turn_image) in turns {
            let shown = turn_shown(Shown::new(reduced(&photo), photo.dimensions(), scale));
            let turned = turn_image(&photo);
            assert_eq!(shown.size, turned.dimensions(), "{name}");
            let lead = (shown.padding[0], shown.padding[1]);
            let want: Vec<[u32; 3]> = block_means_led(&turned, scale, lead)
                .into_iter()
                .map(|m| m.map(|v| v / 1000))
                .collect();
            let got: Vec<[u32; 3]> = shown.image.pixels().map(|p| p.0.map(u32::from)).collect();
            assert_eq!(got, want, "{name}: lead {lead:?}");
            leads.push(lead);
        }
        // Every turn but the plain ones moves a partial block before the photo.
        assert!(
            leads.iter().filter(|l| **l != (0, 0)).count() >= 3,
            "{leads:?}"
        );
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
