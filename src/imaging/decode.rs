//! Turning an image file into upright RGB pixels without ever panicking or exhausting memory.
//!
//! Every failure names the file and says why in words a photographer can act on. Dimensions are
//! checked before any pixel buffer is allocated (a 100-byte PNG can declare 100000×100000 pixels,
//! and an allocation that size aborts the process, which no `catch_unwind` can stop); decoder
//! panics are caught and reported as damaged files; truncated JPEGs are detected even though the
//! decoder would fill them in.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::{Error, Result};
use crate::imaging::{heif, jpeg, orientation, raw};

/// The most pixels cliptag decodes in one image (about PIL's decompression-bomb limit).
pub const MAX_PIXELS: u64 = 180_000_000;
/// The most bytes a decoder may hold at once.
const MAX_ALLOC: u64 = 1 << 30;

/// The formats cliptag indexes.
pub const FORMATS: [ImageFormat; 6] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Gif,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];

/// An image ready for preprocessing, with the size it is shown at (after EXIF orientation).
pub struct Decoded {
    pub image: RgbImage,
    /// Width and height of the photo as displayed, before any reduced-size decoding.
    pub display_size: (u32, u32),
    /// Displayed pixels per decoded pixel along each side: 1 for a full decode, 2, 4 or 8 for a
    /// JPEG decoded at a reduced DCT scale.
    pub scale: u32,
    /// Displayed pixels of the decoded image before the photo's first column and row: a reduced
    /// decode's partly-padding last block, where orientation turned it to the top or left.
    pub lead: (u32, u32),
}

impl Decoded {
    /// Whether the pixels came from reduced-size DCT decoding.
    pub fn reduced(&self) -> bool {
        self.scale > 1
    }

    /// The model's input for this photo: the geometry of the photo at its displayed size, filled
    /// from the decoded pixels (see [`crate::imaging::preprocess_scaled`]).
    pub fn preprocess(
        &self,
        config: &crate::model::config::PreprocessConfig,
    ) -> crate::imaging::Pixels {
        crate::imaging::preprocess_scaled(
            &self.image,
            self.display_size,
            self.scale,
            self.lead,
            config,
        )
    }
}

/// The format of `bytes` judged by their content, if it is one the image crate decodes for
/// cliptag.
pub fn sniff_format(bytes: &[u8]) -> Option<ImageFormat> {
    image::guess_format(bytes)
        .ok()
        .filter(|f| FORMATS.contains(f))
}

/// Whether `bytes` start like a photo cliptag indexes (any of [`FORMATS`], HEIC/HEIF, or a
/// camera RAW).
pub fn is_photo(bytes: &[u8]) -> bool {
    sniff_format(bytes).is_some() || heif::is_heif(bytes) || raw::sniff(bytes).is_some()
}

/// The smallest embedded preview a camera RAW is tagged from, on its short side: the input of
/// the models cliptag runs. A smaller one would be enlarged, and tags from it would mislead.
pub const MIN_PREVIEW_SIDE: u32 = 224;

/// Reads and decodes the image at `path`.
///
/// With `reduce_to = Some(n)`, a large JPEG is decoded at the smallest DCT scale whose short side
/// stays at least `2 n` pixels; every other image is decoded at full size.
pub fn decode_file(path: &Path, reduce_to: Option<u32>) -> Result<Decoded> {
    let bytes = read_photo(path).map_err(|reason| Error::image(path, reason))?;
    decode_named(&bytes, path, reduce_to).map_err(|reason| Error::image(path, reason))
}

/// Decodes the bytes of the file at `path`, whose name says what its content may not: a TIFF
/// named `.srw` or `.iiq` is looked into for a RAW's previews even without the signatures
/// [`raw::recognise`] looks for (and read as the TIFF it is if it has none).
pub fn decode_named(
    bytes: &[u8],
    path: &Path,
    reduce_to: Option<u32>,
) -> std::result::Result<Decoded, String> {
    let named_raw = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(raw::is_raw_extension);
    decode_photo(bytes, named_raw, reduce_to)
}

/// The largest file read as a photo: well above any camera's (a 180-megapixel 16-bit TIFF is
/// about 1 GB), far below what would exhaust a laptop's memory.
pub const MAX_PHOTO_BYTES: u64 = 2 << 30;

