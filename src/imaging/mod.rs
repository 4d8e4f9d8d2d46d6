//! Images in: safe decoding (EXIF orientation, size guards, reduced-size JPEG decoding) and CLIP's
//! preprocessing.

pub mod decode;
pub mod jpeg;
pub mod preprocess;

pub use decode::{Decoded, decode_bytes, decode_file, sniff_format};
pub use preprocess::{Pixels, preprocess};
