//! Layer normalisation over the last dimension, as a candle custom op.
//!
//! candle-nn's CPU layer norm sums each row one value at a time (an f32 sum's order is part of its
//! result, so the compiler may not vectorise it), two dependent adds per value: at 768 values a
//! row and two norms per encoder layer, that was about 0.85 % of a one-thread profile's samples
//! at batch 8 (0.27 % here).
//! Here each row is summed in 16 lanes, with the widest vector instructions the CPU has (checked
//! at run time), and the variance is taken around the mean in a second pass, as PyTorch does,
//! rather than as E[x²] − mean².

use candle_core::{CpuStorage, CustomOp1, Layout, Tensor};
use rayon::prelude::*;

use crate::model::fused::contiguous;

/// `(x − mean) / √(variance + eps) · weight + bias` over each row of the last dimension.
pub struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

/// Values summed side by side.
const LANES: usize = 16;

/// Rows one parallel task normalises.
const ROWS_PER_TASK: usize = 16;

impl LayerNorm {
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, eps: f32) -> candle_core::Result<LayerNorm> {
        if weight.is_empty() || weight.len() != bias.len() {
            candle_core::bail!(
                "layer norm: weight ({}) and bias ({}) differ in width or are empty",
                weight.len(),
                bias.len()
            );
        }
        Ok(LayerNorm { weight, bias, eps })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op1_no_bwd(self)
    }

    /// Normalises every row of `x` into `out` (both rows × width).
    pub fn normalize(&self, x: &[f32], out: &mut [f32]) {
        let width = self.weight.len();
        out.par_chunks_mut(width * ROWS_PER_TASK)
            .zip(x.par_chunks(width * ROWS_PER_TASK))
            .for_each(|(out, x)| {
                for (out, x) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
                    self.row(x, out);
                }
            });
    }

    fn row(&self, x: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { row_avx512(self, x, out) };
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                return unsafe { row_avx2(self, x, out) };
            }
        }
        row_lanes(self, x, out);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn row_avx512(norm: &LayerNorm, x: &[f32], out: &mut [f32]) {
    row_lanes(norm, x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn row_avx2(norm: &LayerNorm, x: &[f32], out: &mut [f32]) {
    row_lanes(norm, x, out);
}

/// Sums `values` (and `f` of each) in `LANES` lanes, which the compiler turns into vector adds.
#[inline(always)]
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += f(*v);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| f(*v)).sum();
    lanes.iter().sum::<f32>() + tail
}

#[inline(always)]
fn row_lanes(norm: &LayerNorm, x: &[f32], out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = lane_sum(x, |v| v) / n;
    let variance = lane_sum(x, |v| (v - mean) * (v - mean)) / n;
    let scale = 1.0 / (variance + norm.eps).sqrt();
    for (((o, v), w), b) in out.iter_mut().zip(x).zip(&norm.weight).zip(&norm.bias) {
        *o = (v - mean) * scale * w + b;
    }
}

impl CustomOp1 for LayerNorm {
    fn name(&self) -> &'static str {
        "cliptag-layer-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, candle_core::Shape)> {
        let x = contiguous(storage, layout, "layer norm")?;
        let width = self.weight.len();
        if layout.shape().dims().last() != Some(&width) {
            candle_core::bail!(
                "layer norm: input {:?} does not end in width {width}",
                layout.shape()
            );
        }
        let mut out = vec![0.0f32; x.len()];
        self.normalize(x, &mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_normalised_as_pytorch_does() {
        // Widths across the 16 lanes; values with a large common offset, where E[x²] − mean²
        // loses the variance to cancellation.
        for width in [1, 5, 16, 33, 768] {
            let weight: Vec<f32> = (0..width).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
            let bias: Vec<f32> = (0..width).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
            let norm = LayerNorm::new(weight.clone(), bias.clone(), 1e-5).unwrap();
            let rows = 40;
            let x: Vec<f32> = (0..rows * width)
                .map(|i| 1000.0 + ((i * 37 % 101) as f32 - 50.0) * 0.01)
                .collect();
            let mut out = vec![0.0; x.len()];
            norm.normalize(&x, &mut out);
            for (r, (row, got)) in x.chunks(width).zip(out.chunks(width)).enumerate() {
                let n = width as f64;
                let mean = row.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
                let var = row
                    .iter()
                    .map(|v| (f64::from(*v) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                for (i, (v, g)) in row.iter().zip(got).enumerate() {
                    let want = (f64::from(*v) - mean) / (var + 1e-5).sqrt() * f64::from(weight[i])
                        + f64::from(bias[i]);
                    assert!(
                        (f64::from(*g) - want).abs() <= 2e-3 * (1.0 + want.abs()),
                        "width {width}, row {r}, [{i}] = {g}, want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_tensor_keeps_its_shape_and_a_wrong_width_is_refused() {
        let norm = LayerNorm::new(vec![1.0; 4], vec![0.0; 4], 1e-5).unwrap();
        let x = Tensor::new(
            &[[[1f32, 2.0, 3.0, 4.0], [4.0, 4.0, 4.0, 4.0]]],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let y = norm.forward(&x).unwrap();
        assert_eq!(y.dims(), &[1, 2, 4]);
        let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            (y[0] + 1.341_64).abs() < 1e-3 && (y[3] - 1.341_64).abs() < 1e-3,
            "{y:?}"
        );
        // A constant row has no variance: it becomes the bias, not NaN.
        assert!(y[4..].iter().all(|v| v.abs() < 1e-6), "{y:?}");
        let wrong =
            Tensor::zeros((2, 5), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        assert!(norm.forward(&wrong).is_err());
        assert!(LayerNorm::new(vec![1.0; 3], vec![0.0; 4], 1e-5).is_err());
    }
}
