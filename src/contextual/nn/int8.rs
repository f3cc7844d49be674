//! Dense-layer products in 8-bit integers: weights quantized per output feature (the `int8`
//! variant), activations quantized per token at run time.
//!
//! A weight matrix whose every row is exactly `s_o * q` with integers `|q| <= 127` (what the
//! `int8` variant and `vecshift compress --variant int8` produce) is kept as those integers. At
//! run time each token's input row is quantized asymmetrically to bytes, `x ≈ a_t (u - z_t)`
//! with `u` in [0, 255] (the whole byte range, also for GELU's lopsided outputs), and the
//! product is summed in exact i32 arithmetic:
//! `y = a_t s_o (sum_k u_k q_ok - z_t sum_k q_ok) + b_o`.
//! Unsigned-by-signed byte products are what x86's `vpdpbusd` (AVX-512 VNNI) computes, 64 per
//! instruction against 16 f32 multiply-adds; other CPUs take a portable loop over the same
//! integers, so every CPU gives the same sums.
//!
//! The weights sit in the panels of [`super::panels`], four inputs to a 32-bit lane: panel `p`,
//! inner step `k` (inputs `4k .. 4k + 4`) holds `PANEL` features x 4 bytes.

use rayon::prelude::*;

use crate::simd::amx;
use super::pages::Pages;
use super::panels::{Block, PANEL, PackedWeight, Tasks, TILE, tiled_with};
use crate::simd::multiversion;

/// Inputs per 32-bit lane of the byte products.
const GROUP: usize = 4;

/// A dense layer's weight as int8 panels with one scale per output feature.
pub(crate) struct PackedInt8 {
    in_dim: usize,
    out_dim: usize,
    /// Inner steps: `in_dim` rounded up to [`GROUP`], divided by it.
    steps: usize,
    /// Panel `p`, step `k`, feature lane `f`, input `i` at `((p * steps + k) * PANEL + f) * 4 + i`.
    codes: Pages<i8>,
    /// `s_o`, zero-padded to whole panels.
    scales: Vec<f32>,
    /// `sum_k q_ok` per feature, zero-padded: removes the activations' zero point.
    sums: Vec<i32>,
}

impl PackedInt8 {
    /// Packs a row-major `[out_dim, in_dim]` weight when every row is exactly `s * q` with
    /// integers `|q| <= 127` (a weight quantized per output channel), `None` otherwise (or
    /// where the memory for its panels cannot be mapped).
    pub(crate) fn pack(weight: &[f32], out_dim: usize, in_dim: usize) -> Option<Self> {
        if weight.len() != out_dim * in_dim || in_dim == 0 {
            return None;
        }
        let rows: Vec<(f32, Vec<i8>)> = weight.chunks_exact(in_dim).map(row_codes).collect::<Option<_>>()?;
        let (panels, steps) = (out_dim.div_ceil(PANEL), in_dim.div_ceil(GROUP));
        // In large pages, as the f32 and f16 panels (see `super::pages`).
        let mut codes = Pages::zeroed(panels * steps * PANEL * GROUP)?;
        let mut scales = vec![0f32; panels * PANEL];
        let mut sums = vec![0i32; panels * PANEL];
        for (feature, (scale, row)) in rows.iter().enumerate() {
            let (panel, lane) = (feature / PANEL, feature % PANEL);
            for (k, &q) in row.iter().enumerate() {
                codes[((panel * steps + k / GROUP) * PANEL + lane) * GROUP + k % GROUP] = q;
            }
            scales[feature] = *scale;
            sums[feature] = row.iter().map(|&q| i32::from(q)).sum();
        }
        Some(PackedInt8 { in_dim, out_dim, steps, codes, scales, sums })
    }

    /// `xs [tokens, in] x weight^T (+ bias)`, then GELU (erf) if asked.
    fn matmul(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool) -> Vec<f32> {
        self.matmul_with(xs, bias, gelu, Kernel::best(self.in_dim, xs.len() / self.in_dim))
    }

