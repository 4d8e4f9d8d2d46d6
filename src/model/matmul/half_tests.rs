//! The 16-bit products against a plain f64 one, within what each format's rounding allows.
#[cfg(target_arch = "x86_64")]
use super::tiles::{row_into_tiles_avx512, row_into_tiles_scalar};
use super::*;

fn values(n: usize, seed: u64, magnitude: f32) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5) * magnitude
        })
        .collect()
}

/// The product in `format` against a plain f64 one, each output within a share of the sum
/// of its terms' magnitudes that the format's rounding allows: 2⁻⁸ for half precision's
/// 11 bits and half-precision sums, 2⁻⁷ for bfloat16's 8 bits.
fn check(format: Format, rows: usize, inputs: usize, outputs: usize, x_size: f32, w_size: f32) {
    let x = values(rows * inputs, 1, x_size);
    let w = values(outputs * inputs, 2, w_size);
    let start = values(rows * outputs, 3, 1.0);
    let share = match format {
        Format::F16 => 4e-3,
        Format::Bf16 => 8e-3,
    };
    let pack = |amx| {
        PackedHalf::with_amx(format, &w, inputs, outputs, amx)
            .expect("checked only where the CPU runs the format")
    };
    let mut kernels = vec![pack(false)];
    if format == Format::Bf16 && amx_fits(inputs) {
        kernels.push(pack(true));
    }
    for (packed, threads) in kernels.iter().flat_map(|p| [(p, 1), (p, 3)]) {
        let amx = packed.uses_amx();
        let got = packed.multiply_into(&x, threads, &Around::new(None, Some(&start), None));
        for i in 0..rows {
            for o in 0..outputs {
                let terms = (0..inputs)
                    .map(|k| f64::from(x[i * inputs + k]) * f64::from(w[o * inputs + k]));
                let want = f64::from(start[i * outputs + o]) + terms.clone().sum::<f64>();
                let size: f64 = terms.map(f64::abs).sum();
                let g = f64::from(got[i * outputs + o]);
                assert!(
                    (g - want).abs() <= share * size + 1e-6,
                    "{format:?} (AMX {amx}) {rows}×{inputs}×{outputs} (x ~{x_size}, w ~{w_size}), {threads} threads: \
                     [{i}, {o}] = {g}, want {want} (terms' magnitudes {size})"
                );
            }
        }
    }
}

/// Row counts across the 12-row, 32-row, 240-row and 512-row blocks, widths across the 32-column
/// panels, depths odd, in whole tiles of 32 (where AMX runs) and across the 256-input and
/// 1024-input blocks.
fn check_every_edge(format: Format) {
    if !format.supported() {
        eprintln!("SKIPPED: this CPU has no {format:?} kernel (AVX-512 FP16 or BF16)");
        return;
    }
    for (rows, inputs, outputs) in [
        (1, 1, 1),
        (5, 7, 3),
        (13, 33, 17),
        (1, 32, 1),
        (33, 64, 31),
        (50, 300, 48),
        (50, 288, 48),
        (97, 257, 65),
        (97, 544, 65),
        (250, 521, 100),
        (250, 768, 100),
        // ViT-B/32's 200 rows in a pass of 4 images: on AMX, the last block of 8 rows takes
        // the products of 16.
        (200, 768, 64),
        // Inputs beyond 1 MiB of bfloat16: on AMX, C goes through the tiles once per block of
        // 1024 inputs (here 1024 and 32), and the rows are taken 512 at a time.
        (600, 1056, 40),
    ] {
        check(format, rows, inputs, outputs, 2.0, 0.1);
    }
}

#[test]
fn the_half_kernel_computes_the_product_at_every_edge() {
    check_every_edge(Format::F16);
}

#[test]
fn the_bf16_kernel_computes_the_product_at_every_edge() {
    check_every_edge(Format::Bf16);
}

#[test]
fn weights_are_packed_only_for_a_format_this_cpu_runs() {
    let w = values(64 * 40, 2, 0.1);
    for format in [Format::F16, Format::Bf16] {
        assert_eq!(
            PackedHalf::new(format, &w, 64, 40).is_some(),
            format.supported(),
            "{format:?}"
        );
    }
}

