//! f32 products in AMX tiles: each f32 operand split into two bf16 values, `x = hi + lo`, and
//! the product taken as `hi·hi + hi·lo + lo·hi` in `tdpbf16ps`, which multiplies bf16 values
//! exactly and sums in f32.
//!
//! AVX-512 computes 32 f32 multiply-adds a cycle at best; AMX computes 512 bf16 ones. Three of
//! them stand for one f32 product, so batches of tokens run several times faster than in the
//! f32 kernel of [`super::panels`], which stays for CPUs without AMX.
//!
//! Precision: `hi` holds a value's first 8 significant bits, `lo` the next 8, so the split
//! leaves out 2^-16 of each operand at most, and the missing `lo·lo` is about 2^-16 of the
//! product: each product is exact to about 1e-5 relative, the order of f32's accumulated
//! rounding over a few hundred terms. On all-MiniLM-L6-v2 every hidden state stayed within
//! 4e-5 of PyTorch's f32 (the fidelity tests' bound is 1e-4); weights stored in f16 split
//! exactly (11 significant bits fit in 16).

use half::bf16;
use rayon::prelude::*;

use crate::simd::amx::{self, Tiles};
use super::panels::{PANEL, Tasks, tiled_with};

/// Inputs per 32-bit pair of bf16 values in a weight step.
const PAIR: usize = 2;
/// Inputs per AMX block: a 64-byte tile row of bf16.
pub(crate) const BLOCK: usize = 32;
/// Tokens per result block: two tiles of 16.
const ROWS: usize = 2 * amx::ROWS;

/// A dense layer's `[out, in]` weight split into bf16 `hi` and `lo` panels in AMX's layout.
pub(crate) struct Split {
    in_dim: usize,
    out_dim: usize,
    /// Panel `p`, step `k` (inputs `2k, 2k + 1`), feature lane `f`, input `i` at
    /// `((p * steps + k) * PANEL + f) * 2 + i`; zero-padded to whole panels.
    hi: Vec<u16>,
    lo: Vec<u16>,
}

/// `x` as `(hi, lo)` bf16 bits: `hi` the nearest bf16 to `x`, `lo` the nearest to what is left.
fn split(x: f32) -> (u16, u16) {
    let hi = bf16::from_f32(x);
    (hi.to_bits(), bf16::from_f32(x - hi.to_f32()).to_bits())
}

impl Split {
    /// Splits a row-major `[out_dim, in_dim]` weight, or `None` where AMX bf16 is not available
    /// or `in_dim` is not a whole number of [`BLOCK`]s.
    pub(crate) fn pack(weight: &[f32], out_dim: usize, in_dim: usize) -> Option<Self> {
        if in_dim == 0 || !in_dim.is_multiple_of(BLOCK) || weight.len() != out_dim * in_dim || !amx::bf16_available() {
            return None;
        }
        let steps = in_dim / PAIR;
        let len = out_dim.div_ceil(PANEL) * steps * PANEL * PAIR;
        let (mut hi, mut lo) = (vec![0u16; len], vec![0u16; len]);
        for (feature, row) in weight.chunks_exact(in_dim).enumerate() {
            let (panel, lane) = (feature / PANEL, feature % PANEL);
            for (k, &w) in row.iter().enumerate() {
                let at = ((panel * steps + k / PAIR) * PANEL + lane) * PAIR + k % PAIR;
                (hi[at], lo[at]) = split(w);
            }
        }
        Some(Split { in_dim, out_dim, hi, lo })
    }