/// Reads a file that should be a photo; the error is the reason alone. Only a regular file is
/// read (a pipe would wait forever, a device never end), and its first bytes decide: a large
/// file that is not an image (a disk image named `.jpg`) is refused without being read.
pub fn read_photo(path: &Path) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file (a folder, a pipe or a device)".into());
    }
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if read == 0 {
        return Err("empty file (0 bytes)".into());
    }
    // Any image format is read on (the decoder then names one it does not support); anything
    // else is not.
    if image::guess_format(&head[..read]).is_err()
        && !heif::is_heif(&head[..read])
        && raw::sniff(&head[..read]).is_none()
    {
        let unsupported = path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(raw::unsupported);
        return Err(match unsupported {
            Some(format) => format!(
                "{format} camera RAW files are not supported yet (cliptag reads the previews \
                 of CR2, CR3, NEF, ARW, DNG, ORF, RW2, RAF, PEF and other TIFF-based RAWs)"
            ),
            None => "not an image (unrecognised content)".into(),
        });
    }
    if meta.len() > MAX_PHOTO_BYTES {
        return Err(format!(
            "too large to read as a photo ({:.1} GB; at most {} GB)",
            meta.len() as f64 / 1e9,
            MAX_PHOTO_BYTES >> 30
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    bytes.extend_from_slice(&head[..read]);
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Decodes an image held in memory; the error is the reason alone, for the caller to attach the
/// file's path.
pub fn decode_bytes(bytes: &[u8], reduce_to: Option<u32>) -> std::result::Result<Decoded, String> {
    decode_photo(bytes, false, reduce_to)
}

fn decode_photo(
    bytes: &[u8],
    named_raw: bool,
    reduce_to: Option<u32>,
) -> std::result::Result<Decoded, String> {
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    let by_content = raw::recognise(bytes, false);
    let by_name = by_content.is_none() && named_raw;
    if let Some(kind) = by_content.or_else(|| raw::recognise(bytes, by_name)) {
        let decode = || decode_raw(bytes, kind, by_name, reduce_to);
        return match catch_unwind(AssertUnwindSafe(decode)) {
            Ok(result) => result,
            Err(_) => Err(format!(
                "damaged camera RAW ({}) file: the decoder failed",
                kind.name()
            )),
        };
    }
    if heif::is_heif(bytes) {
        return match catch_unwind(AssertUnwindSafe(|| {
            heif::decode(bytes, check_size, reduce_to)
        })) {
            Ok(result) => result,
            Err(_) => Err("damaged HEIF file: the decoder failed".into()),
        };
    }
    let format = match image::guess_format(bytes) {
        Ok(format) if FORMATS.contains(&format) => format,
        Ok(format) => {
            return Err(format!("{format:?} images are not supported"));
        }
        Err(_) => return Err("not an image (unrecognised content)".into()),
    };
    match catch_unwind(AssertUnwindSafe(|| {
        decode_format(bytes, format, reduce_to, None)
    })) {
        Ok(result) => result,
        Err(_) => Err(format!(
            "damaged {} file: the decoder failed",
            format_name(format)
        )),
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        _ => "image",
    }
}

/// A camera RAW, from the largest of its embedded JPEGs that decodes and is large enough to tag,
/// turned by the RAW's own orientation. `by_name_only`: the file was taken for a RAW by its
/// name, its content having no RAW signature.
fn decode_raw(
    bytes: &[u8],
    kind: raw::Kind,
    by_name_only: bool,
    reduce_to: Option<u32>,
) -> std::result::Result<Decoded, String> {
    let name = kind.name();
    let previews = raw::previews(bytes, kind)?;
    if by_name_only && previews.jpegs.is_empty() && !previews.cut {
        // A TIFF named like a RAW, with neither sensor data nor a preview: the TIFF it is.
        return decode_format(bytes, ImageFormat::Tiff, reduce_to, None);
    }
    // Each JPEG with the size its frame declares, largest first; those whose header is already
    // wrong are set aside with their reason.
    let mut sized: Vec<(u32, u32, &[u8])> = Vec::new();
    let mut reasons = Vec::new();
    for jpeg in &previews.jpegs {
        match jpeg::check_complete(jpeg) {
            Ok(Some(frame)) => match frame.refusal() {
                None => sized.push((frame.width, frame.height, jpeg)),
                Some(reason) => reasons.push(reason),
            },
            Ok(None) => reasons.push("damaged JPEG: it has no frame".to_string()),
            Err(reason) => reasons.push(reason),
        }
    }
    sized.sort_by_key(|&(w, h, _)| std::cmp::Reverse(u64::from(w) * u64::from(h)));
    // The largest preview too small to tag, as displayed; a smaller but squarer one may still do.
    let mut too_small = None;
    for (width, height, jpeg) in sized {
        if width.min(height) < MIN_PREVIEW_SIDE {
            let turns = previews.orientation.is_some_and(orientation::turns);
            too_small.get_or_insert(if turns {
                (height, width)
            } else {
                (width, height)
            });
            continue;
        }
        match decode_format(jpeg, ImageFormat::Jpeg, reduce_to, previews.orientation) {
            Ok(decoded) => return Ok(decoded),
            Err(reason) => reasons.push(reason),
        }
    }
    Err(match (too_small, reasons.as_slice()) {
        (Some((width, height)), []) => format!(
            "camera RAW ({name}): its largest embedded preview is {width}×{height}, too small \
             to tag (cliptag reads RAW files from their previews)"
        ),
        (Some((width, height)), [reason, ..]) => format!(
            "camera RAW ({name}): its largest readable embedded preview is {width}×{height}, \
             too small to tag, and a larger one could not be read ({reason})"
        ),
        (None, [reason]) => {
            format!("camera RAW ({name}): its embedded preview could not be read ({reason})")
        }
        (None, [reason, ..]) => format!(
            "camera RAW ({name}): none of its {} embedded previews could be read (the first: \
             {reason})",
            reasons.len()
        ),
        (None, []) if previews.cut => format!(
            "damaged camera RAW ({name}) file: its preview lies past the end of the file \
             (truncated?)"
        ),
        (None, []) => format!(
            "camera RAW ({name}) with no embedded preview: cliptag reads RAW files from their \
             previews and cannot decode the sensor data yet"
        ),
    })
}

/// Decodes an image of `format`; `turn`, where given, is the orientation to show it in, in
/// place of what its own metadata asks (a RAW's preview takes the RAW's).
fn decode_format(
    bytes: &[u8],
    format: ImageFormat,
    reduce_to: Option<u32>,
    turn: Option<image::metadata::Orientation>,
) -> std::result::Result<Decoded, String> {
    if format == ImageFormat::Jpeg {
        // The declared size is checked before anything is decoded: reduced-size decoding of a
        // header claiming a billion pixels would otherwise take tens of seconds.
        let frame = jpeg::check_complete(bytes)?;
        if let Some(frame) = frame {
            if let Some(reason) = frame.refusal() {
                return Err(reason);
            }
            check_size(frame.width, frame.height)?;
            if frame.arithmetic() {
                // Neither jpeg-decoder nor the image crate reads arithmetic coding; libjpeg does,
                // as for the reference pipeline, at a reduced size too.
                let (width, height) = (frame.width, frame.height);
                let min_short_side = reduce_to.map(|target| 2 * target);
                let dct = jpeg::reduced_dct(width.min(height), min_short_side);
                let stored = jpeg::decode_arithmetic(bytes, dct)?;
                return Ok(upright(
                    bytes,
                    format,
                    turn,
                    stored,
                    (width, height),
                    8 / u32::from(dct),
                ));
            }
        }
        // A file the reduced decoders refuse goes on to the full decode, which judges it as
        // `embed` does: one photo, one verdict, whichever way it is read.
        if let Some(target) = reduce_to
            && let Some(frame) = frame
            && let Ok(Some(scaled)) = jpeg::decode_reduced(bytes, 2 * target)
        {
            check_size(scaled.image.width(), scaled.image.height())?;
            let stored = (frame.width, frame.height);
            return Ok(upright(
                bytes,
                format,
                turn,
                scaled.image,
                stored,
                scaled.scale,
            ));
        }
    }
    let name = format_name(format);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(|e| describe(name, &e))?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    // `into_decoder` does not apply the allocation limit itself; `decode` would.
    limits()
        .reserve(decoder.total_bytes())
        .map_err(|_| format!("{width}×{height} pixels is too large to decode"))?;
    let orientation = turn
        .or_else(|| orientation::of(bytes, format))
        .unwrap_or_else(|| {
            decoder
                .orientation()
                .unwrap_or(image::metadata::Orientation::NoTransforms)
        });
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| describe(name, &e))?;
    image.apply_orientation(orientation);
    let display_size = (image.width(), image.height());
    Ok(Decoded {
        image: image.into_rgb8(),
        display_size,
        scale: 1,
        lead: (0, 0),
    })
}

/// A JPEG decoded at `1 / scale` of its stored size `(width, height)`, turned upright by its
/// EXIF orientation (or by `turn`, where given).
fn upright(
    bytes: &[u8],
    format: ImageFormat,
    turn: Option<image::metadata::Orientation>,
    stored: RgbImage,
    (width, height): (u32, u32),
    scale: u32,
) -> Decoded {
    let turn = turn
        .or_else(|| orientation::of(bytes, format))
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    // The last decoded column and row cover whole blocks, part of them past the photo.
    let padding = (
        (stored.width() * scale).saturating_sub(width),
        (stored.height() * scale).saturating_sub(height),
    );
    let mut image = DynamicImage::ImageRgb8(stored);
    image.apply_orientation(turn);
    let display_size = if orientation::turns(turn) {
        (height, width)
    } else {
        (width, height)
    };
    Decoded {
        image: image.into_rgb8(),
        display_size,
        scale,
        lead: orientation::leading_padding(turn, padding),
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(u32::from(u16::MAX) * 4);
    limits.max_image_height = Some(u32::from(u16::MAX) * 4);
    limits.max_alloc = Some(MAX_ALLOC);
    limits
}

fn check_size(width: u32, height: u32) -> std::result::Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("image has no pixels ({width}×{height})"));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "{width}×{height} pixels is more than the {} megapixels cliptag decodes (decompression bomb?)",
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

/// Words for a decoder error: what is wrong with the file, not the decoder's internals.
fn describe(format: &str, error: &image::ImageError) -> String {
    use image::ImageError as E;
    match error {
        E::Limits(_) => "image is too large to decode".into(),
        E::Unsupported(e) => format!("unsupported {format} variant: {e}"),
        E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("damaged {format} file: it ends too early (truncated?)")
        }
        other => format!("damaged {format} file: {other}"),
    }
}
