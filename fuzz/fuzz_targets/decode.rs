//! Any bytes as a photo: sniffing, every decoder, EXIF orientation, the size guards, and CLIP's
//! preprocessing of whatever decodes. A panic anywhere (even one cliptag would catch and report
//! as the photo's failure) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = cliptag::model::preprocess_config::PreprocessConfig::default();
    for reduce_to in [None, Some(224)] {
        if let Ok(decoded) = cliptag::imaging::decode_bytes(data, reduce_to) {
            let _ = decoded.preprocess(&config);
        }
    }
});
