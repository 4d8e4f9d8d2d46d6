//! HEIF item assembly (grids, overlays, irot/imir/clap, the coded pictures) on any bytes, with
//! the size guard the indexer uses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cliptag::imaging::heif::decode(data, |w, h| {
        if u64::from(w) * u64::from(h) > 64 << 20 {
            Err("too large".into())
        } else {
            Ok(())
        }
    });
});
