//! Intel AMX tiles for the encoder's int8 product, its f32 products as three bf16 products, and
//! the neighbour search's batched int8 scores: 16 x 64-byte tile registers that `tdpbusd` (or
//! `tdpbsud`) multiplies in one instruction (16,384 byte products summed into exact i32), or
//! `tdpbf16ps` (8,192 bf16 products summed in f32).
//!
//! `vpdpbusd` computes 64 byte products per instruction; one `tdpbusd` computes 256 times as
//! many in about 16 cycles, so on CPUs that have AMX (Intel Xeon since Sapphire Rapids) batched
//! int8 products are bound by moving bytes, not by multiplying them. The sums are the same
//! integers as the VNNI and portable kernels' (integer sums do not depend on their order), so
//! every kernel gives the same values bit for bit.
//!
//! Rust's AMX intrinsics are not stable, so the few instructions are written as inline
//! assembly. Linux hands the tile registers to a process only on request (`arch_prctl`), so
//! [`available`] asks once; a CPU or kernel without AMX keeps the VNNI kernel.

/// Tokens in one tile (its rows).
pub(crate) const ROWS: usize = 16;
/// Bytes in one tile row: 64 inputs of the activations, 16 features x 4 inputs of the weights.
pub(crate) const ROW_BYTES: usize = 64;
/// Bytes in one whole tile, the unit the bf16 kernel's activations are laid out in.
pub(crate) const TILE_BYTES: usize = ROWS * ROW_BYTES;

/// How far ahead of the weight step being multiplied the kernels prefetch: two 2 KiB steps.
const PREFETCH_AHEAD: usize = 4096;

/// Prefetches the 32 cache lines (one 2 KiB step of a weight panel) `{ahead}` bytes past the
/// operand named `$reg`.
///
/// A sentence at a time, each weight is used by at most 16 tokens, and the weights (tens of MB)
/// come from L3 or memory for every sentence: the kernels waited on `tileloadd` for most of
/// their time, and loading two steps ahead made them about 1.5 times as fast.
macro_rules! prefetch_block {
    ($reg:literal) => {
        concat!(
            "prefetcht0 [{", $reg, "} + {ahead} + 0]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 64]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 128]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 192]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 256]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 320]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 384]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 448]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 512]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 576]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 640]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 704]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 768]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 832]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 896]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 960]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1024]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1088]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1152]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1216]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1280]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1344]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1408]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1472]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1536]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1600]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1664]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1728]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1792]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1856]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1920]\n",
            "prefetcht0 [{", $reg, "} + {ahead} + 1984]\n"
        )
    };
}

/// Whether the AMX int8 kernel can run in this process: the CPU has it, and the operating
/// system granted the tile registers.
pub(crate) fn available() -> bool {
    granted() && has(25)
}

/// Whether the AMX bf16 kernel (`tdpbf16ps`) can run in this process.
pub(crate) fn bf16_available() -> bool {
    granted() && has(22)
}

/// Whether CPUID leaf 7 reports EDX bit `bit` (22: AMX-BF16, 24: AMX-TILE, 25: AMX-INT8).
fn has(bit: u32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID leaf 7: where a CPU lacks it, it reports zeros, so no feature.
        (std::arch::x86_64::__cpuid_count(7, 0).edx >> bit) & 1 == 1
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = bit;
        false
    }
}