    /// [`Self::matmul`] with the given kernel, which the CPU must have (see [`Kernel::best`]): AMX only
    /// for widths of whole 64-input blocks.
    fn matmul_with(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool, kernel: Kernel) -> Vec<f32> {
        let tokens = xs.len() / self.in_dim;
        let width = self.steps * GROUP;
        // AMX reads whole 32-token tiles of activations; the other kernels read only real rows.
        let (rows, padding) = match kernel {
            Kernel::Amx => (2 * amx::ROWS, 2 * amx::ROWS),
            Kernel::Vnni | Kernel::Portable => (TILE, 1),
        };
        let activations = Activations::quantize(xs, self.in_dim, width, padding);
        let init = || match kernel {
            // SAFETY: `Kernel::Amx` is only chosen where `amx::available()` (see `Kernel`).
            Kernel::Amx => Some(AmxState { tiles: unsafe { amx::Tiles::configure() }, sums: Box::new([[0; 32]; 32]) }),
            Kernel::Vnni | Kernel::Portable => None,
        };
        tiled_with(tokens, self.out_dim, rows, Tasks::Few, init, |tiles, block| {
            let panel_bias = block.bias(bias);
            let panel = self.panel(block.panel, &panel_bias);
            let tile = activations.tile(block.first_token, block.tokens);
            match tiles {
                // SAFETY: AMX was granted (`init`); the activations are padded to whole tiles of
                // `rows` tokens and `width` is a whole number of 64-byte blocks (`Kernel::best`);
                // `tiled_with` hands each block to one call only.
                Some(tiles) => unsafe { x86::amx_block(tiles, &panel, &activations, gelu, block) },
                // SAFETY: VNNI was detected (`Kernel::best`); each block goes to one call only.
                None if kernel == Kernel::Vnni => unsafe { x86::block(&panel, &tile, gelu, block) },
                None => portable_block(&panel, &tile, gelu, block),
            }
        })
    }

    /// Panel `p` and its per-feature values.
    fn panel<'a>(&'a self, p: usize, bias: &'a [f32; PANEL]) -> Panel<'a> {
        let panel_len = self.steps * PANEL * GROUP;
        let at = p * PANEL..(p + 1) * PANEL;
        Panel {
            codes: &self.codes[p * panel_len..(p + 1) * panel_len],
            scales: self.scales[at.clone()].try_into().expect("PANEL values"),
            sums: self.sums[at].try_into().expect("PANEL values"),
            bias,
            steps: self.steps,
        }
    }
}

/// A task's AMX tiles, and where they store a block's sums (kept between blocks, as zeroing
/// 4 KB per block was a twentieth of the product's time).
struct AmxState {
    tiles: amx::Tiles,
    sums: Box<[[i32; 32]; 32]>,
}

/// Which kernel computes the integer sums. All compute the same sums, so the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// AMX tiles (`tdpbusd`), blocks of 32 tokens.
    Amx,
    /// AVX-512 VNNI (`vpdpbusd`), blocks of [`TILE`] tokens.
    Vnni,
    /// Plain loops (compiled for AVX2 too).
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU has for `tokens` inputs of `in_dim` values. AMX reads the
    /// inputs in blocks of 64, so other widths take VNNI; and a tile holds 16 tokens, so for a
    /// few tokens (one short sentence) VNNI's 12-token tiles waste less.
    fn best(in_dim: usize, tokens: usize) -> Kernel {
        if in_dim.is_multiple_of(amx::ROW_BYTES) && tokens > TILE && amx::available() {
            Kernel::Amx
        } else if vnni_available() {
            Kernel::Vnni
        } else {
            Kernel::Portable
        }
    }
}

/// `(s, q)` with `row == s * q` exactly and `|q| <= 127`, if there is such a pair.
///
/// The quantizer's `s` is `max|w| / 127` rounded to f32 and every weight `q * s` rounded to f32,
/// so `s` is found from the row's largest magnitude to within an ulp or two; the candidates
/// around it are tried and one is kept only if it reproduces every weight bit for bit.
fn row_codes(row: &[f32]) -> Option<(f32, Vec<i8>)> {
    let max = row.iter().fold(0f32, |m, &w| m.max(w.abs()));
    if !max.is_finite() {
        return None;
    }
    if max == 0.0 {
        return Some((0.0, vec![0; row.len()]));
    }
    let guess = max / 127.0;
    (-2i32..=2).find_map(|ulps| {
        let scale = f32::from_bits(guess.to_bits().checked_add_signed(ulps)?);
        let codes = row
            .iter()
            .map(|&w| {
                let q = (w / scale).round();
                (q.abs() <= 127.0 && q * scale == w).then_some(q as i8)
            })
            .collect::<Option<Vec<i8>>>()?;
        Some((scale, codes))
    })
}

