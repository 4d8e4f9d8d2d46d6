//! JPEG specifics: telling a complete file from a truncated one, and decoding large photos at a
//! reduced size straight from the DCT coefficients.

use image::RgbImage;

use crate::imaging::scaled_jpeg;

/// What a JPEG's frame header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// The start-of-frame marker's code (0xC0 baseline, 0xC2 progressive, 0xC9 arithmetic, …).
    marker: u8,
    /// Bits per sample.
    precision: u8,
    /// Whether a DHP segment (a hierarchical file's frame sizes) came before the frame.
    hierarchical: bool,
}

impl Frame {
    /// Why this JPEG is refused before any decoding, if it is: a valid kind cliptag cannot read
    /// yet (a file that is not damaged must not be called damaged), or a frame no valid file has.
    pub fn refusal(&self) -> Option<String> {
        let kind = match self.marker {
            0xC0 if self.precision != 8 => {
                return Some(format!(
                    "damaged JPEG: a baseline frame of {} bits per sample (baseline is 8)",
                    self.precision
                ));
            }
            0xC3 | 0xC7 | 0xCB | 0xCF => "lossless JPEG",
            0xC5 | 0xC6 | 0xCD | 0xCE => "hierarchical JPEG",
            _ if self.hierarchical => "hierarchical JPEG",
            _ if !matches!(self.precision, 8 | 12) => {
                return Some(format!(
                    "damaged JPEG: a frame of {} bits per sample (8 or 12 are valid)",
                    self.precision
                ));
            }
            _ if self.precision != 8 => {
                return Some(format!(
                    "{}-bit JPEG is not supported yet (8 bits per sample are)",
                    self.precision
                ));
            }
            _ => return None,
        };
        Some(format!("{kind} is not supported yet"))
    }

    /// Whether the entropy coding is arithmetic (sequential or progressive).
    pub fn arithmetic(&self) -> bool {
        matches!(self.marker, 0xC9 | 0xCA)
    }
}

/// The DCT size (1, 2, 4 or 8 pixels a block side) that keeps a short side of `short` pixels at
/// least `min_short_side` long: the smallest, where a reduction of at least 2× is possible.
pub fn reduced_dct(short: u32, min_short_side: Option<u32>) -> u8 {
    let Some(min) = min_short_side.filter(|&min| short >= 2 * min) else {
        return 8;
    };
    [1, 2, 4]
        .into_iter()
        .find(|&dct| (short * u32::from(dct)).div_ceil(8) >= min)
        .unwrap_or(8)
}

const CMYK_ARITHMETIC: &str = "arithmetic-coded CMYK JPEG is not supported yet";

/// libjpeg's error handling for cliptag's decodes: a fatal error unwinds with its message, as
/// the mozjpeg crate's own handler does, and so does a warning. libjpeg warns about corrupt data
/// ("bad arithmetic code", a marker in the middle of a scan) and decodes on into noise, which
/// would be stored as the photo (and differently at each reduced size); such a file is damaged.
fn strict_errors() -> mozjpeg_sys::jpeg_error_mgr {
    #[cold]
    extern "C-unwind" fn fail(cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
        std::panic::resume_unwind(Box::new(libjpeg_message(cinfo)));
    }
    #[cold]
    extern "C-unwind" fn warn(cinfo: &mut mozjpeg_sys::jpeg_common_struct, level: std::ffi::c_int) {
        // Level 0 and up are trace messages; below 0, corrupt data.
        if level < 0 {
            std::panic::resume_unwind(Box::new(libjpeg_message(cinfo)));
        }
    }
    // SAFETY: an all-zero `jpeg_error_mgr` is a valid value of the C struct (null function
    // pointers and tables, zero counts); `jpeg_std_error` then fills in every field.
    let mut errors: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `errors` is a live, exclusively borrowed `jpeg_error_mgr`, which is all
    // `jpeg_std_error` writes to.
    unsafe { mozjpeg_sys::jpeg_std_error(&mut errors) };
    errors.error_exit = Some(fail);
    errors.emit_message = Some(warn);
    errors
}

