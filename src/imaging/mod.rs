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

/// Cores that would otherwise idle, which a photo's decoding may borrow for its parts (the
/// grid tiles of a HEIC): the decode threads that ran out of photos at the end of an indexing
/// run, or every core but one for a single photo (`embed`).
static SPARE_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Offers `n` more idle cores to decoding.
pub fn lend_spare_threads(n: usize) {
    SPARE_THREADS.fetch_add(n, std::sync::atomic::Ordering::AcqRel);
}

/// Takes back up to `n` idle cores offered by [`lend_spare_threads`] (those not borrowed at the
/// moment stay counted until given back); returns how many it took.
pub fn withdraw_spare_threads(n: usize) -> usize {
    borrow_spare_threads(n)
}

/// Borrows up to `n` idle cores; give them back with [`lend_spare_threads`] when done.
pub(crate) fn borrow_spare_threads(n: usize) -> usize {
    use std::sync::atomic::Ordering;
    let mut taken = 0;
    let _ = SPARE_THREADS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |spare| {
        taken = spare.min(n);
        Some(spare - taken)
    });
    taken
}
