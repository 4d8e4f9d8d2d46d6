//! The bfloat16 product on Intel's AMX tiles (Sapphire Rapids and later), where the CPU and the
//! operating system allow them (checked at run time).
//!
//! A tile register holds 16 rows of 64 bytes. One `tdpbf16ps` multiplies a tile of 16 rows × 32
//! bfloat16 inputs by a tile of 16 input pairs × 16 columns and adds the 8,192 products into a
//! tile of 16 × 16 f32 sums, where the AVX-512 BF16 instruction does 32. The weight tiles are
//! read straight from [`super::half::PackedHalf`]'s panels: each pair row there holds
//! `(w[k][j], w[k + 1][j])` for 32 columns, so a tile is 16 pair rows, 64 bytes of each.
//!
//! Rust has no stable AMX intrinsics; the few instructions used are written as inline assembly.
//! The compiler never allocates tile registers, so their contents stay put between the blocks
//! of assembly of one [`Tiles`].

/// Whether this CPU has AMX with bfloat16 and the operating system lets this process use it.
///
/// Linux hands out the tiles' 8 KiB of register state only to a process that asks for it
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); asked once, the answer holds for every thread. Anywhere
/// the request cannot be made, AMX is taken as absent.
pub fn supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| cpu_has_amx_bf16() && os_grants_tiles())
}

fn cpu_has_amx_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid_count;
        if __cpuid_count(0, 0).eax < 7 {
            return false;
        }
        let leaf7 = __cpuid_count(7, 0);
        const AMX_BF16: u32 = 1 << 22;
        const AMX_TILE: u32 = 1 << 24;
        leaf7.edx & (AMX_BF16 | AMX_TILE) == AMX_BF16 | AMX_TILE
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn os_grants_tiles() -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: the request only changes which register state the kernel saves for this
        // process; it fails (returns -1) where the kernel or the CPU lacks AMX.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        false
    }
}

/// Rows and columns of the block of sums one [`Tiles`] accumulates.
pub const BLOCK: usize = 32;
/// Inputs one [`Tiles::step`] takes.
pub const STEP: usize = 32;

/// Asks for the 64 bytes at `at` in each of [`BLOCK`] rows `stride` bytes apart to be brought
/// into the L1 cache (a hint: addresses past a buffer's end are never read).
pub fn prefetch_rows(at: *const u16, stride: usize) {
    #[cfg(target_arch = "x86_64")]
    for r in 0..BLOCK {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch never faults and reads nothing into the program.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>().wrapping_add(r * stride)) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, stride);
}