/// The text of libjpeg's last message.
fn libjpeg_message(cinfo: &mut mozjpeg_sys::jpeg_common_struct) -> String {
    type Shared = unsafe extern "C-unwind" fn(&mut mozjpeg_sys::jpeg_common_struct, &[u8; 80]);
    type Writes = unsafe extern "C-unwind" fn(&mut mozjpeg_sys::jpeg_common_struct, &mut [u8; 80]);
    let mut buffer = [0u8; 80];
    // SAFETY: libjpeg calls the handlers with `cinfo.err` pointing at the error manager
    // `strict_errors` made, whose `format_message` is libjpeg's own. That C function writes at
    // most 80 bytes, NUL-terminated, into the buffer it is given, so it is called through a type
    // that passes the buffer mutably (the binding declares it shared); both types pass one thin
    // pointer, so the call is the same.
    let formatted = unsafe {
        cinfo
            .err
            .as_ref()
            .and_then(|err| err.format_message)
            .map(|format| {
                let format = std::mem::transmute::<Shared, Writes>(format);
                format(cinfo, &mut buffer);
            })
    };
    match formatted {
        Some(()) => {
            let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
            String::from_utf8_lossy(&buffer[..end]).into_owned()
        }
        None => "libjpeg could not decode it".into(),
    }
}

/// Decodes an arithmetic-coded JPEG, sequential or progressive, with libjpeg's decoder (what
/// PIL uses), each 8×8 block reduced to `dct × dct` pixels (8: full size).
pub fn decode_arithmetic(bytes: &[u8], dct: u8) -> Result<RgbImage, String> {
    let decode = || -> std::io::Result<Option<RgbImage>> {
        let mut decoder = mozjpeg::Decompress::with_err(strict_errors()).from_mem(bytes)?;
        if matches!(
            decoder.color_space(),
            mozjpeg_sys::J_COLOR_SPACE::JCS_CMYK | mozjpeg_sys::J_COLOR_SPACE::JCS_YCCK
        ) {
            return Err(std::io::Error::other(CMYK_ARITHMETIC));
        }
        decoder.scale(dct);
        let mut started = decoder.rgb()?;
        let (width, height) = (started.width() as u32, started.height() as u32);
        let pixels = started.read_scanlines::<u8>()?;
        started.finish()?;
        Ok(RgbImage::from_raw(width, height, pixels))
    };
    // libjpeg's fatal errors unwind (without the panic hook) out of its error handler.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)) {
        Ok(Ok(Some(image))) => Ok(image),
        Ok(Ok(None)) => Err("damaged JPEG: decoded size does not match its header".into()),
        Ok(Err(e)) if e.to_string() == CMYK_ARITHMETIC => Err(CMYK_ARITHMETIC.into()),
        Ok(Err(e)) => Err(format!("damaged JPEG: {e}")),
        Err(panic) => Err(format!(
            "damaged JPEG: {}",
            crate::error::panic_message(panic.as_ref())
        )),
    }
}