#[test]
fn bf16_runs_on_amx_tiles_where_the_cpu_has_them_and_the_inputs_fill_whole_tiles() {
    if !Format::Bf16.supported() {
        eprintln!("SKIPPED: this CPU has no AVX-512 BF16");
        return;
    }
    let w = values(64 * 40, 2, 0.1);
    let amx = super::super::amx::supported();
    let uses_amx = |format, inputs, outputs, allowed| {
        PackedHalf::with_amx(format, &w, inputs, outputs, allowed).is_some_and(|p| p.uses_amx())
    };
    assert_eq!(uses_amx(Format::Bf16, 64, 40, true), amx);
    assert!(!uses_amx(Format::Bf16, 40, 64, true));
    assert!(!uses_amx(Format::F16, 64, 40, true));
    assert!(!uses_amx(Format::Bf16, 64, 40, false));
    eprintln!("AMX on this CPU: {amx}");
}

#[test]
fn bf16_keeps_values_far_outside_half_precisions_range() {
    if !Format::Bf16.supported() {
        eprintln!("SKIPPED: this CPU has no AVX-512 BF16");
        return;
    }
    check(Format::Bf16, 30, 600, 40, 2e5, 20.0);
    check(Format::Bf16, 30, 600, 40, 2e-6, 1e-4);
    check(Format::Bf16, 30, 640, 40, 2e5, 20.0);
    check(Format::Bf16, 30, 640, 40, 2e-6, 1e-4);
}

#[test]
fn values_beyond_half_precisions_range_are_scaled_into_it() {
    if !Format::F16.supported() {
        eprintln!("SKIPPED: this CPU has no AVX-512 FP16");
        return;
    }
    // Inputs up to 10⁵ overflow half precision (65504) unscaled, and products of 10⁵ by
    // weights of 10 overflow any half sum; inputs of 10⁻⁶ are below its normal range.
    check(Format::F16, 30, 600, 40, 2e5, 20.0);
    check(Format::F16, 30, 600, 40, 2e-6, 1e-4);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn rows_go_into_the_tile_layout_rounded_as_one_value_at_a_time() {
    if !std::arch::is_x86_feature_detected!("avx512bf16") {
        eprintln!("SKIPPED: this CPU has no AVX-512 BF16");
        return;
    }
    let k = 96;
    // Values across bfloat16's rounding (a halfway case, a huge and a tiny one) in a block's
    // 32 rows, two of them past the last row (zeros). Denormals are left out: the instruction
    // reads them as zeros, as the model's threads do anyway.
    let mut x = values(32 * k, 5, 6.0);
    x[0] = 1.0 + 1.0 / 256.0;
    x[1] = 3e38;
    x[2] = -1e-30;
    let (mut fast, mut plain) = (Vec::new(), Vec::new());
    for (tiles, convert) in [
        (
            &mut fast,
            row_into_tiles_avx512 as unsafe fn(_, _, _, &mut _),
        ),
        (&mut plain, |row, r, k, tiles: &mut _| {
            row_into_tiles_scalar(row, r, k, tiles)
        }),
    ] {
        tiles.resize(32 * k, std::mem::MaybeUninit::new(0xFFFFu16));
        for r in 0..32 {
            let row = (r < 30).then(|| &x[r * k..][..k]);
            // SAFETY: the CPU has AVX-512 BF16 (checked above); the sizes are as required.
            unsafe { convert(row, r, k, tiles) };
        }
    }
    let read = |v: &[std::mem::MaybeUninit<u16>]| -> Vec<u16> {
        // SAFETY: every value was initialised (to 0xFFFF, before the conversions).
        v.iter().map(|x| unsafe { x.assume_init() }).collect()
    };
    let (fast, plain) = (read(&fast), read(&plain));
    let differ = fast.iter().zip(&plain).position(|(a, b)| a != b);
    assert_eq!(differ, None, "the two conversions differ");
    // Step 1's value of row 2 sits at (1 · 32 + 2) · 32, and rows 30 and 31 are zeros.
    assert_eq!(plain[(32 + 2) * 32 + 5], to_bf16(x[2 * k + 32 + 5]));
    assert!(plain[(2 * 32 + 30) * 32..][..64].iter().all(|&v| v == 0));
}
