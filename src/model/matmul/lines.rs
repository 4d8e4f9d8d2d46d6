//! Buffers that start on a cache line.
//!
//! The kernels read weights and packed inputs 64 bytes at a time: a 512-bit load, or one row of
//! an AMX tile. A run of 64 bytes that starts inside a line touches two lines, and an AMX tile
//! load of 16 such rows runs several times slower than one of whole lines. `Vec<u16>` and
//! `Vec<f32>` promise only their values' alignment (glibc happens to give 16 bytes), so every
//! buffer a kernel streams through is one of these instead.

use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};

/// One cache line: what the buffer is allocated in, so the allocator aligns it.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// Values that are valid for any bytes, all zeros included, and own nothing.
///
/// # Safety
/// Every bit pattern of `size_of::<T>()` bytes is a valid `T`, `T` has no padding, and its
/// alignment divides 64.
pub(crate) unsafe trait Plain: Copy + Send + Sync + 'static {}
// SAFETY: integers and floats of every bit pattern are valid and have no padding.
unsafe impl Plain for u16 {}
// SAFETY: as for u16.
unsafe impl Plain for u32 {}
// SAFETY: as for u16.
unsafe impl Plain for f32 {}

/// `len` values of `T` whose first value starts a 64-byte cache line.
pub(crate) struct Lines<T: Plain> {
    lines: Vec<Line>,
    len: usize,
    _values: std::marker::PhantomData<T>,
}

impl<T: Plain> Lines<T> {
    fn line_count(len: usize) -> usize {
        (len * size_of::<T>()).div_ceil(size_of::<Line>())
    }

    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        Lines {
            lines: vec![Line([0; 64]); Self::line_count(len)],
            len,
            _values: std::marker::PhantomData,
        }
    }

    /// `len` values, each written by `fill`, which is handed them uninitialised: for buffers
    /// that a pass writes in full anyway, where zeroing them first would be a pass of its own.
    ///
    /// # Safety
    /// `fill` must write every one of the `len` values.
    pub(crate) unsafe fn filled_by(len: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Self {
        let count = Self::line_count(len);
        let mut lines: Vec<Line> = Vec::with_capacity(count);
        let spare = &mut lines.spare_capacity_mut()[..count];
        // The bytes past the last value are never handed out, but the lines are taken as
        // initialised below, so the last one starts as zeros.
        if let Some(last) = spare.last_mut() {
            last.write(Line([0; 64]));
        }
        // SAFETY: the `count` lines hold at least `len` values of `T` (whose alignment divides
        // the lines', `Plain`), and `MaybeUninit<T>` has `T`'s layout.
        let values = unsafe {
            std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<T>>(), len)
        };
        fill(values);
        // SAFETY: `fill` wrote the `len` values (the caller's contract), the bytes after them
        // lie in the last line, zeroed above, and any bytes are a valid `Line`.
        unsafe { lines.set_len(count) };
        Lines {
            lines,
            len,
            _values: std::marker::PhantomData,
        }
    }
}

impl<T: Plain> Deref for Lines<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the lines hold at least `len` initialised values of `T` (`Plain`: any bytes
        // are one), aligned, since a line's alignment is a multiple of `T`'s.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> DerefMut for Lines<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`, and `&mut self` borrows the lines exclusively; any value
        // written is a valid `T` and keeps the lines valid bytes.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_start_on_a_cache_line_and_keep_their_length() {
        for len in [0, 1, 31, 32, 33, 1000, 70_001] {
            let zeros = Lines::<u16>::zeroed(len);
            assert_eq!(zeros.len(), len);
            assert!(zeros.iter().all(|&v| v == 0));
            assert_eq!(zeros.as_ptr() as usize % 64, 0, "{len} u16s");
            // SAFETY: the closure writes every value.
            let counted = unsafe {
                Lines::<f32>::filled_by(len, |values| {
                    for (i, v) in values.iter_mut().enumerate() {
                        v.write(i as f32);
                    }
                })
            };
            assert_eq!(counted.len(), len);
            assert!(counted.iter().enumerate().all(|(i, &v)| v == i as f32));
            assert_eq!(counted.as_ptr() as usize % 64, 0, "{len} f32s");
        }
    }
}