/// Whether the CPU has AMX tiles and the kernels' AVX-512 epilogues, and Linux granted the
/// tiles to this process (asked once).
fn granted() -> bool {
    static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GRANTED.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    const ARCH_GET_XCOMP_PERM: libc::c_long = 0x1022;
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // The epilogues run in AVX-512 (see `int8` and `split`).
    let vector = std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("fma");
    if !(has(24) && vector) {
        return false;
    }
    // SAFETY: these `arch_prctl` requests only read and extend the process's own permissions.
    unsafe {
        if libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0 {
            return false;
        }
        let mut granted: u64 = 0;
        libc::syscall(libc::SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mut granted as *mut u64) == 0 && (granted >> XFEATURE_XTILEDATA) & 1 == 1
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// The tile registers of the calling thread, configured as eight tiles of [`ROWS`] x
/// [`ROW_BYTES`]; released (so that the thread's context switches stop saving 8 KB of tiles)
/// when dropped.
pub(crate) struct Tiles(std::marker::PhantomData<*const ()>);

/// The `ldtilecfg` operand: palette 1, then each tile's bytes per row and rows.
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

impl Tiles {
    /// Configures this thread's tiles.
    ///
    /// # Safety
    /// [`available`] must have returned true.
    pub(crate) unsafe fn configure() -> Tiles {
        // SAFETY: as this function's contract.
        unsafe { Tiles::configure_shapes(&[(ROWS as u8, ROW_BYTES as u16); 8]) }
    }

    /// Configures this thread's tiles `tmm0`, `tmm1`, ... as `(rows, bytes per row)` each
    /// (at most eight; a zero shape leaves a tile unused).
    ///
    /// # Safety
    /// [`available`] must have returned true; no shape may exceed 16 rows of 64 bytes, and a
    /// shape with no rows must have no bytes and the reverse (else `ldtilecfg` faults).
    pub(crate) unsafe fn configure_shapes(shapes: &[(u8, u16)]) -> Tiles {
        debug_assert!(shapes.len() <= 8 && shapes.iter().all(|&(rows, bytes)| usize::from(rows) <= ROWS && usize::from(bytes) <= ROW_BYTES && (rows == 0) == (bytes == 0)));
        let mut config = Config { palette: 1, start_row: 0, reserved: [0; 14], bytes_per_row: [0; 16], rows: [0; 16] };
        for (tile, &(rows, bytes)) in shapes.iter().enumerate() {
            (config.rows[tile], config.bytes_per_row[tile]) = (rows, bytes);
        }
        // SAFETY: AMX is available (the caller's contract) and the operand is a valid palette-1
        // configuration of 64 bytes.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly));
        }
        Tiles(std::marker::PhantomData)
    }

    /// `out[t][f] = sum_k a[t][k] * b[k][f]` for `32` tokens (`TWO = true`) or `16`, and the
    /// [`crate::contextual::nn::panels::PANEL`] = 32 features of one int8 panel, as i32 rows of 32 values.
    ///
    /// `a` is the first token's row of activation bytes, rows `a_stride` bytes apart; `b` the
    /// panel's codes (inner step `k`, four inputs each, is 128 bytes: 32 features x 4); `blocks`
    /// the number of 64-input blocks.
    ///
    /// # Safety
    /// `a` must be readable for `blocks * 64` bytes on each of the 32 (or 16) rows, `b` for
    /// `blocks * 16 * 128` bytes.
    #[cfg(target_arch = "x86_64")]
    pub(crate) unsafe fn sums<const TWO: bool>(&self, a: *const u8, a_stride: usize, b: *const i8, blocks: usize, out: &mut [[i32; 32]; 32]) {
        if blocks == 0 {
            out.iter_mut().for_each(|row| row.fill(0));
            return;
        }
        let c = out.as_mut_ptr().cast::<u8>();
        // Panel step rows: 32 features x 4 bytes.
        let b_stride = 128usize;
        let c_stride = 128usize;
        // SAFETY: the tiles are configured (`self`), and the reads and writes stay within what
        // this function's contract grants.
        unsafe {
            if TWO {
                std::arch::asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    "2:",
                    "tileloadd tmm4, [{a} + {sa}*1]",
                    "tileloadd tmm5, [{a2} + {sa}*1]",
                    "tileloadd tmm6, [{b} + {sb}*1]",
                    "tileloadd tmm7, [{b} + {sb}*1 + 64]",
                    prefetch_block!("b"),
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm7",
                    "tdpbusd tmm2, tmm5, tmm6",
                    "tdpbusd tmm3, tmm5, tmm7",
                    "add {a}, 64",
                    "add {a2}, 64",
                    "add {b}, 2048",
                    "dec {n}",
                    "jnz 2b",
                    "tilestored [{c} + {sc}*1], tmm0",
                    "tilestored [{c} + {sc}*1 + 64], tmm1",
                    "tilestored [{c} + {sc}*1 + 2048], tmm2",
                    "tilestored [{c} + {sc}*1 + 2112], tmm3",
                    a = inout(reg) a => _,
                    a2 = inout(reg) a.add(ROWS * a_stride) => _,
                    b = inout(reg) b => _,
                    n = inout(reg) blocks => _,
                    sa = in(reg) a_stride,
                    sb = in(reg) b_stride,
                    c = in(reg) c,
                    sc = in(reg) c_stride,
                    ahead = const PREFETCH_AHEAD,
                    options(nostack),
                );
            } else {
                std::arch::asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "2:",
                    "tileloadd tmm4, [{a} + {sa}*1]",
                    "tileloadd tmm6, [{b} + {sb}*1]",
                    "tileloadd tmm7, [{b} + {sb}*1 + 64]",
                    prefetch_block!("b"),
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm7",
                    "add {a}, 64",
                    "add {b}, 2048",
                    "dec {n}",
                    "jnz 2b",
                    "tilestored [{c} + {sc}*1], tmm0",
                    "tilestored [{c} + {sc}*1 + 64], tmm1",
                    a = inout(reg) a => _,
                    b = inout(reg) b => _,
                    n = inout(reg) blocks => _,
                    sa = in(reg) a_stride,
                    sb = in(reg) b_stride,
                    c = in(reg) c,
                    sc = in(reg) c_stride,
                    ahead = const PREFETCH_AHEAD,
                    options(nostack),
                );
            }
        }
    }
}

