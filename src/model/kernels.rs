//! Elementwise kernels for the encoders, and the floating-point mode they run in.

use candle_core::Tensor;

use crate::model::config::Activation;

/// Applies the MLP activation.
pub fn activation(x: &Tensor, activation: Activation) -> candle_core::Result<Tensor> {
    match activation {
        Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
        Activation::Gelu => x.gelu_erf(),
        Activation::GeluTanh => x.gelu(),
    }
}

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
    use super::*;
    use candle_core::Device;

    #[test]
    fn activations_match_their_definitions() {
        let xs: Vec<f32> = (-80..=80).map(|i| i as f32 / 10.0).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        for act in [
            Activation::QuickGelu,
            Activation::Gelu,
            Activation::GeluTanh,
        ] {
            let got: Vec<f32> = activation(&t, act).unwrap().to_vec1().unwrap();
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
    fn gelu_and_quick_gelu_differ() {
        let q = Activation::QuickGelu.reference(1.0);
        let g = Activation::Gelu.reference(1.0);
        assert!((q - g).abs() > 1e-3, "{q} vs {g}");
    }
}
