//! The packed f32 product against a plain one, at every edge of its blocks.
use super::*;

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

#[test]
fn the_widest_kernel_the_cpu_runs_is_chosen() {
    if std::env::var_os("CLIPTAG_KERNEL").is_none() {
        assert_eq!(kernel(), Kernel::avx512().or_else(Kernel::avx2));
    }
}

#[test]
fn the_tiles_of_a_panel_share_the_next_panel_s_lines_between_them() {
    let next = [0.0f32; 256 * 32];
    for tiles in [1, 5, 9, 17, 20] {
        let mut covered = Vec::new();
        for tile in 0..tiles {
            let share = Prefetch::share(next.as_ptr(), next.len(), tile, tiles);
            let first = (share.at as usize - next.as_ptr() as usize) / 64;
            covered.extend(first..first + share.lines);
        }
        // Every line once, in order, none past the end.
        assert_eq!(
            covered,
            (0..next.len() / 16).collect::<Vec<_>>(),
            "{tiles} tiles"
        );
    }
}

#[test]
fn every_kernel_computes_the_product_at_every_edge() {
    let kernels: Vec<Kernel> = [Kernel::avx512(), Kernel::avx2()]
        .into_iter()
        .flatten()
        .collect();
    if kernels.len() < 2 {
        eprintln!("SKIPPED in part: this CPU runs {kernels:?} of the 512- and 256-bit kernels");
    }
    if kernels.is_empty() {
        return;
    }
    // Row counts across the kernels' row blocks and the 240-row block, widths across the
    // panels, depths across the 256-deep block.
    for (rows, inputs, outputs) in [
        (1, 1, 1),
        (5, 7, 3),
        (13, 33, 17),
        (50, 300, 48),
        (97, 257, 65),
        (250, 520, 100),
    ] {
        let x = values(rows * inputs, 1);
        let w = values(outputs * inputs, 2);
        let start = values(rows * outputs, 3);
        let mut want = vec![0.0f64; rows * outputs];
        for i in 0..rows {
            for o in 0..outputs {
                let dot: f64 = (0..inputs)
                    .map(|k| f64::from(x[i * inputs + k]) * f64::from(w[o * inputs + k]))
                    .sum();
                want[i * outputs + o] = f64::from(start[i * outputs + o]) + dot;
            }
        }
        for &kernel in &kernels {
            for threads in [1, 3] {
                let packed = Packed::new(kernel, &w, inputs, outputs);
                let got = packed.multiply_into(&x, threads, &Around::new(None, Some(&start), None));
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-4 * (1.0 + w.abs()),
                        "{kernel:?} {rows}×{inputs}×{outputs}, {threads} threads: [{i}] = {g}, want {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn bf16_is_the_default_only_where_it_is_the_fastest() {
    let where_ = |bf16_runs, amx, amd| {
        Precision::fastest_where(Cpu {
            bf16_runs,
            amx,
            amd,
        })
    };
    // AMX tiles, or AMD's AVX-512 BF16 (twice the f32 rate per instruction).
    assert_eq!(where_(true, true, false), Precision::Bf16);
    assert_eq!(where_(true, false, true), Precision::Bf16);
    // Intel's AVX-512 BF16 without tiles runs under the f32 rate.
    assert_eq!(where_(true, false, false), Precision::F32);
    // No bf16 kernel (no extension, or another kernel chosen): f32 whatever else.
    assert_eq!(where_(false, true, true), Precision::F32);
    assert_eq!(where_(false, false, false), Precision::F32);
}

#[test]
fn precisions_are_named_as_the_environment_and_the_library_name_them() {
    for precision in [Precision::F32, Precision::Bf16, Precision::F16] {
        assert_eq!(Precision::parse(precision.name()), Some(precision));
    }
    assert_eq!(Precision::parse(" BF16 "), Some(Precision::Bf16));
    assert_eq!(Precision::parse("auto"), None);
    assert_eq!(Precision::parse("fp32"), None);
}

#[test]
fn packed_weights_start_on_a_cache_line() {
    // Each panel's slice starts a multiple of 64 bytes into the buffer, so a buffer that starts
    // on a line keeps every 64-byte load of weights within one line.
    let w = values(768 * 100, 4);
    for kernel in [Kernel::avx512(), Kernel::avx2()].into_iter().flatten() {
        let packed = Packed::new(kernel, &w, 768, 100);
        assert_eq!(packed.data.as_ptr() as usize % 64, 0, "{kernel:?}");
    }
    for format in [half::Format::F16, half::Format::Bf16] {
        for amx in [false, true] {
            if let Some(packed) = half::PackedHalf::with_amx(format, &w, 768, 100, amx) {
                assert_eq!(packed.data_start() % 64, 0, "{format:?}, AMX {amx}");
            }
        }
    }
}