impl Tiles {
    /// `out[t][f] = sum_k (ah ah_k bh + ah_k bl + al_k bh)` for 32 tokens (`TWO = true`) or 16
    /// and the 32 features of one panel: an f32 product as three bf16 products (`tdpbf16ps`
    /// multiplies bf16 pairs exactly and sums in f32), each operand split as `hi + lo`.
    ///
    /// `a_hi`, `a_lo` are the split activations of the first 16 tokens in [`TILE_BYTES`] tile
    /// blocks (16 rows of one 32-input block, 64 bytes a row) one after the other, one per
    /// 32-input block; the next 16 tokens' blocks start `a_tile` bytes later. `b_hi`, `b_lo` are
    /// the panel's split weights (inner step `k`, two inputs each, is 128 bytes: 32 features x 2
    /// bf16); `blocks` the number of 32-input blocks.
    ///
    /// # Safety
    /// As [`Tiles::sums`], with 32-input (64-byte) blocks: `a_hi` and `a_lo` readable for
    /// `blocks` tile blocks (and as many `a_tile` bytes later when `TWO`), each weight panel for
    /// `blocks * 16 * 128` bytes.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn sums_bf16x3<const TWO: bool>(
        &self,
        a_hi: *const u16,
        a_lo: *const u16,
        a_tile: usize,
        b_hi: *const u16,
        b_lo: *const u16,
        blocks: usize,
        out: &mut [[f32; 32]; 32],
    ) {
        if blocks == 0 {
            out.iter_mut().for_each(|row| row.fill(0.0));
            return;
        }
        let c = out.as_mut_ptr().cast::<u8>();
        // Weight step rows and result rows are both 128 bytes apart.
        let stride = 128usize;
        // SAFETY: the tiles are configured (`self`), and the reads and writes stay within what
        // this function's contract grants.
        unsafe {
            if TWO {
                // Four result tiles (2 x 16 tokens, 2 x 16 features), two activation and two
                // weight tiles, reloaded for each of the three products.
                std::arch::asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    "2:",
                    "tileloadd tmm4, [{ah} + {sa}*1]",
                    "tileloadd tmm5, [{ah2} + {sa}*1]",
                    "tileloadd tmm6, [{bl} + {s}*1]",
                    "tileloadd tmm7, [{bl} + {s}*1 + 64]",
                    prefetch_block!("bl"),
                    prefetch_block!("bh"),
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "tileloadd tmm6, [{bh} + {s}*1]",
                    "tileloadd tmm7, [{bh} + {s}*1 + 64]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "tileloadd tmm4, [{al} + {sa}*1]",
                    "tileloadd tmm5, [{al2} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "add {ah}, {tile}",
                    "add {ah2}, {tile}",
                    "add {al}, {tile}",
                    "add {al2}, {tile}",
                    "add {bh}, 2048",
                    "add {bl}, 2048",
                    "dec {n}",
                    "jnz 2b",
                    "tilestored [{c} + {s}*1], tmm0",
                    "tilestored [{c} + {s}*1 + 64], tmm1",
                    "tilestored [{c} + {s}*1 + 2048], tmm2",
                    "tilestored [{c} + {s}*1 + 2112], tmm3",
                    ah = inout(reg) a_hi => _,
                    ah2 = inout(reg) a_hi.byte_add(a_tile) => _,
                    al = inout(reg) a_lo => _,
                    al2 = inout(reg) a_lo.byte_add(a_tile) => _,
                    bh = inout(reg) b_hi => _,
                    bl = inout(reg) b_lo => _,
                    n = inout(reg) blocks => _,
                    sa = in(reg) ROW_BYTES,
                    tile = const TILE_BYTES,
                    s = in(reg) stride,
                    c = in(reg) c,
                    ahead = const PREFETCH_AHEAD,
                    options(nostack),
                );
            } else {
                std::arch::asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "2:",
                    "tileloadd tmm4, [{ah} + {sa}*1]",
                    "tileloadd tmm5, [{al} + {sa}*1]",
                    "tileloadd tmm6, [{bh} + {s}*1]",
                    "tileloadd tmm7, [{bh} + {s}*1 + 64]",
                    "tileloadd tmm2, [{bl} + {s}*1]",
                    "tileloadd tmm3, [{bl} + {s}*1 + 64]",
                    // The 32-token kernel's order of the three products, so that a token's
                    // sums are the same in either (and so in any batch).
                    prefetch_block!("bh"),
                    prefetch_block!("bl"),
                    "tdpbf16ps tmm0, tmm4, tmm2",
                    "tdpbf16ps tmm1, tmm4, tmm3",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm0, tmm5, tmm6",
                    "tdpbf16ps tmm1, tmm5, tmm7",
                    "add {ah}, {tile}",
                    "add {al}, {tile}",
                    "add {bh}, 2048",
                    "add {bl}, 2048",
                    "dec {n}",
                    "jnz 2b",
                    "tilestored [{c} + {s}*1], tmm0",
                    "tilestored [{c} + {s}*1 + 64], tmm1",
                    ah = inout(reg) a_hi => _,
                    al = inout(reg) a_lo => _,
                    bh = inout(reg) b_hi => _,
                    bl = inout(reg) b_lo => _,
                    n = inout(reg) blocks => _,
                    sa = in(reg) ROW_BYTES,
                    tile = const TILE_BYTES,
                    s = in(reg) stride,
                    c = in(reg) c,
                    ahead = const PREFETCH_AHEAD,
                    options(nostack),
                );
            }
        }
    }
}

