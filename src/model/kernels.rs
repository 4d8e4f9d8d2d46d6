//! The floating-point mode and thread pool the encoders run in.

/// Runs `f` on candle's thread pool with denormal floats flushed to zero on this thread (and on
/// any thread it starts, which inherits the mode).
///
/// Trained weights can produce denormals in attention, and x86 handles each one in microcode: one
/// measurement saw candle's matrix product slow down fifty-fold. Values that small (below 1e-38)
/// never change an embedding.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let previous = set_flush_denormals();
    let result = candle_core::Device::Cpu.with_context(f);
    restore_float_mode(previous);
    result
}

/// Keeps the encoders' large temporary buffers on the heap instead of mapping and unmapping
/// them on every operation.
///
/// glibc serves allocations over 128 KiB (growing dynamically to 32 MiB) with `mmap`, and
/// returns them with `munmap`; every layer's activations are that size, so each operation paid
/// for fresh, zero-filled pages. With these settings freed buffers are reused instead. Call
/// once, first thing in `main`.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation thresholds; called before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Flushes denormals to zero on the calling thread for good; threads it starts later inherit
/// the mode, so calling this first thing in `main` covers every compute thread.
pub fn flush_denormals_on_this_thread() {
    set_flush_denormals();
}

#[cfg(target_arch = "x86_64")]
#[allow(deprecated)] // _mm_getcsr/_mm_setcsr are deprecated in favour of inline assembly.
fn set_flush_denormals() -> u32 {
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    const FLUSH_TO_ZERO: u32 = 1 << 15;
    const DENORMALS_ARE_ZERO: u32 = 1 << 6;
    // SAFETY: reading and writing MXCSR only changes this thread's SSE rounding/denormal mode.
    unsafe {
        let previous = _mm_getcsr();
        _mm_setcsr(previous | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO);
        previous
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(deprecated)]
fn restore_float_mode(previous: u32) {
    // SAFETY: restores the value read by `set_flush_denormals` on this thread.
    unsafe { std::arch::x86_64::_mm_setcsr(previous) }
}

#[cfg(not(target_arch = "x86_64"))]
fn set_flush_denormals() -> u32 {
    0
}

#[cfg(not(target_arch = "x86_64"))]
fn restore_float_mode(_previous: u32) {}

#[cfg(test)]
mod tests {
    use crate::model::config::Activation;
    use crate::model::fused::{apply_activation, exp};

    #[test]
    fn activations_match_their_definitions() {
        let xs: Vec<f32> = (-1200..=1200).map(|i| i as f32 / 100.0).collect();
        for act in [
            Activation::QuickGelu,
            Activation::Gelu,
            Activation::GeluTanh,
        ] {
            let mut got = xs.clone();
            apply_activation(&mut got, act);
            for (x, y) in xs.iter().zip(&got) {
                let want = act.reference(*x as f64);
                assert!(
                    (*y as f64 - want).abs() < 2e-6 * (1.0 + want.abs()),
                    "{act:?}({x}) = {y}, want {want}"
                );
            }
        }
    }

    #[test]
    fn exp_is_accurate_over_the_float_range() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                (got - want).abs() <= 3e-7 * want,
                "exp({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn gelu_and_quick_gelu_differ() {
        let q = Activation::QuickGelu.reference(1.0);
        let g = Activation::Gelu.reference(1.0);
        assert!((q - g).abs() > 1e-3, "{q} vs {g}");
    }
}