/// A weight panel and the per-feature values its epilogue needs.
struct Panel<'a> {
    /// `steps x PANEL x GROUP` codes.
    codes: &'a [i8],
    scales: &'a [f32; PANEL],
    sums: &'a [i32; PANEL],
    bias: &'a [f32; PANEL],
    steps: usize,
}

/// Token rows quantized to bytes: `x ≈ scale * (code - zero)`, each row padded with `zero` to
/// whole groups of [`GROUP`] (padding then adds nothing: its weights are 0).
struct Activations {
    /// `tokens x width` bytes.
    codes: Vec<u8>,
    scales: Vec<f32>,
    zeros: Vec<i32>,
    width: usize,
}

/// One tile's rows of [`Activations`].
struct Tile<'a> {
    codes: &'a [u8],
    scales: &'a [f32],
    zeros: &'a [i32],
    width: usize,
}

impl Activations {
    /// Quantizes each `in_dim`-wide row of `xs` over its own range widened to include 0 (so that
    /// 0 stays exact), padding rows to `width` bytes and the rows to a multiple of `rows` (zero
    /// rows, whose results no block stores: a kernel may read whole tiles).
    fn quantize(xs: &[f32], in_dim: usize, width: usize, rows: usize) -> Self {
        let tokens = xs.len() / in_dim;
        let mut codes = vec![0u8; tokens.div_ceil(rows) * rows * width];
        let mut params = vec![(0f32, 0i32); tokens];
        // Whole tasks of rows, as `Split::matmul` splits its activations.
        let rows_per_task = (super::kernels::CHUNK / in_dim).max(1);
        codes.par_chunks_mut(width).zip(xs.par_chunks(in_dim)).zip(params.par_iter_mut()).with_min_len(rows_per_task).for_each(|((codes, row), params)| {
            *params = quantize_row(row, codes);
        });
        let (scales, zeros) = params.into_iter().unzip();
        Activations { codes, scales, zeros, width }
    }

    fn tile(&self, first: usize, tokens: usize) -> Tile<'_> {
        Tile {
            codes: &self.codes[first * self.width..(first + tokens) * self.width],
            scales: &self.scales[first..first + tokens],
            zeros: &self.zeros[first..first + tokens],
            width: self.width,
        }
    }
}

/// Quantizes one row into `codes` (padded with the zero point); returns `(scale, zero)`.
fn quantize_row(row: &[f32], codes: &mut [u8]) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected.
        return unsafe { x86::quantize_row(row, codes) };
    }
    let mut params = (0.0, 0);
    quantize_dispatch(row, codes, &mut params);
    params
}

// Compiled for AVX2 as well: the baseline build rounds through a libm call per value.
multiversion!(quantize_dispatch(row: &[f32], codes: &mut [u8], params: &mut (f32, i32)) => quantize_body);

/// [`quantize_row`]'s work, rounding half to even (one instruction where SSE4.1 exists).
#[inline(always)]
fn quantize_body(row: &[f32], codes: &mut [u8], params: &mut (f32, i32)) {
    // Sixteen lanes of minima and maxima, so that the scan runs in vector registers.
    let (mut lo, mut hi) = ([0f32; 16], [0f32; 16]);
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for i in 0..16 {
            lo[i] = if chunk[i] < lo[i] { chunk[i] } else { lo[i] };
            hi[i] = if chunk[i] > hi[i] { chunk[i] } else { hi[i] };
        }
    }
    let min = lo.iter().chain(tail).fold(0f32, |m, &x| m.min(x));
    let max = hi.iter().chain(tail).fold(0f32, |m, &x| m.max(x));
    let Some((scale, zero, inverse)) = range_params(min, max) else {
        codes.fill(0);
        *params = (0.0, 0);
        return;
    };
    for (c, &x) in codes.iter_mut().zip(row) {
        // `max` before `min` turns NaN into 0, so the value is always in [0, 255] (`clamp`
        // would keep NaN).
        #[allow(clippy::manual_clamp)]
        let code = (x * inverse + zero).round_ties_even().max(0.0).min(255.0);
        // SAFETY: a finite value in [0, 255] (see above): the conversion is exact.
        *c = unsafe { code.to_int_unchecked::<i32>() } as u8;
    }
    codes[row.len()..].fill(zero as u8);
    *params = (scale, zero as i32);
}

