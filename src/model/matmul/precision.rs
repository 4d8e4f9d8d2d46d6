//! Which arithmetic the linear layers multiply in: f32, or a 16-bit format where the CPU runs
//! it; what a model loads in by default, what `CLIPTAG_PRECISION` and a library ask for.

use std::sync::OnceLock;

use super::{Kernel, amx, half, kernel};

/// The arithmetic linear layers multiply in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    #[default]
    F32,
    /// IEEE half precision through AVX-512 FP16 ([`half`]).
    F16,
    /// bfloat16 through AVX-512 BF16, summed in f32 ([`half`]).
    Bf16,
}

impl Precision {
    /// What `requested` comes to where `runs` says which reduced precisions this CPU runs: the
    /// one asked for where it runs, f32 everywhere else.
    pub fn resolve(requested: Precision, runs: impl Fn(Precision) -> bool) -> Precision {
        match requested {
            Precision::F32 => Precision::F32,
            reduced if runs(reduced) => reduced,
            _ => Precision::F32,
        }
    }

    /// Whether linear layers run in this precision here. F32 always does; a 16-bit format
    /// needs its AVX-512 extension and the 512-bit kernel chosen (`CLIPTAG_KERNEL` set to
    /// another turns it off, too).
    pub fn runs(self) -> bool {
        let format = match self {
            Precision::F32 => return true,
            Precision::F16 => half::Format::F16,
            Precision::Bf16 => half::Format::Bf16,
        };
        matches!(kernel(), Some(Kernel::Avx512(_))) && format.supported()
    }

    /// The 16-bit format a reduced precision packs weights in; `None` for f32.
    pub fn format(self) -> Option<half::Format> {
        match self {
            Precision::F32 => None,
            Precision::F16 => Some(half::Format::F16),
            Precision::Bf16 => Some(half::Format::Bf16),
        }
    }

    /// The name `CLIPTAG_PRECISION` and the library use for it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    /// The precision `name` names (`f32`, `bf16`, `f16`).
    pub fn parse(name: &str) -> Option<Precision> {
        [Precision::F32, Precision::Bf16, Precision::F16]
            .into_iter()
            .find(|p| p.name() == name.trim().to_ascii_lowercase())
    }

    /// The precision cliptag embeds in unless asked otherwise: bfloat16 where it outruns f32,
    /// else f32.
    ///
    /// - bfloat16 on AMX tiles, where the CPU and the system grant them;
    /// - bfloat16 through AVX-512 BF16 on AMD cores, where `vdpbf16ps` does twice the work of
    ///   an f32 FMA per cycle;
    /// - f32 on Intel cores without AMX, where `vdpbf16ps` runs at under half the f32 rate;
    /// - f32 everywhere else.
    ///
    /// Half precision (f16) is never the default, though it outruns f32 on Intel cores with
    /// AVX-512 FP16: its 5 exponent bits keep a layer's values in range only through the
    /// scaling in [`half`], where bf16 has f32's range.
    pub fn fastest() -> Precision {
        static FASTEST: OnceLock<Precision> = OnceLock::new();
        *FASTEST.get_or_init(|| {
            Precision::fastest_where(Cpu {
                bf16_runs: Precision::Bf16.runs(),
                amx: amx::supported(),
                amd: cpu_vendor_is_amd(),
            })
        })
    }

    /// [`Precision::fastest`] on a CPU with `cpu`'s traits.
    pub fn fastest_where(cpu: Cpu) -> Precision {
        if cpu.bf16_runs && (cpu.amx || cpu.amd) {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }
}

/// What of a CPU decides the precision cliptag embeds in by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// The AVX-512 BF16 kernel runs (and the 512-bit kernels were chosen).
    pub bf16_runs: bool,
    /// AMX tiles with bfloat16, granted by the system.
    pub amx: bool,
    /// An AMD core.
    pub amd: bool,
}

/// Whether the CPU calls itself AMD's.
fn cpu_vendor_is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let leaf0 = std::arch::x86_64::__cpuid(0);
        let vendor: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        vendor == b"AuthenticAMD"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The precision `CLIPTAG_PRECISION` asks for (`f32`, `bf16` or `f16`); `None` when it is
/// unset, `auto`, or names none of them.
pub fn precision_override() -> Option<Precision> {
    let name = std::env::var("CLIPTAG_PRECISION").ok()?;
    let parsed = Precision::parse(&name);
    if parsed.is_none() && !matches!(name.trim().to_ascii_lowercase().as_str(), "" | "auto") {
        // Said once: a typo would otherwise pass unnoticed.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!(
                "cliptag: CLIPTAG_PRECISION={name:?} is none of f32, bf16, f16 or auto; it is ignored"
            );
        });
    }
    parsed
}

/// The precision a model loads in: `CLIPTAG_PRECISION` where it names one; else f32 where
/// `exact` (the library asks for exact arithmetic); else [`Precision::fastest`].
pub fn chosen_precision(exact: bool) -> Precision {
    precision_override().unwrap_or(if exact {
        Precision::F32
    } else {
        Precision::fastest()
    })
}

/// The precision a model loads in outside a library (`embed`, benchmarks):
/// [`chosen_precision`] without the library's setting.
pub fn requested_precision() -> Precision {
    chosen_precision(false)
}

thread_local! {
    static LOADING_IN: std::cell::Cell<Option<Precision>> = const { std::cell::Cell::new(None) };
}

/// Runs `load` (building a model) with its linear layers packed for `precision` where this CPU
/// runs it, instead of what `CLIPTAG_PRECISION` asks for: a benchmark compares both in one run.
pub fn loading_in<R>(precision: Precision, load: impl FnOnce() -> R) -> R {
    let previous = LOADING_IN.replace(Some(precision));
    let result = load();
    LOADING_IN.set(previous);
    result
}

/// The precision a layer built now is packed for.
pub fn load_precision() -> Precision {
    let requested = LOADING_IN.get().unwrap_or_else(requested_precision);
    Precision::resolve(requested, Precision::runs)
}
