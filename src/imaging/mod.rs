//! Images in: safe decoding (EXIF orientation, size guards, reduced-size JPEG decoding) and CLIP's
//! preprocessing.

pub mod decode;
pub mod heif;
pub mod jpeg;
pub mod orientation;
pub mod preprocess;
pub mod raw;
pub mod scaled_jpeg;

pub use decode::{
    Decoded, decode_bytes, decode_file, decode_named, is_photo, read_photo, sniff_format,
};
pub use preprocess::{Pixels, preprocess, preprocess_scaled};

/// What cliptag's decoders read, named so that a library indexed by an older cliptag tries its
/// failed files again once the decoders have learnt something (HEIC, for one). Change it
/// whenever a file that failed before may now decode.
pub const DECODERS: &str =
    "4: JPEG (with arithmetic coding) PNG WebP GIF BMP TIFF, HEIC/HEIF, camera RAW previews";

/// The reason recorded for a photo whose processing panicked: a bug in cliptag, reported as that
/// photo's failure so that the run goes on and the photo is not left waiting.
pub fn internal_error_reason(panic: &(dyn std::any::Any + Send)) -> String {
    format!(
        "internal error while reading this photo: {}; please report it",
        crate::error::panic_message(panic)
    )
}
