//! A vocabulary file (`cliptag vocab import`) of any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ =
        cliptag::tagging::vocabulary_file::parse(text, "fuzz.toml", "openai/clip-vit-base-patch32");
});
