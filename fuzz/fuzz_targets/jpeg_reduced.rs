//! cliptag's own reduced-size JPEG decoder (1/2, 1/4, 1/8 scale) and its frame checks, on any
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cliptag::imaging::jpeg::check_complete(data);
    let _ = cliptag::imaging::jpeg::decode_reduced(data, 224);
    for idct in [1, 2, 4] {
        let _ = cliptag::imaging::scaled_jpeg::decode(data, idct);
    }
});