    /// `xs [tokens, in] x weight^T (+ bias)`, then GELU (erf) if asked: a row-major
    /// `[tokens, out]` result.
    pub(crate) fn matmul(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool) -> Vec<f32> {
        let in_dim = self.in_dim;
        let tokens = xs.len() / in_dim;
        let activations = Activations::split(xs, in_dim);
        let panel_len = in_dim / PAIR * PANEL * PAIR;
        let init = || {
            // SAFETY: AMX was granted (`pack`).
            (unsafe { Tiles::configure() }, Box::new([[0f32; 32]; 32]))
        };
        tiled_with(tokens, self.out_dim, ROWS, Tasks::Few, init, |(tiles, sums), block| {
            let panel_bias = block.bias(bias);
            let weights = block.panel * panel_len;
            let (hi, lo) = activations.tile(block.first_token);
            // SAFETY: the activations hold the tiles the block reads from its first token (two
            // when it has more than 16 tokens), and one whole panel of each weight half;
            // `tiled_with` hands each block to one call.
            unsafe {
                let args = (hi.as_ptr(), lo.as_ptr(), activations.tile_len * 2, self.hi[weights..].as_ptr(), self.lo[weights..].as_ptr(), in_dim / BLOCK);
                match block.tokens > amx::ROWS {
                    true => tiles.sums_bf16x3::<true>(args.0, args.1, args.2, args.3, args.4, args.5, sums),
                    false => tiles.sums_bf16x3::<false>(args.0, args.1, args.2, args.3, args.4, args.5, sums),
                }
                x86::finish(sums, &panel_bias, gelu, block);
            }
        })
    }
}

/// The activations split as the weights are, in the order the kernel's tile loads read them:
/// per 16 tokens, per 32-input block, a tile's 16 rows of 64 bytes one after the other.
///
/// Row-major activations put a tile's rows `in * 2` bytes apart, so each of its 16 rows was a
/// separate, often conflicting, cache line (3 KB apart in the feed-forward output, which falls
/// on 4 sets of L1); contiguous tiles made the batched product kernel about 1.18x as fast.
struct Activations {
    hi: Vec<u16>,
    lo: Vec<u16>,
    /// Values per 16 tokens: `in / 32` tiles of 16 x 32.
    tile_len: usize,
}

impl Activations {
    /// Splits `xs` (`[tokens, in_dim]`), its last tile padded with zero rows (the kernel reads
    /// whole tiles; no block stores the padding's results).
    fn split(xs: &[f32], in_dim: usize) -> Self {
        let tile_len = in_dim / BLOCK * amx::ROWS * BLOCK;
        let tokens = xs.len() / in_dim;
        // The tiles the kernel reads: a block of more than 16 tokens two, of 16 or fewer one.
        let len = tokens.div_ceil(amx::ROWS) * tile_len;
        // Not zeroed first: every value is written below (zeroing all of it cost 1-2% of a batch).
        let (mut hi, mut lo) = (Vec::<u16>::with_capacity(len), Vec::<u16>::with_capacity(len));
        // Whole tasks of tiles: a sentence's dozen rows split in microseconds, less than waking
        // another thread takes.
        let tiles_per_task = (super::kernels::CHUNK / (in_dim * amx::ROWS)).max(1);
        let tiles = hi.spare_capacity_mut()[..len].par_chunks_mut(tile_len).zip(lo.spare_capacity_mut()[..len].par_chunks_mut(tile_len));
        tiles.zip(xs.par_chunks(amx::ROWS * in_dim)).with_min_len(tiles_per_task).for_each(|((hi, lo), rows)| {
            for (r, row) in rows.chunks_exact(in_dim).enumerate() {
                // SAFETY: `Split` exists only where AMX and AVX-512 are available (`pack`);
                // `row` is a whole number of blocks, `hi` and `lo` one tile's blocks.
                unsafe { x86::split_row(row, r, hi, lo) };
            }
            for r in rows.len() / in_dim..amx::ROWS {
                for block in 0..in_dim / BLOCK {
                    let at = (block * amx::ROWS + r) * BLOCK;
                    hi[at..at + BLOCK].fill(std::mem::MaybeUninit::new(0));
                    lo[at..at + BLOCK].fill(std::mem::MaybeUninit::new(0));
                }
            }
        });
        // SAFETY: each of the `len` values was written: the tiles' rows of `xs` by `split_row`
        // (all of a row's blocks), the rest of the last tile by the loop above.
        unsafe {
            hi.set_len(len);
            lo.set_len(len);
        }
        Activations { hi, lo, tile_len }
    }