/// Asks for lines `lines` of the 64 lines of a block of sums (32 rows of 128 bytes, `stride`
/// bytes apart, from `at`) to be brought into L2 (a hint, as [`prefetch_rows`]).
pub fn prefetch_sums(at: *const f32, stride: usize, lines: std::ops::Range<usize>) {
    #[cfg(target_arch = "x86_64")]
    for line in lines {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        let offset = line / 2 * stride + line % 2 * 64;
        // SAFETY: a prefetch never faults and reads nothing into the program.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(at.cast::<i8>().wrapping_add(offset)) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, stride, lines);
}

/// The tile configuration `ldtilecfg` reads: palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

/// The tile registers, configured on this thread, accumulating one 32 × 32 block of f32 sums in
/// `tmm0`–`tmm3` from inputs in `tmm4`–`tmm5` and weights in `tmm6`–`tmm7`. Released when
/// dropped.
pub struct Tiles {
    _not_send: std::marker::PhantomData<*const ()>,
}

#[cfg(target_arch = "x86_64")]
impl Tiles {
    /// Configures the tiles on this thread.
    ///
    /// # Safety
    /// [`supported`] must have returned true.
    pub unsafe fn start() -> Tiles {
        let mut config = Config {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        for tile in 0..8 {
            config.bytes_per_row[tile] = 64;
            config.rows[tile] = 16;
        }
        // SAFETY: the CPU has AMX and this process may use it (the caller's contract); the
        // configuration is 64 valid bytes.
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly));
        }
        Tiles {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Clears the block of sums.
    pub fn zero(&mut self) {
        // SAFETY: the tiles are configured (`start`).
        unsafe {
            std::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
        }
    }

    /// Adds to the block the products of 32 rows × [`STEP`] bfloat16 inputs (`a`, rows
    /// `a_stride` bytes apart, the second 16 rows `16 · a_stride` on) and 16 pair rows of 32
    /// columns' weight pairs (`b`, 128 bytes each).
    ///
    /// # Safety
    /// `a` must be readable for 32 rows of 64 bytes and `b` for 16 rows of 128 bytes.
    pub unsafe fn step(&mut self, a: *const u16, a_stride: usize, b: *const u16) {
        // SAFETY: the tiles are configured; the loads stay within the caller's bounds.
        unsafe {
            std::arch::asm!(
                "tileloadd tmm4, [{a} + {sa} * 1]",
                "tileloadd tmm5, [{a2} + {sa} * 1]",
                "tileloadd tmm6, [{b} + {sb} * 1]",
                "tileloadd tmm7, [{b2} + {sb} * 1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                a = in(reg) a,
                a2 = in(reg) a.cast::<u8>().add(16 * a_stride),
                sa = in(reg) a_stride,
                b = in(reg) b,
                b2 = in(reg) b.add(32),
                sb = in(reg) 128usize,
                options(nostack, readonly)
            );
        }
    }

    /// As [`Tiles::step`] for the first 16 rows only (the block's other 16 are left as they
    /// were): half the products and three loads of four, for a last block of 16 rows or fewer.
    ///
    /// # Safety
    /// `a` must be readable for 16 rows of 64 bytes and `b` for 16 rows of 128 bytes.
    pub unsafe fn step_half(&mut self, a: *const u16, a_stride: usize, b: *const u16) {
        // SAFETY: the tiles are configured; the loads stay within the caller's bounds.
        unsafe {
            std::arch::asm!(
                "tileloadd tmm4, [{a} + {sa} * 1]",
                "tileloadd tmm6, [{b} + {sb} * 1]",
                "tileloadd tmm7, [{b2} + {sb} * 1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                a = in(reg) a,
                sa = in(reg) a_stride,
                b = in(reg) b,
                b2 = in(reg) b.add(32),
                sb = in(reg) 128usize,
                options(nostack, readonly)
            );
        }
    }

    /// Writes the block of sums to `out` (row `r`, column `c` at `out[r][c]`).
    pub fn store(&mut self, out: &mut [[f32; BLOCK]; BLOCK]) {
        // SAFETY: `out` is 32 rows of 128 bytes, 128 bytes apart.
        unsafe { self.store_to(out.as_mut_ptr().cast(), 4 * BLOCK) };
    }

    /// Reads the block of sums from `at`: 32 rows of 32 f32, `stride` bytes apart.
    ///
    /// # Safety
    /// `at` must be readable for 32 rows of 128 bytes, `stride` bytes apart.
    pub unsafe fn load_from(&mut self, at: *const f32, stride: usize) {
        let at = at.cast::<u8>();
        // SAFETY: the tiles are configured; each load reads 16 rows of 64 bytes, `stride`
        // apart, inside the caller's 32 rows of 128 bytes.
        unsafe {
            std::arch::asm!(
                "tileloadd tmm0, [{c0} + {s} * 1]",
                "tileloadd tmm1, [{c1} + {s} * 1]",
                "tileloadd tmm2, [{c2} + {s} * 1]",
                "tileloadd tmm3, [{c3} + {s} * 1]",
                c0 = in(reg) at,
                c1 = in(reg) at.add(64),
                c2 = in(reg) at.add(16 * stride),
                c3 = in(reg) at.add(16 * stride + 64),
                s = in(reg) stride,
                options(nostack, readonly)
            );
        }
    }

    /// Writes the block of sums to `at`: 32 rows of 32 f32, `stride` bytes apart.
    ///
    /// # Safety
    /// `at` must be writable for 32 rows of 128 bytes, `stride` bytes apart, and used by no
    /// other thread meanwhile.
    pub unsafe fn store_to(&mut self, at: *mut f32, stride: usize) {
        let at = at.cast::<u8>();
        // SAFETY: the tiles are configured; each store writes 16 rows of 64 bytes, `stride`
        // apart, inside the caller's 32 rows of 128 bytes.
        unsafe {
            std::arch::asm!(
                "tilestored [{c0} + {s} * 1], tmm0",
                "tilestored [{c1} + {s} * 1], tmm1",
                "tilestored [{c2} + {s} * 1], tmm2",
                "tilestored [{c3} + {s} * 1], tmm3",
                c0 = in(reg) at,
                c1 = in(reg) at.add(64),
                c2 = in(reg) at.add(16 * stride),
                c3 = in(reg) at.add(16 * stride + 64),
                s = in(reg) stride,
                options(nostack)
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by `start`; releasing them returns the registers
        // to their initial state.
        unsafe {
            std::arch::asm!("tilerelease", options(nostack, nomem));
        }
    }
}