/// Walks a JPEG's marker segments and entropy-coded scans up to the end-of-image marker;
/// returns what its frame header declares, if it has one.
///
/// The image crate's decoder fills a truncated file's missing rows with grey and reports success,
/// which would index half a photo without complaint; this check finds the truncation instead. An
/// EXIF thumbnail's own end marker does not count: APP segments are skipped by their length.
pub fn check_complete(bytes: &[u8]) -> Result<Option<Frame>, String> {
    const TRUNCATED: &str = "damaged JPEG: the file ends before the image does (truncated?)";
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err("not a JPEG file".into());
    }
    let mut pos = 2;
    let mut frame = None;
    let mut hierarchical = false;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if pos >= bytes.len() || bytes[pos] != 0xFF {
            return Err(if pos >= bytes.len() {
                TRUNCATED.into()
            } else {
                format!("damaged JPEG: no marker at byte {pos}")
            });
        }
        while pos < bytes.len() && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return Err(TRUNCATED.into());
        };
        pos += 1;
        match marker {
            0xD9 => return Ok(frame),
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes.get(pos..pos + 2) else {
            return Err(TRUNCATED.into());
        };
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        if len < 2 {
            return Err(format!("damaged JPEG: bad segment length at byte {pos}"));
        }
        // Start-of-frame markers (every kind but the DHT, JPG and DAC codes in their range).
        let start_of_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if start_of_frame
            && frame.is_none()
            && let Some(header) = bytes.get(pos + 2..pos + 7)
        {
            frame = Some(Frame {
                width: u32::from(u16::from_be_bytes([header[3], header[4]])),
                height: u32::from(u16::from_be_bytes([header[1], header[2]])),
                marker,
                precision: header[0],
                hierarchical,
            });
        }
        hierarchical |= marker == 0xDE;
        pos += len;
        if pos > bytes.len() {
            return Err(TRUNCATED.into());
        }
        if marker == 0xDA {
            // Entropy-coded data runs until a 0xFF that is neither a stuffed 0x00 nor a restart
            // marker.
            loop {
                let Some(offset) = memchr::memchr(0xFF, &bytes[pos..]) else {
                    return Err(TRUNCATED.into());
                };
                pos += offset;
                match bytes.get(pos + 1) {
                    None => return Err(TRUNCATED.into()),
                    Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// A decoded reduced-size JPEG, as stored (before any EXIF orientation).
pub struct Scaled {
    pub image: RgbImage,
    /// Full-size pixels per decoded pixel along each side (8 / the DCT size decoded: 2, 4 or 8).
    pub scale: u32,
    /// Whether cliptag's own coefficient-skipping decoder made it (otherwise jpeg-decoder did:
    /// a form it declines, or a file it found damaged).
    pub skipped_coefficients: bool,
}

/// Decodes a JPEG at the smallest of the 1/8 … 8/8 DCT scales whose short side is still at
/// least `min_short_side`, or returns `None` when no reduction is possible (the image is already
/// small, or its colour model is one the reduced path does not handle). The caller then decodes
/// it at full size.
///
/// Baseline YCbCr and grey JPEGs (what cameras and phones write) go through
/// [`scaled_jpeg`], which reads only the coefficients the reduced size uses; every other file,
/// and any it declines, through jpeg-decoder's scaled decoding.
pub fn decode_reduced(bytes: &[u8], min_short_side: u32) -> Result<Option<Scaled>, String> {
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    decoder
        .read_info()
        .map_err(|e| format!("damaged JPEG: {e}"))?;
    let info = decoder.info().ok_or("damaged JPEG: no frame header")?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let short = width.min(height);
    // Reduce only when at least a 2× smaller scale keeps the short side large enough.
    if short < 2 * min_short_side {
        return Ok(None);
    }
    if !matches!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
    ) {
        return Ok(None);
    }
    let ratio = f64::from(min_short_side) / f64::from(short);
    let want_w = ((f64::from(width) * ratio).ceil() as u32).clamp(1, u32::from(u16::MAX)) as u16;
    let want_h = ((f64::from(height) * ratio).ceil() as u32).clamp(1, u32::from(u16::MAX)) as u16;
    let idct_size = idct_size(info.width, info.height, want_w, want_h);
    if let Some(reduced) = scaled_jpeg::decode(bytes, idct_size) {
        let rgb = match reduced.components {
            3 => reduced.data,
            _ => reduced.data.iter().flat_map(|v| [*v, *v, *v]).collect(),
        };
        let image = RgbImage::from_raw(reduced.width, reduced.height, rgb)
            .ok_or("damaged JPEG: decoded size does not match its header")?;
        return Ok(Some(Scaled {
            image,
            scale: 8 / idct_size as u32,
            skipped_coefficients: true,
        }));
    }
    let (out_w, out_h) = decoder
        .scale(want_w, want_h)
        .map_err(|e| format!("damaged JPEG: {e}"))?;
    let pixels = decoder.decode().map_err(|e| format!("damaged JPEG: {e}"))?;
    let info = decoder.info().ok_or("damaged JPEG: no frame header")?;
    let (out_w, out_h) = (u32::from(out_w), u32::from(out_h));
    // The DCT size jpeg-decoder chose, read back from the size it gives.
    // (`info` now gives the decoded size; `width` and `height` are the frame's own.)
    let blocks = |len: u32, s: u32| (len * s).div_ceil(8);
    let Some(dct) = [1, 2, 4, 8]
        .into_iter()
        .find(|&s| blocks(width, s) == out_w && blocks(height, s) == out_h)
    else {
        return Ok(None);
    };
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|v| [*v, *v, *v]).collect(),
        _ => return Ok(None),
    };
    let image = RgbImage::from_raw(out_w, out_h, rgb)
        .ok_or("damaged JPEG: decoded size does not match its header")?;
    Ok(Some(Scaled {
        image,
        scale: 8 / dct,
        skipped_coefficients: false,
    }))
}

/// The reduced DCT size (1, 2, 4 or 8 pixels a block side) jpeg-decoder's `scale` picks for a
/// wanted size: the smallest that reaches it in either direction.
fn idct_size(width: u16, height: u16, want_w: u16, want_h: u16) -> usize {
    let scaled = |len: u16, scale: u32| (u32::from(len) * scale - 1) / 8 + 1;
    [1, 2, 4]
        .into_iter()
        .find(|&s| scaled(width, s) >= u32::from(want_w) || scaled(height, s) >= u32::from(want_h))
        .unwrap_or(8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg() -> Vec<u8> {
        let img = RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 0]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn complete_jpeg_passes_and_every_truncation_fails() {
        let bytes = tiny_jpeg();
        assert_eq!(
            check_complete(&bytes).map(|f| f.map(|f| (f.width, f.height))),
            Ok(Some((16, 16)))
        );
        for cut in 0..bytes.len() {
            assert!(
                check_complete(&bytes[..cut]).is_err(),
                "cut at {cut} passed"
            );
        }
    }

    /// Valid kinds cliptag cannot read are "not supported yet"; a baseline frame of 12 bits,
    /// which no valid file has, is damaged; arithmetic coding is read.
    #[test]
    fn frames_are_refused_by_kind_and_precision() {
        let frame = |marker, precision| Frame {
            width: 8,
            height: 8,
            marker,
            precision,
            hierarchical: false,
        };
        let says = |f: Frame| f.refusal().unwrap_or_default();
        assert_eq!(says(frame(0xC3, 8)), "lossless JPEG is not supported yet");
        assert_eq!(says(frame(0xCB, 8)), "lossless JPEG is not supported yet");
        assert_eq!(
            says(frame(0xC5, 8)),
            "hierarchical JPEG is not supported yet"
        );
        assert!(says(frame(0xC1, 12)).starts_with("12-bit JPEG is not supported yet"));
        assert!(says(frame(0xC0, 12)).starts_with("damaged JPEG"));
        assert!(says(frame(0xC9, 16)).starts_with("damaged JPEG"));
        assert!(says(frame(0xC9, 0)).starts_with("damaged JPEG"));
        let with_dhp = Frame {
            hierarchical: true,
            ..frame(0xC0, 8)
        };
        assert_eq!(says(with_dhp), "hierarchical JPEG is not supported yet");
        for marker in [0xC0, 0xC1, 0xC2, 0xC9, 0xCA] {
            assert_eq!(frame(marker, 8).refusal(), None, "{marker:x}");
        }
        assert!(frame(0xC9, 8).arithmetic() && frame(0xCA, 8).arithmetic());
    }

    #[test]
    fn trailing_data_after_the_end_marker_is_allowed() {
        let mut bytes = tiny_jpeg();
        bytes.extend_from_slice(b"camera maker trailer");
        assert_eq!(
            check_complete(&bytes).map(|f| f.map(|f| (f.width, f.height))),
            Ok(Some((16, 16)))
        );
    }
}
