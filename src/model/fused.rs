//! Fused CPU kernels for the encoders, run as candle custom ops.
//!
//! Each replaces several candle ops that would each read and write the whole activation matrix
//! and allocate a fresh buffer: a linear layer adds its bias and the residual inside the matrix
//! product and applies the activation in the same buffer; attention reads q, k and v straight
//! out of the fused projection and writes each head's output where the next projection reads it,
//! with no transposes in between.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

pub use crate::model::attention::Attention;
use crate::model::config::Activation;
use crate::model::matmul::half::{Format, PackedHalf};
use crate::model::matmul::{self, Around, Packed, Precision};

fn parallelism() -> gemm::Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

pub(crate) fn contiguous<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{what}: expected f32 input");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

/// A layer's weight, in the form the product reads.
enum Weights {
    /// `[outputs, inputs]`, row-major, as PyTorch stores it, for the `gemm` crate.
    Raw(Vec<f32>),
    /// In panels for this CPU's vector kernel.
    Packed(Packed),
    /// In a 16-bit format, in panels for its AVX-512 kernel.
    Half(PackedHalf),
}

/// `y = x Wᵀ + b (+ residual)`, then the activation, for `x` of shape `[rows, inputs]`.
pub struct Linear {
    weights: Weights,
    pub bias: Option<Vec<f32>>,
    pub inputs: usize,
    pub outputs: usize,
    pub activation: Option<Activation>,
}

impl Linear {
    /// A layer with `weight` `[outputs, inputs]`, packed once here for the CPU's kernel in the
    /// precision [`matmul::load_precision`] gives; the raw copy is not kept when packed.
    pub fn new(
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        inputs: usize,
        outputs: usize,
        activation: Option<Activation>,
    ) -> Linear {
        let precision = matmul::load_precision();
        let half = precision
            .format()
            .and_then(|format| PackedHalf::new(format, &weight, inputs, outputs));
        let weights = match (half, matmul::kernel()) {
            (Some(packed), _) => Weights::Half(packed),
            (None, Some(kernel)) => Weights::Packed(Packed::new(kernel, &weight, inputs, outputs)),
            (None, None) => Weights::Raw(weight),
        };
        Linear {
            weights,
            bias,
            inputs,
            outputs,
            activation,
        }
    }

    /// The arithmetic this layer multiplies in.
    pub fn precision(&self) -> Precision {
        match self.weights {
            Weights::Half(ref packed) => match packed.format() {
                Format::F16 => Precision::F16,
                Format::Bf16 => Precision::Bf16,
            },
            Weights::Raw(_) | Weights::Packed(_) => Precision::F32,
        }
    }

    fn run(&self, x: &[f32], residual: Option<&[f32]>) -> candle_core::Result<(CpuStorage, Shape)> {
        if !x.len().is_multiple_of(self.inputs) {
            candle_core::bail!("linear: input width is not {}", self.inputs);
        }
        let rows = x.len() / self.inputs;
        let out = self.outputs;
        if residual.is_some_and(|r| r.len() != rows * out) {
            candle_core::bail!("linear: residual has the wrong size");
        }
        let threads = rayon::current_num_threads();
        // The bias, the residual and the activation are applied by each thread to the output
        // columns it computes, around its share of the product (for the `gemm` crate, which
        // splits the product itself, in passes of their own).
        let finish = self
            .activation
            .map(|activation| move |xs: &mut [f32]| apply_activation(xs, activation));
        let finish = finish.as_ref().map(|f| f as &matmul::Finish);
        let around = Around::new(self.bias.as_deref(), residual, finish);
        let dst = match &self.weights {
            Weights::Packed(packed) => packed.multiply_into(x, threads, &around),
            Weights::Half(packed) => packed.multiply_into(x, threads, &around),
            Weights::Raw(weight) => {
                let mut dst = around.started(rows, out);
                self.gemm(weight, x, rows, &mut dst);
                around.finish_all(&mut dst);
                dst
            }
        };
        Ok((CpuStorage::F32(dst), Shape::from((rows, out))))
    }

    /// `dst += x Wᵀ` through the `gemm` crate, for CPUs without a vector kernel here.
    fn gemm(&self, weight: &[f32], x: &[f32], rows: usize, dst: &mut [f32]) {
        let out = self.outputs;
        // SAFETY: dst is rows×out, x is rows×inputs, weight is out×inputs, all row-major; the
        // strides below describe exactly those buffers.
        unsafe {
            gemm::gemm(
                rows,
                out,
                self.inputs,
                dst.as_mut_ptr(),
                1,
                out as isize,
                true,
                x.as_ptr(),
                1,
                self.inputs as isize,
                weight.as_ptr(),
                self.inputs as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism(),
            );
        }
    }
}

impl CustomOp1 for Linear {
    fn name(&self) -> &'static str {
        "cliptag-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run(contiguous(storage, layout, "linear")?, None)
    }
}

/// [`Linear`] with the residual added: `residual + x Wᵀ + b`.
pub struct LinearResidual<'a>(pub &'a Linear);