/// `(scale, zero, 1 / scale)` of a row whose values span `[min, max]` (with 0 inside), or
/// `None` when the row is all zeros or not finite (then every code is 0).
#[inline(always)]
fn range_params(min: f32, max: f32) -> Option<(f32, f32, f32)> {
    let scale = (max - min) / 255.0;
    if scale == 0.0 || !scale.is_finite() {
        return None;
    }
    let zero = (-min / scale).round_ties_even().clamp(0.0, 255.0);
    Some((scale, zero, 1.0 / scale))
}

/// The block's value from its integer sum, as the vector kernel computes it (one fused
/// multiply-add), so that both kernels agree.
#[inline(always)]
fn dequantize(sum: i32, zero: i32, weight_sum: i32, scale: f32, bias: f32) -> f32 {
    ((sum - zero * weight_sum) as f32).mul_add(scale, bias)
}

// The block without VNNI: compiled for AVX2 as well, picked at run time.
multiversion!(portable_block(panel: &Panel, tile: &Tile, gelu: bool, block: Block) => portable_body);

/// The block without VNNI: the same integer sums, in a loop the compiler vectorises.
#[inline(always)]
fn portable_body(panel: &Panel, tile: &Tile, gelu: bool, block: Block) {
    for j in 0..block.tokens {
        let row = &tile.codes[j * tile.width..(j + 1) * tile.width];
        let mut sums = [0i32; PANEL];
        for (step, x) in panel.codes.chunks_exact(PANEL * GROUP).zip(row.chunks_exact(GROUP)) {
            for (sum, w) in sums.iter_mut().zip(step.chunks_exact(GROUP)) {
                *sum += w.iter().zip(x).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum::<i32>();
            }
        }
        for (f, &sum) in sums.iter().enumerate().take(block.features) {
            let scale = tile.scales[j] * panel.scales[f];
            let mut value = dequantize(sum, tile.zeros[j], panel.sums[f], scale, panel.bias[f]);
            if gelu {
                value = super::kernels::gelu(value);
            }
            // SAFETY: row `j < tokens`, feature `f < features` of this call's block.
            unsafe { *block.out.add(j * block.stride + f) = value };
        }
    }
}

