//! The floating-point mode and thread pool the encoders run in, and the proof that the CPU runs
//! the instructions a vector kernel is chosen for.

/// Proof that this CPU was asked whether it runs an instruction set and said yes. Only the
/// detecting constructors below make one (its field is private), so a kernel choice that holds
/// one cannot be made by safe code on a CPU without those instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detected(());

impl Detected {
    /// AVX-512F, where this CPU has it.
    pub fn avx512f() -> Option<Detected> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some(Detected(()));
        }
        None
    }

    /// AVX2 with FMA, where this CPU has both.
    pub fn avx2_fma() -> Option<Detected> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Detected(()));
        }
        None
    }

    /// AVX-512F and BW with the 16-bit extension `format` needs (FP16 or BF16).
    pub fn avx512_half(format: crate::model::matmul::half::Format) -> Option<Detected> {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::model::matmul::half::Format;
            use std::arch::is_x86_feature_detected as has;
            let extension = match format {
                Format::F16 => has!("avx512fp16"),
                Format::Bf16 => has!("avx512bf16"),
            };
            if has!("avx512f") && has!("avx512bw") && extension {
                return Some(Detected(()));
            }
        }
        let _ = format;
        None
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

/// Runs `forward` over a batch of `batch` items split into one slice per thread, each slice on
/// a thread of its own that does all of its work alone, and joins the outputs along the first
/// dimension. With fewer items than threads it runs as [`run`] does: every thread shares each
/// operation.
///
/// Splitting the images beats splitting each operation: no thread waits for another between
/// the hundreds of operations of a forward pass, and each works in its own core's cache. On a
/// 2-core machine the encoder at batch 8 and 32 ran at about the rate of two encoders on one
/// thread each, which splitting each product had not reached.
pub fn run_split(
    batch: usize,
    forward: impl Fn(std::ops::Range<usize>) -> candle_core::Result<candle_core::Tensor> + Sync,
) -> candle_core::Result<candle_core::Tensor> {
    let pools = solo_pools();
    let parts = pools.len().min(batch);
    if parts <= 1 {
        return run(|| forward(0..batch));
    }
    let forward = &forward;
    let outputs = std::thread::scope(|scope| {
        let running: Vec<_> = (0..parts)
            .map(|i| {
                let range = i * batch / parts..(i + 1) * batch / parts;
                let pool = &pools[i];
                scope.spawn(move || {
                    pool.install(|| {
                        set_flush_denormals();
                        in_passes(range, forward)
                    })
                })
            })
            .collect();
        running
            .into_iter()
            .map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<candle_core::Result<Vec<_>>>()
    })?;
    candle_core::Tensor::cat(&outputs, 0)
}

/// Items one thread's forward pass takes at a time. Larger shares go in passes of this many, so
/// that a layer's output (at 4 images, 200 rows of ViT-B/32's widest, 3,072 values: about
/// 2.5 MB) stays in cache for the next layer instead of going out to memory and back.
pub const MOST_PER_PASS: usize = 4;

/// `forward` over `range` in passes of at most [`MOST_PER_PASS`] items, the outputs joined.
fn in_passes(
    range: std::ops::Range<usize>,
    forward: impl Fn(std::ops::Range<usize>) -> candle_core::Result<candle_core::Tensor>,
) -> candle_core::Result<candle_core::Tensor> {
    if range.len() <= MOST_PER_PASS {
        return forward(range);
    }
    let outputs = range
        .clone()
        .step_by(MOST_PER_PASS)
        .map(|start| forward(start..(start + MOST_PER_PASS).min(range.end)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    candle_core::Tensor::cat(&outputs, 0)
}

/// One single-thread pool per thread candle would use: work started in one stays on its
/// thread, nested parallel loops included.
fn solo_pools() -> &'static [rayon::ThreadPool] {
    static POOLS: std::sync::OnceLock<Vec<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOLS.get_or_init(|| {
        (0..candle_core::utils::get_num_threads())
            .map_while(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("cliptag-encode-{i}"))
                    .build()
                    .ok()
            })
            .collect()
    })
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

/// Hands the memory freed while a model loaded (the weights as read, before packing) back to the
/// system.
///
/// With [`tune_allocator`]'s thresholds glibc keeps freed heap memory for reuse, which is what
/// the encoders want for their activations, but the copies made while loading are freed once
/// and never needed again: several hundred MiB for a ViT-B/32 that would otherwise stay
/// resident for the life of the process.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
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
    use super::{MOST_PER_PASS, run_split};
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

    #[test]
    fn a_batch_is_split_into_one_slice_per_thread_each_on_its_own_thread_in_passes() {
        use std::sync::Mutex;
        // 19 items: on two threads, 9 and 10, each taken in passes of at most MOST_PER_PASS.
        let batch = 19;
        let seen = Mutex::new(Vec::new());
        let out = run_split(batch, |part| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            seen.lock()
                .unwrap()
                .push((part.clone(), thread, rayon::current_num_threads()));
            let values: Vec<f32> = part.clone().map(|i| i as f32).collect();
            candle_core::Tensor::from_vec(values, part.len(), &candle_core::Device::Cpu)
        })
        .unwrap();
        // The slices' outputs come back in order.
        assert_eq!(
            out.to_vec1::<f32>().unwrap(),
            (0..batch).map(|i| i as f32).collect::<Vec<_>>()
        );
        let mut seen = seen.into_inner().unwrap();
        seen.sort_by_key(|(part, _, _)| part.start);
        let threads = candle_core::utils::get_num_threads();
        if threads < 2 {
            assert_eq!(seen.len(), 1);
            return;
        }
        assert_eq!(seen.iter().map(|(p, _, _)| p.len()).sum::<usize>(), batch);
        let mut names: Vec<&String> = seen.iter().map(|(_, name, _)| name).collect();
        names.dedup();
        // Each thread's passes are one run of the batch, on that thread alone.
        assert_eq!(names.len(), threads.min(batch), "{seen:?}");
        for (part, thread, pool_threads) in &seen {
            assert!(
                thread.starts_with("cliptag-encode-"),
                "{part:?} on {thread}"
            );
            assert!(part.len() <= MOST_PER_PASS, "{part:?}");
            // Nested parallel loops stay on that one thread.
            assert_eq!(*pool_threads, 1);
        }
    }
}
