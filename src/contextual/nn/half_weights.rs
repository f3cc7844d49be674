//! Dense-layer products with the weights kept in half precision, where that loses nothing.
//!
//! Encoding one sentence at a time, a dense layer uses each weight for only the sentence's ten
//! or so tokens, so the encoder waits on memory: all-MiniLM-L6-v2 reads 42 MB of f32 weights
//! per sentence, more than the last-level cache. Checkpoints stored in f16 (the embedded
//! model) are exactly representable in f16, so their weights stay f16 in memory (one copy,
//! half the bytes) and the kernel widens 16 at a time to f32 (`vcvtph2ps`) and accumulates in
//! f32: the products equal f32 products up to the order of the sums. Other checkpoints, and
//! CPUs without AVX-512, keep f32 weights and candle's matrix product.
//!
//! The layout is the usual one of GEMM kernels: the weights in panels of [`PANEL`] output
//! features (each `in x PANEL`, contiguous) that stay in cache while the tokens pass in tiles of
//! [`TILE`] rows, and a micro-kernel that keeps a `TILE x PANEL` block of the result in 24
//! AVX-512 registers (about 240 GFLOP/s per core of the development machine).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use half::f16;
use rayon::prelude::*;

/// Output features per weight panel: two AVX-512 registers.
const PANEL: usize = 32;
/// Tokens per tile: 12 x 2 accumulators + 2 weight registers + 1 broadcast fit in 32.
const TILE: usize = 12;

/// A dense layer's `[out, in]` weight as f16 panels, for [`PackedF16::matmul`].
pub(crate) struct PackedF16 {
    in_dim: usize,
    out_dim: usize,
    /// Panel `p` holds `in_dim` rows of [`PANEL`] f16 weights (features `p * PANEL ..`), zero-padded.
    panels: Vec<f16>,
}

impl PackedF16 {
    /// Packs a row-major `[out_dim, in_dim]` weight, or `None` when this CPU lacks the kernel
    /// or some weight is not exactly an f16 (packing would change the results).
    pub(crate) fn pack(weight: &[f32], out_dim: usize, in_dim: usize) -> Option<Self> {
        if !kernel_available() || weight.len() != out_dim * in_dim || in_dim == 0 {
            return None;
        }
        if !weight.iter().all(|&w| f16::from_f32(w).to_f32() == w || w.is_nan()) {
            return None;
        }
        let panels_count = out_dim.div_ceil(PANEL);
        let mut panels = vec![f16::ZERO; panels_count * in_dim * PANEL];
        for (feature, row) in weight.chunks_exact(in_dim).enumerate() {
            let (panel, lane) = (feature / PANEL, feature % PANEL);
            for (k, &w) in row.iter().enumerate() {
                panels[(panel * in_dim + k) * PANEL + lane] = f16::from_f32(w);
            }
        }
        Some(PackedF16 { in_dim, out_dim, panels })
    }

    /// `xs [tokens, in] x weight^T (+ bias)`, then GELU (erf) if asked: a row-major
    /// `[tokens, out]` result.
    fn matmul(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool) -> Vec<f32> {
        let (in_dim, out_dim) = (self.in_dim, self.out_dim);
        let tokens = xs.len() / in_dim;
        let tiles = tokens.div_ceil(TILE);
        let mut out = Vec::with_capacity(tokens * out_dim);
        let panels = out_dim.div_ceil(PANEL);
        let out_ptr = SharedOut(out.spare_capacity_mut().as_mut_ptr().cast::<f32>());
        // A few panels per task: every task then streams its weights once, for all tiles.
        let per_task = panels.div_ceil(4 * rayon::current_num_threads()).max(1);
        (0..panels).into_par_iter().with_min_len(per_task).for_each(|panel| {
            let weights = &self.panels[panel * in_dim * PANEL..(panel + 1) * in_dim * PANEL];
            let features = PANEL.min(out_dim - panel * PANEL);
            let mut panel_bias = [0f32; PANEL];
            if let Some(bias) = bias {
                panel_bias[..features].copy_from_slice(&bias[panel * PANEL..panel * PANEL + features]);
            }
            for tile in 0..tiles {
                let count = TILE.min(tokens - tile * TILE);
                let tile_xs = &xs[tile * TILE * in_dim..(tile * TILE + count) * in_dim];
                let first = tile * TILE * out_dim + panel * PANEL;
                // SAFETY: `kernel_available` held when this was packed; the block written
                // (`count` rows of `features` values from `first`, `out_dim` apart) lies inside
                // `out`'s capacity, and blocks of different (panel, tile) pairs never overlap.
                unsafe { x86::block(weights, tile_xs, &panel_bias, gelu, in_dim, out_ptr.at(first), out_dim, count, features) };
            }
        });
        // SAFETY: the blocks of all (panel, tile) pairs cover every one of the values.
        unsafe { out.set_len(tokens * out_dim) };
        out
    }
}