    /// The split values from token `first` (a multiple of 16) on.
    fn tile(&self, first: usize) -> (&[u16], &[u16]) {
        let at = first / amx::ROWS * self.tile_len;
        (&self.hi[at..], &self.lo[at..])
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::super::panels::{Block, PANEL, store_block};

    /// Nearest bf16 (ties to even) of each f32 lane, kept in the lane's upper 16 bits.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn round_to_bf16(bits: __m512i) -> __m512i {
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let rounded = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd));
        _mm512_and_si512(rounded, _mm512_set1_epi32(0xFFFF_0000u32 as i32))
    }

    /// Splits row `r` (of 16) of a tile into `hi` and `lo` bf16 bits, 16 values a step, each
    /// 32-input block of the row to its place in the tile's blocks (see `Activations`).
    ///
    /// # Safety
    /// AVX-512F must be available; `row.len()` a multiple of 32; `r < 16`; `hi` and `lo` at
    /// least `row.len() * 16` long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn split_row(row: &[f32], r: usize, hi: &mut [MaybeUninit<u16>], lo: &mut [MaybeUninit<u16>]) {
        debug_assert!(row.len().is_multiple_of(32) && r < 16 && hi.len() >= row.len() * 16 && lo.len() >= row.len() * 16);
        for (i, values) in row.chunks_exact(16).enumerate() {
            let at = (i / 2) * 16 * 32 + r * 32 + (i % 2) * 16;
            // SAFETY: 16 values, stored within a tile block as this function's contract grants.
            unsafe {
                let x = _mm512_loadu_ps(values.as_ptr());
                let high = round_to_bf16(_mm512_castps_si512(x));
                let rest = _mm512_sub_ps(x, _mm512_castsi512_ps(high));
                let low = round_to_bf16(_mm512_castps_si512(rest));
                _mm256_storeu_si256(hi.as_mut_ptr().add(at).cast(), _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(high)));
                _mm256_storeu_si256(lo.as_mut_ptr().add(at).cast(), _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(low)));
            }
        }
    }

    /// Adds the bias to the block's sums and stores them (with GELU if asked).
    ///
    /// # Safety
    /// AVX-512F and FMA must be available; `block.out` valid for `block.tokens` rows of
    /// `block.features` values, `block.stride` apart.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn finish(sums: &[[f32; 32]; 32], bias: &[f32; PANEL], gelu: bool, block: Block) {
        // SAFETY: `bias` holds 2 x 16 values, each row of sums too.
        unsafe {
            let bias = [_mm512_loadu_ps(bias.as_ptr()), _mm512_loadu_ps(bias.as_ptr().add(16))];
            for (j, row) in sums.iter().take(block.tokens).enumerate() {
                let acc = [[_mm512_add_ps(_mm512_loadu_ps(row.as_ptr()), bias[0]), _mm512_add_ps(_mm512_loadu_ps(row.as_ptr().add(16)), bias[1])]];
                let one = block.row(j);
                store_block(&acc, gelu, one);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::super::panels::{Block, PANEL};

    /// Never called: [`super::amx::bf16_available`] is false off x86-64.
    pub(super) unsafe fn split_row(_: &[f32], _: usize, _: &mut [std::mem::MaybeUninit<u16>], _: &mut [std::mem::MaybeUninit<u16>]) {
        unreachable!("AMX is x86-64 only")
    }

    /// Never called, as above.
    pub(super) unsafe fn finish(_: &[[f32; 32]; 32], _: &[f32; PANEL], _: bool, _: Block) {
        unreachable!("AMX is x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::super::panels::tests::{SHAPES, erf, inputs, reference, weights};
    use super::*;

    #[test]
    fn splits_into_the_nearest_bf16_and_the_nearest_bf16_of_the_rest() {
        if !amx::bf16_available() {
            eprintln!("skipped: no AMX bf16 here");
            return;
        }
        let mut row: Vec<f32> = inputs(1, 37).iter().map(|x| x * 1234.567).chain([0.0, -0.0, 1e-30, 3.0e38]).collect();
        row.resize(64, 0.5);
        let zero = std::mem::MaybeUninit::new(0u16);
        let (mut hi, mut lo) = (vec![zero; row.len() * 16], vec![zero; row.len() * 16]);
        // Row 5 of a tile: input `k` lands in block `k / 32`, row 5, column `k % 32`.
        let place = |k: usize| (k / 32) * 16 * 32 + 5 * 32 + k % 32;
        // SAFETY: AMX bf16 implies AVX-512 (see `amx::granted`).
        unsafe { x86::split_row(&row, 5, &mut hi, &mut lo) };
        // SAFETY: every value was initialised (zero, or written by `split_row`).
        let (hi, lo): (Vec<u16>, Vec<u16>) = unsafe { (hi.iter().map(|v| v.assume_init()).collect(), lo.iter().map(|v| v.assume_init()).collect()) };
        for (k, &x) in row.iter().enumerate() {
            assert_eq!((hi[place(k)], lo[place(k)]), split(x), "{x}");
        }
        let written: std::collections::BTreeSet<usize> = (0..row.len()).map(place).collect();
        assert!(hi.iter().enumerate().all(|(i, &h)| written.contains(&i) || h == 0), "only row 5 is written");
    }

    #[test]
    fn a_token_gets_the_same_values_in_any_batch() {
        if !amx::bf16_available() {
            eprintln!("skipped: no AMX bf16 here");
            return;
        }
        let (tokens, out_dim, in_dim) = (45, 40, 128);
        let weight = weights(out_dim, in_dim);
        let xs = inputs(tokens, in_dim);
        let split = Split::pack(&weight, out_dim, in_dim).expect("AMX is available");
        let all = split.matmul(&xs, None, false);
        // Alone (a 16-token tile), and in a batch of 20 starting elsewhere (32-token tiles).
        for t in [0, 17, 44] {
            assert_eq!(split.matmul(&xs[t * in_dim..(t + 1) * in_dim], None, false), all[t * out_dim..(t + 1) * out_dim], "token {t} alone");
        }
        let some = split.matmul(&xs[5 * in_dim..25 * in_dim], None, false);
        assert_eq!(some, all[5 * out_dim..25 * out_dim], "tokens 5..25");
    }

    #[test]
    fn is_within_bf16x3_error_of_the_f64_product() {
        if !amx::bf16_available() {
            eprintln!("skipped: no AMX bf16 here");
            return;
        }
        let shapes = SHAPES.into_iter().map(|(t, o, i)| (t, o, i.next_multiple_of(BLOCK))).chain([(70, 40, 128), (45, 64, 384), (17, 96, 1536)]);
        for (tokens, out_dim, in_dim) in shapes {
            let weight = weights(out_dim, in_dim);
            let xs = inputs(tokens, in_dim);
            let split = Split::pack(&weight, out_dim, in_dim).expect("AMX is available");
            let bias: Vec<f32> = (0..out_dim).map(|o| o as f32 / 7.0 - 3.0).collect();
            let mut want = reference(&weight, &xs, out_dim, in_dim);
            for (w, b) in want.iter_mut().zip(bias.iter().cycle()) {
                *w += b;
            }
            // Each of the `in_dim` products is exact to 3 * 2^-16 of |x||w| (see the module's
            // documentation); the f32 sums add their own rounding.
            let bound = |t: usize, o: usize| {
                let magnitude: f64 = (0..in_dim).map(|k| f64::from(xs[t * in_dim + k].abs()) * f64::from(weight[o * in_dim + k].abs())).sum();
                4.0 * magnitude * 2f64.powi(-16) + 1e-5 * f64::from(want[t * out_dim + o].abs()) + 1e-6
            };
            let gelu = |x: f32| (0.5 * f64::from(x) * (1.0 + erf(f64::from(x) / std::f64::consts::SQRT_2))) as f32;
            let got = split.matmul(&xs, Some(&bias), false);
            let got_gelu = split.matmul(&xs, Some(&bias), true);
            assert_eq!(got.len(), want.len());
            for t in 0..tokens {
                for o in 0..out_dim {
                    let (g, w) = (got[t * out_dim + o], want[t * out_dim + o]);
                    assert!(f64::from((g - w).abs()) <= bound(t, o), "{tokens}x{out_dim}x{in_dim} [{t}, {o}]: {g} vs {w}");
                    // GELU's slope is at most 1.13.
                    let (gg, gw) = (got_gelu[t * out_dim + o], gelu(w));
                    assert!(f64::from((gg - gw).abs()) <= 1.2 * bound(t, o) + 1e-6, "GELU {tokens}x{out_dim}x{in_dim} [{t}, {o}]: {gg} vs {gw}");
                }
            }
        }
    }
}
