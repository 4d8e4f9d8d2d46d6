//! The sidecar merge on any existing sidecar text: it must either refuse the text or keep every
//! byte outside cliptag's keywords, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let words = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let merge = cliptag::export::xmp::Merge {
        wanted: cliptag::export::xmp::Keywords {
            subject: words(&["Beach", "Dog", "a&b <c>"]),
            hierarchical: words(&["Animals|Dog"]),
        },
        owned: cliptag::export::xmp::Keywords {
            subject: words(&["Dog", "Old"]),
            hierarchical: words(&["Animals|Old"]),
        },
    };
    if let Ok(merged) = cliptag::export::xmp::merge(Some(text), &merge) {
        // What cliptag wrote, it reads back the same way.
        let _ = cliptag::export::xmp::merge(Some(&merged.text), &merge);
    }
});