impl CustomOp2 for LinearResidual<'_> {
    fn name(&self) -> &'static str {
        "cliptag-linear-residual"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(x, x_layout, "linear")?;
        let residual = contiguous(residual, residual_layout, "linear residual")?;
        self.0.run(x, Some(residual))
    }
}

/// `e^x` to about one unit in the last place, in arithmetic the compiler can vectorise
/// (Cody–Waite range reduction and a degree-6 polynomial, as in Cephes' `expf`).
#[inline(always)]
// Cephes' coefficients, digit for digit.
#[allow(clippy::excessive_precision)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    // 2^n from n's bits: n + 127 (1 to 254 after the clamp) lands in the low mantissa bits of
    // 2^23 + 127 + n, and the shift moves it into the exponent. A float-to-integer `as` cast
    // would saturate and check for NaN one lane at a time, which kept this loop scalar.
    f32::from_bits((n + 8_388_735.0).to_bits() << 23) * y
}

/// The error function to about 1e-7 (Abramowitz & Stegun 7.1.26 has 1.5e-7 absolute error).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let e = 1.0 - poly * exp(-a * a);
    if x < 0.0 { -e } else { e }
}

#[inline(always)]
fn activate(x: f32, activation: Activation) -> f32 {
    match activation {
        Activation::QuickGelu => x / (1.0 + exp(-1.702 * x)),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let y = 0.797_884_6 * (x + 0.044_715 * x * x * x);
            // tanh(y) = 1 − 2 / (e^{2y} + 1)
            0.5 * x * (2.0 - 2.0 / (exp(2.0 * y) + 1.0))
        }
    }
}

#[inline(always)]
fn activation_loop(xs: &mut [f32], activation: Activation) {
    for x in xs {
        *x = activate(*x, activation);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn activation_avx512(xs: &mut [f32], activation: Activation) {
    // QuickGELU (CLIP's) and tanh-GELU (SigLIP's) are written out in 16 lanes: compiled from
    // `activate`, the division and the unfused polynomial made fc1's activation cost as much
    // as a fifth of its product.
    match activation {
        Activation::QuickGelu => in_lanes(xs, |x| quick_gelu_avx512(x)),
        Activation::GeluTanh => in_lanes(xs, |x| gelu_tanh_avx512(x)),
        Activation::Gelu => activation_loop(xs, activation),
    }
}

/// Replaces each value of `xs` by `f` of it, 16 lanes at a time (the last ones masked).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn in_lanes(xs: &mut [f32], f: impl Fn(std::arch::x86_64::__m512) -> std::arch::x86_64::__m512) {
    use std::arch::x86_64::*;
    for chunk in xs.chunks_mut(16) {
        let mask = if chunk.len() == 16 {
            0xFFFF
        } else {
            (1u16 << chunk.len()) - 1
        };
        // SAFETY: the mask covers only the chunk's values.
        unsafe {
            let y = f(_mm512_maskz_loadu_ps(mask, chunk.as_ptr()));
            _mm512_mask_storeu_ps(chunk.as_mut_ptr(), mask, y);
        }
    }
}

/// x / (1 + e^(−1.702 x)) in 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn quick_gelu_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let e = exp_avx512(_mm512_mul_ps(x, _mm512_set1_ps(-1.702)));
    _mm512_mul_ps(x, reciprocal_avx512(_mm512_add_ps(e, _mm512_set1_ps(1.0))))
}

/// 0.5 x (2 − 2 / (e^{2y} + 1)), y = 0.7978846 (x + 0.044715 x³), in 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gelu_tanh_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    let y = _mm512_mul_ps(
        _mm512_set1_ps(2.0 * 0.797_884_6),
        _mm512_fmadd_ps(x3, _mm512_set1_ps(0.044_715), x),
    );
    let d = _mm512_add_ps(exp_avx512(y), _mm512_set1_ps(1.0));
    let t = _mm512_fnmadd_ps(
        _mm512_set1_ps(2.0),
        reciprocal_avx512(d),
        _mm512_set1_ps(2.0),
    );
    _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5), x), t)
}

/// [`exp`] in 16 lanes: the same clamp and polynomial, with fused multiply-adds, and 2ⁿ
/// applied by `vscalefps`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// Cephes' coefficients, digit for digit, as in `exp`.
#[allow(clippy::excessive_precision)]
fn exp_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let x = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(-87.3)),
        _mm512_set1_ps(88.3),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        5.000_000_1e-1,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let y = _mm512_fmadd_ps(
        _mm512_mul_ps(p, r),
        r,
        _mm512_add_ps(r, _mm512_set1_ps(1.0)),
    );
    _mm512_scalef_ps(y, n)
}

/// 1 / d in 16 lanes for d ≥ 1: the 14-bit estimate and one Newton step, to about 2⁻²⁷, in
/// place of a division that issues once every few cycles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn reciprocal_avx512(d: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let r = _mm512_rcp14_ps(d);
    _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0)))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn activation_avx2(xs: &mut [f32], activation: Activation) {
    activation_loop(xs, activation);
}