/// The tile shapes [`Tiles::query_sums`] needs when each row ends in `rem` groups of four codes
/// after its whole 64-code blocks (`rem < 16`): `tmm0` and `tmm5` the sums (two, so that one
/// tile's sums can be computed while the other's are read), `tmm1`/`tmm2` a whole block of the
/// queries and of the rows, `tmm3`/`tmm4` the last, shorter one (unused when `rem` is 0).
pub(crate) fn query_shapes(rem: usize) -> [(u8, u16); 6] {
    debug_assert!(rem < ROWS);
    let full = (ROWS as u8, ROW_BYTES as u16);
    // A tile of no rows must also have no bytes (else `ldtilecfg` faults).
    let (queries, rows) = match rem {
        0 => ((0, 0), (0, 0)),
        _ => ((ROWS as u8, (4 * rem) as u16), (rem as u8, ROW_BYTES as u16)),
    };
    [full, full, full, queries, rows, full]
}

/// The body of [`Tiles::query_sums`] with its sums in tile register `$c`.
#[cfg(target_arch = "x86_64")]
macro_rules! query_sums {
    ($c:literal, $a:expr, $a_stride:expr, $b:expr, $blocks:expr, $rem:expr, $out:expr) => {
        std::arch::asm!(
            concat!("tilezero ", $c),
            "test {n}, {n}",
            "jz 3f",
            "2:",
            "tileloadd tmm1, [{a} + {sa}*1]",
            "tileloadd tmm2, [{b} + {sb}*1]",
            concat!("tdpbsud ", $c, ", tmm1, tmm2"),
            "add {a}, 64",
            "add {b}, 1024",
            "dec {n}",
            "jnz 2b",
            "3:",
            "test {rem}, {rem}",
            "jz 4f",
            "tileloadd tmm3, [{a} + {sa}*1]",
            "tileloadd tmm4, [{b} + {sb}*1]",
            concat!("tdpbsud ", $c, ", tmm3, tmm4"),
            "4:",
            concat!("tilestored [{c} + {sb}*1], ", $c),
            a = inout(reg) $a => _,
            b = inout(reg) $b => _,
            n = inout(reg) $blocks => _,
            rem = in(reg) usize::from($rem),
            sa = in(reg) $a_stride,
            sb = in(reg) ROW_BYTES,
            c = in(reg) $out.as_mut_ptr(),
            options(nostack),
        )
    };
}

impl Tiles {
    /// `out[q][r] = sum_k a[q][k] * b[r][k]`, for 16 queries of signed codes and one tile of
    /// 16 rows of unsigned codes (`tdpbsud`): the integer sums of the neighbour search.
    ///
    /// `a` is the first query's codes, queries `a_stride` bytes apart; `b` the rows' codes in
    /// the VNNI layout, each group of four codes of the 16 rows in 64 bytes, so a block of 64
    /// codes is 1 KiB; `blocks` whole blocks, then, with `rem`, the last `rem` groups of
    /// [`query_shapes`]`(rem)`, which the tiles must be configured with. `SECOND` sums in the
    /// second sums register: alternating them lets the next tile's product start before the
    /// last one's sums have been read back.
    ///
    /// # Safety
    /// `a` must be readable for `blocks * 64` bytes (and the `4 * rem` after them) on each of
    /// the 16 rows, `b` for `blocks` KiB (and `rem * 64` bytes after them).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn query_sums<const SECOND: bool>(&self, a: *const i8, a_stride: usize, b: *const u8, blocks: usize, rem: bool, out: &mut [[i32; 16]; 16]) {
        // SAFETY: the tiles are configured (`self`), and the reads and writes stay within what
        // this function's contract grants.
        unsafe {
            if SECOND {
                query_sums!("tmm5", a, a_stride, b, blocks, rem, out);
            } else {
                query_sums!("tmm0", a, a_stride, b, blocks, rem, out);
            }
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by `configure` on this thread (`Tiles` is not Send).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("tilerelease", options(nostack, nomem));
        }
    }
}
