//! The camera RAW readers (TIFF directories and SubIFDs, maker notes, ISO-BMFF boxes, RAF's
//! header) on any bytes, as every kind they know, then the whole RAW decode.
#![no_main]

use cliptag::imaging::raw::{self, Kind};
use libfuzzer_sys::fuzz_target;

const KINDS: [Kind; 10] = [
    Kind::Dng,
    Kind::Cr2,
    Kind::Cr3,
    Kind::Nef,
    Kind::Arw,
    Kind::Orf,
    Kind::Rw2,
    Kind::Raf,
    Kind::Pef,
    Kind::Tiff,
];

fuzz_target!(|data: &[u8]| {
    let _ = raw::recognise(data, true);
    for kind in KINDS {
        if let Ok(previews) = raw::previews(data, kind) {
            // Every preview lies inside the file.
            for jpeg in previews.jpegs {
                let start = jpeg.as_ptr() as usize - data.as_ptr() as usize;
                assert!(start + jpeg.len() <= data.len());
            }
        }
    }
    let _ = cliptag::imaging::decode_bytes(data, Some(224));
});