/// Whether the VNNI kernel can run here.
fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl PackedWeight for PackedInt8 {
    const NAME: &'static str = "vecshift-matmul-int8";

    fn dims(&self) -> (usize, usize) {
        (self.in_dim, self.out_dim)
    }

    fn product(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool) -> Vec<f32> {
        self.matmul(xs, bias, gelu)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::simd::amx;
    use super::super::panels::{Block, TILE};
    use super::{Activations, AmxState, GROUP, Panel, Tile};

    /// One block of the result.
    ///
    /// # Safety
    /// AVX-512F, AVX-512 VNNI and FMA must be available; `block.out` valid for `block.tokens`
    /// rows of `block.features` values, `block.stride` apart; `tile` holds `block.tokens` rows.
    pub(super) unsafe fn block(panel: &Panel, tile: &Tile, gelu: bool, block: Block) {
        debug_assert!(block.tokens <= TILE && tile.scales.len() == block.tokens);
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match block.tokens {
                    // SAFETY: as this function's own contract.
                    $($n => unsafe { micro::<$n>(panel, tile, gelu, block) },)*
                    _ => {}
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12);
    }

    /// [`super::quantize_row`] in AVX-512: the same codes as the portable loop (the same
    /// operations, unfused, in the same order per value), 16 values a step. The compiler's
    /// vectorisation of the portable loop took a third of an int8 product's time.
    ///
    /// # Safety
    /// AVX-512F must be available; `codes` at least as long as `row`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn quantize_row(row: &[f32], codes: &mut [u8]) -> (f32, i32) {
        debug_assert!(codes.len() >= row.len());
        let steps = row.len().div_ceil(16);
        let mask = |i: usize| -> __mmask16 {
            let left = row.len() - 16 * i;
            if left >= 16 { 0xFFFF } else { (1u16 << left) - 1 }
        };
        let (x, out) = (row.as_ptr(), codes.as_mut_ptr().cast::<i8>());
        let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for i in 0..steps {
            // SAFETY: masked to the row (masked-off lanes read as 0, which the range holds).
            let v = unsafe { _mm512_maskz_loadu_ps(mask(i), x.add(16 * i)) };
            // `min(v, lo)` is `v < lo ? v : lo`, the portable loop's comparison (NaN keeps `lo`).
            lo = _mm512_min_ps(v, lo);
            hi = _mm512_max_ps(v, hi);
        }
        let (mut lows, mut highs) = ([0f32; 16], [0f32; 16]);
        // SAFETY: 16 floats each.
        unsafe {
            _mm512_storeu_ps(lows.as_mut_ptr(), lo);
            _mm512_storeu_ps(highs.as_mut_ptr(), hi);
        }
        let min = lows.iter().fold(0f32, |m, &x| m.min(x));
        let max = highs.iter().fold(0f32, |m, &x| m.max(x));
        let Some((scale, zero, inverse)) = super::range_params(min, max) else {
            codes.fill(0);
            return (0.0, 0);
        };
        let (inverse, zero_point, top) = (_mm512_set1_ps(inverse), _mm512_set1_ps(zero), _mm512_set1_ps(255.0));
        for i in 0..steps {
            // SAFETY: masked to the row, and `codes` is at least as long.
            unsafe {
                let v = _mm512_maskz_loadu_ps(mask(i), x.add(16 * i));
                let v = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_add_ps(_mm512_mul_ps(v, inverse), zero_point));
                // `max(v, 0)` gives 0 for NaN, as the portable loop's `max(0.0)`.
                let v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), top);
                _mm512_mask_cvtusepi32_storeu_epi8(out.add(16 * i), mask(i), _mm512_cvtps_epi32(v));
            }
        }
        codes[row.len()..].fill(zero as u8);
        (scale, zero as i32)
    }

    /// `N x 2` i32 accumulators; per inner step two weight registers (32 features x 4 bytes)
    /// and one broadcast group of 4 activation bytes per token.
    #[target_feature(enable = "avx512f,avx512vnni,fma")]
    unsafe fn micro<const N: usize>(panel: &Panel, tile: &Tile, gelu: bool, block: Block) {
        let mut acc = [[_mm512_setzero_si512(); 2]; N];
        let (w, x) = (panel.codes.as_ptr().cast::<__m512i>(), tile.codes.as_ptr());
        for k in 0..panel.steps {
            // SAFETY: step `k < steps` of the panel (2 x 64 bytes) and of every tile row.
            unsafe {
                let w0 = _mm512_loadu_si512(w.add(2 * k));
                let w1 = _mm512_loadu_si512(w.add(2 * k + 1));
                for (j, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_epi32(x.add(j * tile.width + GROUP * k).cast::<i32>().read_unaligned());
                    acc[0] = _mm512_dpbusd_epi32(acc[0], b, w0);
                    acc[1] = _mm512_dpbusd_epi32(acc[1], b, w1);
                }
            }
        }
        // SAFETY: as this function's contract.
        unsafe { finish(&acc, panel, tile, gelu, block) };
    }

    /// Turns `N` rows of integer sums into the block's values (see [`super::dequantize`]) and
    /// stores them.
    ///
    /// # Safety
    /// AVX-512F and FMA must be available; `tile` and `block` hold `N` rows.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn finish<const N: usize>(acc: &[[__m512i; 2]; N], panel: &Panel, tile: &Tile, gelu: bool, block: Block) {
        // SAFETY: the panel's arrays hold PANEL = 2 x 16 values.
        let (scales, sums, bias) = unsafe {
            let at = |p: *const f32| [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))];
            let sums = panel.sums.as_ptr().cast::<__m512i>();
            (at(panel.scales.as_ptr()), [_mm512_loadu_si512(sums), _mm512_loadu_si512(sums.add(1))], at(panel.bias.as_ptr()))
        };
        let mut out = [[_mm512_setzero_ps(); 2]; N];
        for (j, (out, acc)) in out.iter_mut().zip(acc).enumerate() {
            let (zero, scale) = (_mm512_set1_epi32(tile.zeros[j]), _mm512_set1_ps(tile.scales[j]));
            for h in 0..2 {
                let sum = _mm512_sub_epi32(acc[h], _mm512_mullo_epi32(zero, sums[h]));
                out[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(scale, scales[h]), bias[h]);
            }
        }
        // SAFETY: as this function's contract.
        unsafe { crate::contextual::nn::panels::store_block(&out, gelu, block) };
    }

    /// One block of up to 32 tokens, summed in AMX tiles.
    ///
    /// # Safety
    /// `tiles` configured on this thread; AVX-512F and FMA available; `activations` padded to
    /// whole 32-token tiles, `activations.width` a multiple of 64; `block.out` as for [`block`].
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn amx_block(tiles: &mut AmxState, panel: &Panel, activations: &Activations, gelu: bool, block: Block) {
        let AmxState { tiles, sums } = tiles;
        let width = activations.width;
        let a = activations.codes[block.first_token * width..].as_ptr();
        let blocks = width / amx::ROW_BYTES;
        // SAFETY: 32 (or 16) padded rows of `width` bytes from the block's first token; the
        // panel holds `steps = width / 4` steps of 128 bytes.
        unsafe {
            match block.tokens > amx::ROWS {
                true => tiles.sums::<true>(a, width, panel.codes.as_ptr(), blocks, sums),
                false => tiles.sums::<false>(a, width, panel.codes.as_ptr(), blocks, sums),
            }
        }
        for (j, row) in sums.iter().take(block.tokens).enumerate() {
            let tile = activations.tile(block.first_token + j, 1);
            let one = block.row(j);
            // SAFETY: a row of 32 i32 is two 512-bit values; one row of the block.
            unsafe {
                let row = row.as_ptr().cast::<__m512i>();
                finish(&[[_mm512_loadu_si512(row), _mm512_loadu_si512(row.add(1))]], panel, &tile, gelu, one);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::super::panels::Block;
    use super::{Activations, AmxState, Panel, Tile};

    /// Never called: [`super::vnni_available`] is false off x86-64.
    pub(super) unsafe fn block(_: &Panel, _: &Tile, _: bool, _: Block) {
        unreachable!("the VNNI kernel is x86-64 only")
    }

    /// Never called: [`super::amx::available`] is false off x86-64.
    pub(super) unsafe fn amx_block(_: &mut AmxState, _: &Panel, _: &Activations, _: bool, _: Block) {
        unreachable!("the AMX kernel is x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::super::panels::tests::{SHAPES, erf, inputs, weights};
    use super::*;

    /// The int8 weight the `int8` variant makes of `w` (per-row scale in f64, ties to even).
    fn quantized(w: &[f32], cols: usize) -> Vec<f32> {
        let (q, scales) = crate::compress::quant::int8_sym(w, cols);
        crate::compress::quant::dequantize_rows(&q, &scales, None, cols)
    }

    /// The product the kernel must compute, summed in f64: each activation replaced by its
    /// documented quantization (f32 range including 0 in 255 steps, codes rounded half to even,
    /// as `quantize_row` does), the weight as given.
    fn reference(weight: &[f32], xs: &[f32], out_dim: usize, in_dim: usize, bias: &[f32]) -> Vec<f64> {
        let mut out = Vec::new();
        for row in xs.chunks(in_dim) {
            let lo = row.iter().copied().fold(0f32, f32::min);
            let hi = row.iter().copied().fold(0f32, f32::max);
            let a = (hi - lo) / 255.0;
            let z = if a > 0.0 { (-lo / a).round_ties_even() } else { 0.0 };
            let step = if a > 0.0 { 1.0 / a } else { 0.0 };
            let deq: Vec<f64> = row.iter().map(|&x| f64::from(a) * f64::from((x * step + z).round_ties_even().clamp(0.0, 255.0) - z)).collect();
            for o in 0..out_dim {
                out.push((0..in_dim).map(|k| f64::from(weight[o * in_dim + k]) * deq[k]).sum::<f64>() + f64::from(bias[o]));
            }
        }
        out
    }

    #[test]
    fn finds_the_codes_of_per_row_int8_weights_and_only_those() {
        let w = weights(40, 24);
        assert!(PackedInt8::pack(&w, 40, 24).is_none(), "plain f32 weights are not int8");
        let q = quantized(&w, 24);
        let packed = PackedInt8::pack(&q, 40, 24).expect("the int8 variant's weights pack");
        // Every weight is recovered exactly from its code and its row's scale.
        for (o, row) in q.chunks(24).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                let code = packed.codes[((o / PANEL * packed.steps + k / GROUP) * PANEL + o % PANEL) * GROUP + k % GROUP];
                assert_eq!(f32::from(code) * packed.scales[o], v);
            }
        }
    }

    #[test]
    fn every_quantizer_gives_the_same_codes() {
        // Lengths around the 16-value steps; ties (k + 0.5 steps), NaN, negative-only and zero rows.
        for len in [1usize, 5, 16, 17, 33, 64, 100] {
            let rows: [Vec<f32>; 5] = [
                inputs(1, len),
                (0..len).map(|i| i as f32 * 0.5 - 3.0).collect(),
                (0..len).map(|i| if i % 7 == 3 { f32::NAN } else { (i as f32).sin() }).collect(),
                (0..len).map(|i| -1.0 - i as f32).collect(),
                vec![0.0; len],
            ];
            for row in rows {
                let width = len.div_ceil(GROUP) * GROUP;
                let (mut portable, mut chosen) = (vec![0u8; width], vec![0u8; width]);
                let mut params = (0.0, 0);
                quantize_dispatch(&row, &mut portable, &mut params);
                let chosen_params = quantize_row(&row, &mut chosen);
                assert_eq!((portable, params), (chosen, chosen_params), "{row:?}");
            }
        }
    }

    #[test]
    fn equals_the_f64_product_of_the_quantized_activations() {
        // Besides the shared odd shapes, widths of whole 64-input blocks (the AMX kernel's) with
        // 32-token tiles, a last tile of 16 or fewer, and one of more.
        let amx_shapes = [(70, 40, 128), (45, 64, 384), (33, 96, 64)];
        for (tokens, out_dim, in_dim) in SHAPES.into_iter().chain(amx_shapes) {
            let w = weights(out_dim, in_dim);
            let w = quantized(&w, in_dim);
            let packed = PackedInt8::pack(&w, out_dim, in_dim).expect("int8 weights pack");
            // Lopsided rows, as after GELU.
            let xs: Vec<f32> = inputs(tokens, in_dim).iter().map(|x| x.max(-0.17)).collect();
            let bias: Vec<f32> = (0..out_dim).map(|o| o as f32 / 7.0 - 3.0).collect();
            let want = reference(&w, &xs, out_dim, in_dim, &bias);
            let gelu = |x: f64| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2));
            let close = |g: f32, w: f64| (f64::from(g) - w).abs() <= 1e-4 * (1.0 + w.abs());
            let got = packed.matmul(&xs, Some(&bias), false);
            let got_gelu = packed.matmul(&xs, Some(&bias), true);
            assert_eq!(got.len(), want.len());
            for ((&g, &gg), &w) in got.iter().zip(&got_gelu).zip(&want) {
                assert!(close(g, w), "{tokens}x{out_dim}x{in_dim}: {g} vs {w}");
                assert!(close(gg, gelu(w)), "GELU {tokens}x{out_dim}x{in_dim}: {gg} vs {}", gelu(w));
            }
            // Every kernel this CPU has gives the same values as the one `matmul` picked, bit for bit.
            for kernel in [Kernel::Amx, Kernel::Vnni, Kernel::Portable] {
                let runs = match kernel {
                    Kernel::Amx => amx::available() && in_dim.is_multiple_of(amx::ROW_BYTES),
                    Kernel::Vnni => vnni_available(),
                    Kernel::Portable => true,
                };
                if runs {
                    for gelu in [false, true] {
                        let other = packed.matmul_with(&xs, Some(&bias), gelu, kernel);
                        assert_eq!(&other, if gelu { &got_gelu } else { &got }, "{tokens}x{out_dim}x{in_dim}: {kernel:?} differs");
                    }
                }
            }
        }
    }
}