/// Applies the activation in place, with the widest vector instructions the CPU has.
pub fn apply_activation(xs: &mut [f32], activation: Activation) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { activation_avx512(xs, activation) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { activation_avx2(xs, activation) };
        }
    }
    activation_loop(xs, activation);
}

/// Applies `op` to `x` (and `residual`).
pub fn linear(x: &Tensor, op: &Linear, residual: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match residual {
        Some(r) => x.apply_op2_no_bwd(r, &LinearResidual(op)),
        None => x.apply_op1_no_bwd(op),
    }
}

#[cfg(test)]
mod linear_tests {
    use super::*;

    fn product(weight: &[f32], x: &[f32]) -> Vec<f32> {
        weight
            .chunks(x.len())
            .map(|w| w.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }

    fn output(layer: &Linear, x: &[f32]) -> Vec<f32> {
        let (CpuStorage::F32(y), _) = layer.run(x, None).unwrap() else {
            panic!("not f32")
        };
        y
    }

    #[test]
    fn layers_are_packed_once_for_the_chosen_kernel() {
        let weight: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let layer = matmul::loading_in(Precision::F32, || {
            Linear::new(weight.clone(), None, 4, 3, None)
        });
        // Packed, the raw copy is not kept; otherwise it is what the gemm crate reads.
        match (&layer.weights, matmul::kernel()) {
            (Weights::Packed(_), Some(_)) | (Weights::Raw(_), None) => {}
            _ => panic!("the layer is not packed for the chosen kernel"),
        }
        let x = [1.0, 0.0, -1.0, 2.0];
        assert_eq!(output(&layer, &x), product(&weight, &x));
    }

    /// Values in quarters up to ±2: exact in bfloat16 and half precision, so every product and
    /// sum below is exact in each precision.
    fn quarters(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7 + seed * 13) % 17) as f32 / 4.0 - 2.0)
            .collect()
    }

    #[test]
    fn bias_residual_and_activation_are_applied_by_the_threads_that_compute_each_column() {
        // 50 rows (ViT-B/32's tokens) across the kernels' row blocks, 70 outputs across
        // three panels (the last one partial), split among one, two and three threads.
        let (rows, inputs, outputs) = (50, 40, 70);
        let (weight, x) = (quarters(outputs * inputs, 1), quarters(rows * inputs, 2));
        let (bias, residual) = (quarters(outputs, 3), quarters(rows * outputs, 4));
        let activation = Activation::QuickGelu;
        let bias_of = |o: usize| bias[o];
        let residual_of = |r: usize, o: usize| residual[r * outputs + o];
        let with = |bias: bool, residual: bool, activation: bool| {
            let mut want = vec![0.0f32; rows * outputs];
            for (r, row) in want.chunks_mut(outputs).enumerate() {
                for (o, value) in row.iter_mut().enumerate() {
                    let dot: f32 = (0..inputs)
                        .map(|k| x[r * inputs + k] * weight[o * inputs + k])
                        .sum();
                    *value = dot
                        + if bias { bias_of(o) } else { 0.0 }
                        + if residual { residual_of(r, o) } else { 0.0 };
                }
            }
            if activation {
                apply_activation(&mut want, Activation::QuickGelu);
            }
            want
        };
        for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
            if !precision.runs() {
                continue;
            }
            for (has_bias, has_residual, has_activation) in [
                (true, true, false),
                (true, false, true),
                (false, true, false),
                (false, false, true),
            ] {
                let layer = matmul::loading_in(precision, || {
                    Linear::new(
                        weight.clone(),
                        has_bias.then(|| bias.clone()),
                        inputs,
                        outputs,
                        has_activation.then_some(activation),
                    )
                });
                let want = with(has_bias, has_residual, has_activation);
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let residual = has_residual.then_some(&residual[..]);
                    let (CpuStorage::F32(got), shape) =
                        pool.install(|| layer.run(&x, residual)).unwrap()
                    else {
                        panic!("not f32")
                    };
                    assert_eq!(shape.dims(), [rows, outputs]);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{precision:?}, bias {has_bias}, residual {has_residual}, activation {has_activation}, {threads} threads: [{}, {}] = {g}, want {w}",
                            i / outputs,
                            i % outputs
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_reduced_precision_is_taken_only_where_the_cpu_runs_it() {
        let weight: Vec<f32> = (0..12).map(|i| i as f32 * 0.25).collect();
        for precision in [Precision::F16, Precision::Bf16] {
            let layer =
                matmul::loading_in(precision, || Linear::new(weight.clone(), None, 4, 3, None));
            let runs = precision.runs();
            assert_eq!(layer.precision() == precision, runs, "{precision:?}");
            assert_eq!(matches!(layer.weights, Weights::Half(_)), runs);
            // These values are exact in both formats, so either way the product is exact.
            let x = [1.0, 0.5, -1.0, 2.0];
            assert_eq!(output(&layer, &x), product(&weight, &x), "{precision:?}");
        }
    }
}