/// The result buffer, written by the panel tasks in disjoint blocks.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: the tasks write disjoint blocks (see `PackedF16::matmul`).
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer `offset` values in. Taking `self` keeps closures capturing the whole
    /// (Send) wrapper rather than its raw-pointer field.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Whether the AVX-512 kernel can run here.
fn kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl PackedF16 {
    /// `xs [.., in] x weight^T (+ bias)`, then GELU (erf) if asked, for an f32 tensor on the CPU.
    pub(crate) fn forward(&self, xs: &Tensor, bias: Option<&[f32]>, gelu: bool) -> Result<Tensor> {
        xs.contiguous()?.apply_op1_no_bwd(&PackedProduct { weight: self, bias, gelu })
    }
}

/// The product with a [`PackedF16`] weight and an optional bias, as a candle op.
struct PackedProduct<'a> {
    weight: &'a PackedF16,
    /// Added to every row of the product (`out` values), in the same pass.
    bias: Option<&'a [f32]>,
    /// Apply GELU (erf) to the result, also in the same pass (while the block is in cache).
    gelu: bool,
}

impl CustomOp1 for PackedProduct<'_> {
    fn name(&self) -> &'static str {
        "vecshift-matmul-f16-weights"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else { candle_core::bail!("{} expects f32", self.name()) };
        let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("{} expects a contiguous tensor", self.name()) };
        let weight = self.weight;
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&weight.in_dim) || self.bias.is_some_and(|b| b.len() != weight.out_dim) {
            candle_core::bail!("{}: input of shape {dims:?} for a weight of {} inputs", self.name(), weight.in_dim);
        }
        *dims.last_mut().expect("checked above") = weight.out_dim;
        Ok((CpuStorage::F32(weight.matmul(&data[start..end], self.bias, self.gelu)), Shape::from(dims)))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    use super::{PANEL, TILE};


    /// One `count x features` block of the result (`count <= TILE`, `features <= PANEL`).
    ///
    /// # Safety
    /// AVX-512F and FMA must be available; `weights` is one panel (`in_dim x PANEL`), `xs` the
    /// tile's `count` token rows (`count x in_dim`), and `out` must be valid for `count` rows of
    /// `features` values, `stride` apart.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(
        weights: &[f16],
        xs: &[f32],
        bias: &[f32; PANEL],
        gelu: bool,
        in_dim: usize,
        out: *mut f32,
        stride: usize,
        count: usize,
        features: usize,
    ) {
        debug_assert!(weights.len() >= in_dim * PANEL && xs.len() >= in_dim * count && count <= TILE && features <= PANEL);
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match count {
                    // SAFETY: as this function's own contract.
                    $($n => unsafe { micro::<$n>(weights, xs, bias, gelu, in_dim, out, stride, features) },)*
                    _ => {}
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12);
    }

    /// The micro-kernel for `N` tokens: `N x 2` accumulators (starting from the bias), two
    /// widened weight registers and one broadcast token value per step of the inner dimension.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn micro<const N: usize>(
        weights: &[f16],
        xs: &[f32],
        bias: &[f32; PANEL],
        gelu: bool,
        in_dim: usize,
        out: *mut f32,
        stride: usize,
        features: usize,
    ) {
        // SAFETY: `bias` holds PANEL = 2 x 16 values.
        let bias = unsafe { [_mm512_loadu_ps(bias.as_ptr()), _mm512_loadu_ps(bias.as_ptr().add(16))] };
        let mut acc = [bias; N];
        let (w, x) = (weights.as_ptr().cast::<__m256i>(), xs.as_ptr());
        for k in 0..in_dim {
            // SAFETY: `k < in_dim`, within the panel (2 x 16 halves per step) and the tile.
            unsafe {
                let w0 = _mm512_cvtph_ps(_mm256_loadu_si256(w.add(2 * k)));
                let w1 = _mm512_cvtph_ps(_mm256_loadu_si256(w.add(2 * k + 1)));
                for (j, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*x.add(j * in_dim + k));
                    acc[0] = _mm512_fmadd_ps(w0, b, acc[0]);
                    acc[1] = _mm512_fmadd_ps(w1, b, acc[1]);
                }
            }
        }
        let low = if features >= 16 { 0xFFFF } else { (1u16 << features) - 1 };
        let high = if features >= PANEL { 0xFFFF } else { ((1u32 << features.saturating_sub(16)) - 1) as u16 };
        for (j, acc) in acc.iter().enumerate() {
            // SAFETY: row `j < count` of the block, masked to its `features` values.
            unsafe {
                _mm512_mask_storeu_ps(out.add(j * stride), low, acc[0]);
                _mm512_mask_storeu_ps(out.add(j * stride + 16), high, acc[1]);
            }
            if gelu {
                // SAFETY: the `features` values just stored.
                let row = unsafe { std::slice::from_raw_parts_mut(out.add(j * stride), features) };
                // Vectorised 16 wide here, as this function is compiled for AVX-512.
                row.iter_mut().for_each(|v| *v = crate::contextual::nn::kernels::gelu(*v));
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    /// Never called: [`super::kernel_available`] is false off x86-64.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(_: &[half::f16], _: &[f32], _: &[f32; super::PANEL], _: bool, _: usize, _: *mut f32, _: usize, _: usize, _: usize) {
        unreachable!("the f16 kernel is x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain f64 sums, the reference.
    fn reference(weight: &[f32], xs: &[f32], out_dim: usize, in_dim: usize) -> Vec<f32> {
        let tokens = xs.len() / in_dim;
        let mut out = vec![0f32; tokens * out_dim];
        for t in 0..tokens {
            for o in 0..out_dim {
                let sum: f64 = (0..in_dim).map(|k| f64::from(weight[o * in_dim + k]) * f64::from(xs[t * in_dim + k])).sum();
                out[t * out_dim + o] = sum as f32;
            }
        }
        out
    }

    #[test]
    fn equals_the_f32_product_for_f16_exact_weights() {
        if !kernel_available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        // Odd sizes: partial panels and partial tiles on every edge.
        for (tokens, out_dim, in_dim) in [(1, 32, 8), (10, 384, 384), (13, 70, 33), (25, 17, 5), (0, 32, 4)] {
            let weight: Vec<f32> = (0..out_dim * in_dim).map(|i| f16::from_f32(((i * 7919 % 2001) as f32 - 1000.0) / 997.0).to_f32()).collect();
            let xs: Vec<f32> = (0..tokens * in_dim).map(|i| ((i * 104_729 % 1999) as f32 - 999.0) / 500.0).collect();
            let packed = PackedF16::pack(&weight, out_dim, in_dim).expect("f16-exact weights pack");
            let bias: Vec<f32> = (0..out_dim).map(|o| o as f32 / 7.0 - 3.0).collect();
            let mut want = reference(&weight, &xs, out_dim, in_dim);
            for (w, b) in want.iter_mut().zip(bias.iter().cycle()) {
                *w += b;
            }
            let close = |g: f32, w: f32| (g - w).abs() <= 1e-4 * (1.0 + w.abs());
            let got = packed.matmul(&xs, Some(&bias), false);
            assert_eq!(got.len(), want.len());
            for (&g, &w) in got.iter().zip(&want) {
                assert!(close(g, w), "{tokens}x{out_dim}x{in_dim}: {g} vs {w}");
            }
            // GELU(x) = x/2 (1 + erf(x / sqrt 2)).
            let gelu = |x: f32| (0.5 * f64::from(x) * (1.0 + erf(f64::from(x) / std::f64::consts::SQRT_2))) as f32;
            for (&g, &w) in packed.matmul(&xs, Some(&bias), true).iter().zip(&want) {
                assert!(close(g, gelu(w)), "GELU {tokens}x{out_dim}x{in_dim}: {g} vs {}", gelu(w));
            }
        }
    }

    /// erf in f64: the Maclaurin series up to |x| = 3, the asymptotic series of erfc beyond
    /// (both far more precise than the f32 kernel under test).
    fn erf(x: f64) -> f64 {
        let z = x.abs();
        if z > 3.0 {
            let inv = 1.0 / (2.0 * z * z);
            let erfc = (-z * z).exp() / (z * std::f64::consts::PI.sqrt()) * (1.0 - inv + 3.0 * inv * inv - 15.0 * inv.powi(3));
            return x.signum() * (1.0 - erfc);
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn weights_that_are_not_f16_stay_f32() {
        assert!(PackedF16::pack(&[0.1, 0.5], 1, 2).is_none(), "0.1 is not an f16");
    }
}
