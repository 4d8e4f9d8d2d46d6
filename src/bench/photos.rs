//! The bench's generated photos: 12 MP JPEGs, and HEICs and camera RAWs made from them, kept
//! in the temporary folder between runs.

use std::path::{Path, PathBuf};

use super::{BenchArgs, Lcg};
use crate::imaging;

/// A 12-megapixel photo-like JPEG: smooth colour fields, edges and sensor-like noise, so that
/// its size and decoding cost resemble a camera's.
fn write_photo(path: &Path, seed: u64, width: u32, height: u32) -> anyhow::Result<()> {
    let (fx, fy) = (1.0 + (seed % 5) as f32, 1.0 + (seed % 3) as f32);
    let mut noise = Lcg(seed ^ 0x5DEECE66D);
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let base = [
            128.0 + 90.0 * (fx * 6.3 * u + v * 2.0).sin(),
            128.0 + 80.0 * (fy * 5.1 * v - u).cos(),
            128.0 + 70.0 * ((u + v) * 9.0 + seed as f32).sin(),
        ];
        let edge = if ((x / 97) + (y / 131)) % 7 == 0 {
            40.0
        } else {
            0.0
        };
        let n = (noise.next() % 24) as f32 - 12.0;
        image::Rgb(base.map(|b| (b + edge + n).clamp(0.0, 255.0) as u8))
    });
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90).encode_image(&image)?;
    Ok(())
}

/// The folder of 12 MP JPEGs, generated if it holds none.
pub(super) fn photo_folder(args: &BenchArgs) -> anyhow::Result<PathBuf> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("cliptag-bench-photos"));
    std::fs::create_dir_all(&dir)?;
    let existing = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        .count();
    if existing == 0 {
        println!(
            "generating {} 4000×3000 JPEGs in {} …",
            args.photos,
            dir.display()
        );
        for i in 0..args.photos {
            write_photo(
                &dir.join(format!("photo{i:04}.jpg")),
                i as u64 + 1,
                4000,
                3000,
            )?;
        }
    }
    Ok(dir)
}

/// The folder beside the JPEGs' named `…-{suffix}`, filled (when it holds no `.{ext}` file)
/// with one file per JPEG of `from`, named by `name` from its number and made by `make`.
fn derived_folder(
    jpegs: &Path,
    from: &[PathBuf],
    (suffix, ext, what): (&str, &str, &str),
    name: impl Fn(usize) -> String,
    make: impl Fn(&Path) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<PathBuf> {
    let mut dir = jpegs.as_os_str().to_os_string();
    dir.push(format!("-{suffix}"));
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    if files_with(&dir, ext)?.is_empty() {
        println!(
            "generating {} 4000×3000 {what} in {} …",
            from.len(),
            dir.display()
        );
        for (i, jpeg) in from.iter().enumerate() {
            std::fs::write(dir.join(name(i + 1)), make(jpeg)?)?;
        }
    }
    Ok(dir)
}

/// The folder of 12 MP HEICs beside the JPEGs' (`…-heic`), made from the first JPEGs as an
/// iPhone writes them (512×512 tiles, 8-bit 4:2:0) if it holds none.
pub(super) fn heic_folder(jpegs: &Path, from: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let name = |n| format!("IMG_{n:04}.HEIC");
    derived_folder(jpegs, from, ("heic", "heic", "HEICs"), name, |jpeg| {
        let image = imaging::decode_file(jpeg, None)?.image;
        let options = heifer::EncodeOptions {
            quality: 80,
            max_threads: 0,
        };
        Ok(heifer::encode_rgb8(
            image.width(),
            image.height(),
            image.as_raw(),
            &options,
        )?)
    })
}

/// The folder of camera RAWs beside the JPEGs' (`…-raw`), made from the first JPEGs as a Nikon
/// writes a NEF if it holds none: IFD0 with the maker and orientation, a SubIFD holding the
/// full-size JPEG (`JpgFromRaw`, here the bench's own JPEG) and a SubIFD of 16-bit sensor data
/// (a colour filter array), which is read from disk with the file but never decoded.
pub(super) fn raw_folder(jpegs: &Path, from: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let name = |n| format!("DSC_{n:04}.NEF");
    derived_folder(jpegs, from, ("raw", "nef", "NEFs"), name, |jpeg| {
        Ok(nef_like(&std::fs::read(jpeg)?, 4000, 3000))
    })
}

/// A little-endian TIFF laid out as a NEF: see [`raw_folder`].
fn nef_like(jpeg: &[u8], width: u32, height: u32) -> Vec<u8> {
    // (tag, type, count, value or offset): types 2 ASCII, 3 SHORT, 4 LONG.
    type Entry = (u16, u16, u32, u32);
    fn ifd(out: &mut Vec<u8>, entries: &[Entry]) {
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, kind, count, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    let size = |n: usize| 2 + 12 * n as u32 + 4;
    let make = b"NIKON CORPORATION\0";
    let ifd0_at = 8;
    let preview_ifd_at = ifd0_at + size(3);
    let sensor_ifd_at = preview_ifd_at + size(3);
    let make_at = sensor_ifd_at + size(9);
    let sub_ifds_at = make_at + make.len() as u32;
    let jpeg_at = sub_ifds_at + 8;
    let sensor_at = jpeg_at + jpeg.len() as u32;
    let sensor_len = width * height * 2;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&ifd0_at.to_le_bytes());
    ifd(
        &mut out,
        &[
            (0x010F, 2, make.len() as u32, make_at),
            (0x0112, 3, 1, 1),
            (0x014A, 4, 2, sub_ifds_at),
        ],
    );
    ifd(
        &mut out,
        &[
            (0x0103, 3, 1, 6),
            (0x0201, 4, 1, jpeg_at),
            (0x0202, 4, 1, jpeg.len() as u32),
        ],
    );
    ifd(
        &mut out,
        &[
            (0x00FE, 4, 1, 0),
            (0x0100, 4, 1, width),
            (0x0101, 4, 1, height),
            (0x0102, 3, 1, 16),
            (0x0103, 3, 1, 1),
            (0x0106, 3, 1, 32803),
            (0x0111, 4, 1, sensor_at),
            (0x0116, 4, 1, height),
            (0x0117, 4, 1, sensor_len),
        ],
    );
    out.extend_from_slice(make);
    out.extend_from_slice(&preview_ifd_at.to_le_bytes());
    out.extend_from_slice(&sensor_ifd_at.to_le_bytes());
    out.extend_from_slice(jpeg);
    // Sensor-like noise, so the file's size and reading cost are a camera's.
    let mut noise = Lcg(u64::from(sensor_len));
    out.extend((0..sensor_len / 4).flat_map(|_| noise.next().to_le_bytes()));
    out
}

/// The files in `dir` whose extension is `ext` (any case), sorted.
pub(super) fn files_with(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case(ext)))
        .collect();
    files.sort();
    Ok(files)
}
