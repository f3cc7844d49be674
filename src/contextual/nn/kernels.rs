//! CPU kernels for the encoder's element-wise hot spots.
//!
//! candle computes GELU through libm's scalar `erff` and softmax through scalar `expf`;
//! together about a fifth of the encoder's time. The versions here are branch-free
//! polynomials that the compiler vectorises (an AVX2+FMA build is picked at run time; on CPUs
//! without FMA, `mul_add` falls back to a slow software path), and they run in parallel. Their
//! error (relative ~2e-7 for exp and erfc) is far below the fidelity bound against PyTorch.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use super::team;

use crate::simd::{dot, multiversion};

/// Rows handed to one rayon task: large enough to amortise scheduling.
pub(crate) const CHUNK: usize = 8 * 1024;

/// `exp(x)` for f32, Cephes-style: 2^n * p(r) with |r| <= ln2/2; relative error < 2e-7.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Below this exp underflows; masked (padding) scores must give exactly 0.
    let underflow = x < -87.3;
    let x = x.clamp(-87.3, 88.7);
    // Round to nearest with the 1.5 * 2^23 trick: `round()` is a libm call without SSE4.1.
    const MAGIC: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    // ln 2 split in two so that r is exact to f32 precision.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1]
        .iter()
        .fold(1.987_569_1e-4_f32, |acc, &c| acc.mul_add(r, c));
    let y = (p * r).mul_add(r, r) + 1.0;
    // SAFETY: n is an integer in [-126, 128] after the clamp, so the conversion is exact.
    let y = y * f32::from_bits(((unsafe { n.to_int_unchecked::<i32>() } + 127) as u32) << 23);
    if underflow { 0.0 } else { y }
}

/// GELU with the exact erf form transformers uses for `hidden_act: "gelu"`.
///
/// `erfc(z)` comes from the Numerical Recipes Chebyshev fit (fractional error < 1.2e-7).
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    // Horner with fused multiply-adds (single instructions in the AVX2+FMA build).
    let poly = [-0.822_152_2, 1.488_515_9, -1.135_204, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7, -1.265_512_2]
        .iter()
        .fold(0.170_872_77_f32, |acc, &c| acc.mul_add(t, c));
    let erfc = t * exp(-z * z + poly);
    // 1 + erf(x/sqrt2) = 2 - erfc(|x|/sqrt2) for x >= 0, erfc(|x|/sqrt2) otherwise.
    let one_plus_erf = if x >= 0.0 { 2.0 - erfc } else { erfc };
    0.5 * x * one_plus_erf
}

/// [`gelu`] on `N` rows of two vectors of eight values: the AVX2 matrix kernel's accumulators,
/// in registers. The same IEEE operations in the same order as
/// [`gelu`] and [`exp`], lane by lane, so the values are bit for bit those of the scalar code.
///
/// Each step runs across all `2N` vectors before the next: GELU is a chain of some fifty
/// dependent operations, and vector after vector the CPU's reorder window held only two or
/// three chains at a time, which left the kernel's epilogue waiting on latencies. The compiler
/// reorders the steps back into one chain per vector unless an empty `asm!` statement holds
/// each step's results in registers: with it, GELU on twelve vectors took 77 ns instead of 203.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn gelu_avx2<const N: usize>(x: [[std::arch::x86_64::__m256; 2]; N]) -> [[std::arch::x86_64::__m256; 2]; N] {
    use std::arch::x86_64::*;
    type Rows<const N: usize> = [[__m256; 2]; N];
    /// `f` of every vector, as its row `i` and half `h`.
    #[inline(always)]
    fn each<const N: usize>(mut f: impl FnMut(usize, usize) -> __m256) -> Rows<N> {
        std::array::from_fn(|i| [f(i, 0), f(i, 1)])
    }
    // Every vector of a step, computed before any of the next (see above).
    let fenced = |mut rows: Rows<N>| {
        for row in &mut rows {
            for v in row {
                // SAFETY: an empty statement (a comment naming the register).
                unsafe { std::arch::asm!("/* {0} */", inout(ymm_reg) *v, options(nomem, nostack, preserves_flags)) };
            }
        }
        rows
    };
    let splat = _mm256_set1_ps;
    let z: Rows<N> = fenced(each(|i, h| _mm256_mul_ps(_mm256_andnot_ps(splat(-0.0), x[i][h]), splat(std::f32::consts::FRAC_1_SQRT_2))));
    let t: Rows<N> = fenced(each(|i, h| _mm256_div_ps(splat(1.0), _mm256_add_ps(splat(1.0), _mm256_mul_ps(splat(0.5), z[i][h])))));
    let mut poly = [[splat(0.170_872_77); 2]; N];
    for c in [-0.822_152_2, 1.488_515_9, -1.135_204, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7, -1.265_512_2] {
        poly = fenced(each(|i, h| _mm256_fmadd_ps(poly[i][h], t[i][h], splat(c))));
    }
    let arg: Rows<N> = fenced(each(|i, h| _mm256_add_ps(_mm256_mul_ps(_mm256_xor_ps(z[i][h], splat(-0.0)), z[i][h]), poly[i][h])));
    // exp(arg) as `exp` computes it.
    const MAGIC: f32 = 12_582_912.0;
    let clamped: Rows<N> = fenced(each(|i, h| _mm256_min_ps(_mm256_max_ps(arg[i][h], splat(-87.3)), splat(88.7))));
    let n: Rows<N> = fenced(each(|i, h| _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(clamped[i][h], splat(std::f32::consts::LOG2_E)), splat(MAGIC)), splat(MAGIC))));
    let r: Rows<N> = fenced(each(|i, h| _mm256_add_ps(_mm256_sub_ps(clamped[i][h], _mm256_mul_ps(n[i][h], splat(0.693_359_4))), _mm256_mul_ps(n[i][h], splat(2.121_944_4e-4)))));
    let mut p = [[splat(1.987_569_1e-4); 2]; N];
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1] {
        p = fenced(each(|i, h| _mm256_fmadd_ps(p[i][h], r[i][h], splat(c))));
    }
    each(|i, h| {
        let y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p[i][h], r[i][h]), r[i][h], r[i][h]), splat(1.0));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvttps_epi32(n[i][h]), _mm256_set1_epi32(127))));
        let underflow = _mm256_cmp_ps::<_CMP_LT_OQ>(arg[i][h], splat(-87.3));
        let erfc = _mm256_mul_ps(t[i][h], _mm256_andnot_ps(underflow, _mm256_mul_ps(y, scale)));
        // 1 + erf(x/sqrt2): 2 - erfc(|x|/sqrt2) for x >= 0, erfc(|x|/sqrt2) otherwise.
        let positive = _mm256_cmp_ps::<_CMP_GE_OQ>(x[i][h], _mm256_setzero_ps());
        let one_plus_erf = _mm256_blendv_ps(erfc, _mm256_sub_ps(splat(2.0), erfc), positive);
        _mm256_mul_ps(_mm256_mul_ps(splat(0.5), x[i][h]), one_plus_erf)
    })
}

/// GELU of rows of `input` after adding `bias` (one entry per column).
#[inline(always)]
fn gelu_slice(out: &mut [f32], input: &[f32], bias: &[f32]) {
    for (o, i) in out.chunks_exact_mut(bias.len()).zip(input.chunks_exact(bias.len())) {
        for ((o, &x), &b) in o.iter_mut().zip(i).zip(bias) {
            *o = gelu(x + b);
        }
    }
}

/// `out = LayerNorm(input + bias + residual)` row by row, as transformers' BertSelfOutput and
/// BertOutput compute it (biased variance, eps inside the square root).
#[inline(always)]
fn add_norm_rows(out: &mut [f32], input: &[f32], residual: &[f32], p: &AddNorm) {
    let width = p.gamma.len();
    let rows = out.chunks_exact_mut(width).zip(input.chunks_exact(width)).zip(residual.chunks_exact(width));
    for ((o, i), r) in rows {
        for (((o, &x), &b), &r) in o.iter_mut().zip(i).zip(&p.bias).zip(r) {
            *o = x + b + r;
        }
        let mean = lane_sum(o, |v| v) / width as f32;
        let var = lane_sum(o, |v| (v - mean) * (v - mean)) / width as f32;
        let inv = 1.0 / (var + p.eps).sqrt();
        for ((o, &g), &b) in o.iter_mut().zip(&p.gamma).zip(&p.beta) {
            *o = (*o - mean) * inv * g + b;
        }
    }
}

/// The sum of `f` over `values` in eight partial sums, so that it runs in vector lanes: one
/// running sum waits on each addition (a layer norm's two sums over 384 values took most of its
/// time).
#[inline(always)]
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

multiversion!(gelu_dispatch(out: &mut [f32], input: &[f32], bias: &[f32]) => gelu_slice);
multiversion!(add_norm_dispatch(out: &mut [f32], input: &[f32], residual: &[f32], params: &AddNorm) => add_norm_rows);
multiversion!(attention_dispatch(out: &mut [f32], qkv: &[f32], tokens: usize, geometry: Geometry) => attention_head);

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op} expects f32")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op} expects a contiguous tensor"),
    }
}

/// GELU after a bias add, fused into one pass.
struct BiasGelu<'a> {
    bias: &'a [f32],
}

impl CustomOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "vecshift-bias-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous(storage, layout, self.name())?;
        let width = self.bias.len();
        if width == 0 || layout.dims().last() != Some(&width) {
            candle_core::bail!("bias-gelu: bias of {width} for a tensor of shape {:?}", layout.dims());
        }
        let mut out = vec![0f32; input.len()];
        let rows_per_task = (CHUNK / width).max(1) * width;
        let mut tasks: Vec<_> = out.chunks_mut(rows_per_task).zip(input.chunks(rows_per_task)).collect();
        team::for_each_mut(&mut tasks, |(o, i)| gelu_dispatch(o, i, self.bias));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Exact (erf) GELU of `xs + bias` (bias over the last dimension).
pub fn bias_gelu_erf(xs: &Tensor, bias: &[f32]) -> Result<Tensor> {
    xs.contiguous()?.apply_op1_no_bwd(&BiasGelu { bias })
}

/// The parameters of a bias + residual + layer-norm step, as plain vectors for the fused kernel.
#[derive(Clone, Debug)]
pub struct AddNorm {
    /// Bias of the dense layer before the norm (zeros when it has none).
    pub bias: Vec<f32>,
    /// Layer-norm scale.
    pub gamma: Vec<f32>,
    /// Layer-norm shift.
    pub beta: Vec<f32>,
    /// Layer-norm epsilon.
    pub eps: f32,
}

impl CustomOp2 for AddNorm {
    fn name(&self) -> &'static str {
        "vecshift-add-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous(s1, l1, self.name())?;
        let residual = contiguous(s2, l2, self.name())?;
        let width = self.gamma.len();
        if l1.shape() != l2.shape() || l1.dims().last() != Some(&width) || self.bias.len() != width || self.beta.len() != width {
            candle_core::bail!("add-norm: shapes {:?} and {:?} for width {width}", l1.dims(), l2.dims());
        }
        let mut out = vec![0f32; input.len()];
        let rows_per_task = (CHUNK / width).max(1) * width;
        let mut tasks: Vec<_> = out.chunks_mut(rows_per_task).zip(input.chunks(rows_per_task).zip(residual.chunks(rows_per_task))).collect();
        team::for_each_mut(&mut tasks, |(o, (i, r))| add_norm_dispatch(o, i, r, self));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `LayerNorm(xs + bias + residual)` in one pass.
pub fn add_norm(xs: &Tensor, residual: &Tensor, params: &AddNorm) -> Result<Tensor> {
    xs.contiguous()?.apply_op2_no_bwd(&residual.contiguous()?, params)
}

/// Where one (sentence, head) pair's data lives in the fused `[batch, seq, 3 * hidden]` QKV tensor.
#[derive(Clone, Copy)]
struct Geometry {
    hidden: usize,
    head_dim: usize,
    /// Offset of this sentence's first row.
    row0: usize,
    /// Offset of this head inside a row's query part.
    head0: usize,
    scale: f32,
}

/// Self-attention of one head of one sentence.
///
/// `out` is the `[tokens, hidden]` context of the sentence; only this head's columns are written.
#[inline(always)]
fn attention_head(out: &mut [f32], qkv: &[f32], tokens: usize, g: Geometry) {
    let stride = 3 * g.hidden;
    let at = |token: usize, part: usize| g.row0 + token * stride + part * g.hidden + g.head0;
    let mut probs = vec![0f32; tokens];
    for query in 0..tokens {
        let q = &qkv[at(query, 0)..at(query, 0) + g.head_dim];
        for (key, p) in probs.iter_mut().enumerate() {
            let k = &qkv[at(key, 1)..at(key, 1) + g.head_dim];
            *p = dot(q, k) * g.scale;
        }
        let max = probs.iter().copied().fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
        // Apart from the sum, so that the exponentials run in vector lanes (the sum's order is
        // unchanged).
        probs.iter_mut().for_each(|p| *p = exp(*p - max));
        let sum: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        let context = &mut out[query * g.hidden + g.head0..query * g.hidden + g.head0 + g.head_dim];
        let values = |key: usize| &qkv[at(key, 2)..at(key, 2) + g.head_dim];
        match g.head_dim {
            32 => weighted_sum::<4>(context, &probs, values),
            64 => weighted_sum::<8>(context, &probs, values),
            _ => {
                context.fill(0.0);
                for (key, &w) in probs.iter().enumerate() {
                    for (c, &x) in context.iter_mut().zip(values(key)) {
                        *c = w.mul_add(x, *c);
                    }
                }
            }
        }
    }
}

/// `context = sum over keys of weights[key] * values(key)` for `8 * C` values, each summed in
/// key order from 0 (as the general loop does): `C` vectors of sums stay in registers across
/// the keys, where the general loop stored and reloaded the context for every key (and waited
/// on each store).
#[inline(always)]
fn weighted_sum<'a, const C: usize>(context: &mut [f32], weights: &[f32], values: impl Fn(usize) -> &'a [f32]) {
    let mut sums = [[0f32; 8]; C];
    for (key, &w) in weights.iter().enumerate() {
        for (sums, v) in sums.iter_mut().zip(values(key).chunks_exact(8)) {
            for (s, &x) in sums.iter_mut().zip(v) {
                *s = w.mul_add(x, *s);
            }
        }
    }
    for (c, sums) in context.chunks_exact_mut(8).zip(&sums) {
        c.copy_from_slice(sums);
    }
}

struct FusedAttention<'a> {
    heads: usize,
    /// Sentence `b` is rows `starts[b]..starts[b + 1]`.
    starts: &'a [usize],
}

impl CustomOp1 for FusedAttention<'_> {
    fn name(&self) -> &'static str {
        "vecshift-fused-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = contiguous(storage, layout, self.name())?;
        let (one, tokens, triple) = layout.shape().dims3()?;
        let hidden = triple / 3;
        let head_dim = hidden / self.heads;
        let consistent = self.starts.first() == Some(&0) && self.starts.last() == Some(&tokens) && self.starts.is_sorted();
        if one != 1 || !consistent || hidden * 3 != triple || head_dim * self.heads != hidden {
            candle_core::bail!("fused attention: inconsistent shapes {:?} for {} heads", layout.dims(), self.heads);
        }
        let mut out = vec![0f32; tokens * hidden];
        // One task per sentence, each with its own rows of `out`; heads run in turn inside it.
        let mut sentences = Vec::with_capacity(self.starts.len() - 1);
        let mut rest = out.as_mut_slice();
        for span in self.starts.windows(2) {
            let (mine, others) = rest.split_at_mut((span[1] - span[0]) * hidden);
            sentences.push((span[0], mine));
            rest = others;
        }
        let scale = 1.0 / (head_dim as f32).sqrt();
        team::for_each_mut(&mut sentences, |(start, out)| {
            let (start, out) = (*start, &mut **out);
            for head in 0..self.heads {
                let geometry = Geometry { hidden, head_dim, row0: start * triple, head0: head * head_dim, scale };
                attention_dispatch(out, qkv, out.len() / hidden, geometry);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((1, tokens, hidden))))
    }
}

/// Multi-head self-attention from a fused `[1, tokens, 3 * hidden]` projection (queries, keys,
/// values side by side) of packed sentences: sentence `b` is rows `starts[b]..starts[b + 1]` and
/// attends only to itself. Returns the `[1, tokens, hidden]` context.
pub fn fused_attention(qkv: &Tensor, starts: &[usize], heads: usize) -> Result<Tensor> {
    qkv.contiguous()?.apply_op1_no_bwd(&FusedAttention { heads, starts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        for i in -8700..=0 {
            let x = i as f32 / 100.0;
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            assert!(rel < 3e-7, "exp({x}): relative error {rel}");
        }
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
    }

    /// The AVX2 kernel's GELU gives the scalar one's values bit for bit: on a grid through
    /// the range that matters, on floats spread over all magnitudes, and at the edges (zeros,
    /// infinities, the exp clamps).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_gelu_equals_the_scalar_one() {
        use std::arch::x86_64::*;
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: this CPU lacks AVX2 or FMA");
            return;
        }
        let grid = (-20_000..=20_000).map(|i| i as f32 / 1000.0);
        let spread = (0..u32::MAX).step_by(65_521).map(f32::from_bits).filter(|x| x.is_finite());
        let edges = [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, 13.2, -13.2, 13.3, -13.3, 1e-30, -1e-30];
        let values: Vec<f32> = grid.chain(spread).chain(edges).collect();
        #[target_feature(enable = "avx2,fma")]
        fn vector(values: &[f32; 32]) -> [f32; 32] {
            let rows: [[__m256; 2]; 2] = std::array::from_fn(|i| std::array::from_fn(|h| {
                // SAFETY: eight of the 32 values.
                unsafe { _mm256_loadu_ps(values.as_ptr().add(16 * i + 8 * h)) }
            }));
            // SAFETY: compiled for AVX2 and FMA.
            let rows = unsafe { gelu_avx2(rows) };
            let mut out = [0f32; 32];
            for (i, row) in rows.iter().enumerate() {
                for (h, &v) in row.iter().enumerate() {
                    // SAFETY: eight of the 32 values.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(16 * i + 8 * h), v) };
                }
            }
            out
        }
        #[target_feature(enable = "avx2,fma")]
        fn scalar(x: f32) -> f32 {
            // Compiled as the AVX2 kernels compile it: `mul_add` as one fused instruction.
            gelu(x)
        }
        for chunk in values.chunks(32) {
            let mut padded = [0f32; 32];
            padded[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: checked above that the CPU has AVX2 and FMA.
            let got = unsafe { vector(&padded) };
            for (&x, g) in chunk.iter().zip(got) {
                // SAFETY: as above.
                let want = unsafe { scalar(x) };
                assert!(g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()), "gelu({x:e}): {g:e} vs {want:e}");
            }
        }
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        // Reference: erf from the f64 Taylor/continued evaluation in libm via (x/sqrt2).
        for i in -1000..=1000 {
            let x = i as f32 / 100.0;
            let want = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            assert!((gelu(x) as f64 - want).abs() < 2e-6 * (1.0 + want.abs()), "gelu({x}) = {} vs {want}", gelu(x));
        }
    }

    /// erf in f64 by its Maclaurin series (|z| < 3) or continued fraction; independent of the kernel.
    fn libm_erf(z: f64) -> f64 {
        if z.abs() < 3.0 {
            let mut term = z;
            let mut sum = z;
            for n in 1..200 {
                term *= -z * z / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let sign = z.signum();
            let z = z.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (z + f);
            }
            sign * (1.0 - (-z * z).exp() / (std::f64::consts::PI.sqrt() * (z + f)))
        }
    }

    #[test]
    fn ops_match_candle_on_tensors() {
        let device = candle_core::Device::Cpu;
        let xs = Tensor::arange(-300f32, 300f32, &device).unwrap().affine(0.017, 0.0).unwrap().reshape((6, 100)).unwrap();
        let bias: Vec<f32> = (0..100).map(|j| j as f32 * 0.01 - 0.5).collect();
        let bias_t = Tensor::from_vec(bias.clone(), 100, &device).unwrap();
        let ours = bias_gelu_erf(&xs, &bias).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let theirs = xs.broadcast_add(&bias_t).unwrap().gelu_erf().unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // Bias + residual + layer norm against the definition, evaluated in f64.
        let residual = xs.sin().unwrap();
        let gamma: Vec<f32> = (0..100).map(|j| 1.0 + j as f32 * 0.003).collect();
        let beta: Vec<f32> = (0..100).map(|j| j as f32 * -0.002).collect();
        let params = AddNorm { bias: bias.clone(), gamma: gamma.clone(), beta: beta.clone(), eps: 1e-12 };
        let ours = add_norm(&xs, &residual, &params).unwrap().to_vec2::<f32>().unwrap();
        let (rows, res) = (xs.to_vec2::<f32>().unwrap(), residual.to_vec2::<f32>().unwrap());
        for ((row, res), ours) in rows.iter().zip(&res).zip(&ours) {
            let v: Vec<f64> = (0..100).map(|j| f64::from(row[j]) + f64::from(bias[j]) + f64::from(res[j])).collect();
            let mean = v.iter().sum::<f64>() / 100.0;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 100.0;
            for j in 0..100 {
                let want = (v[j] - mean) / (var + 1e-12).sqrt() * f64::from(gamma[j]) + f64::from(beta[j]);
                assert!((f64::from(ours[j]) - want).abs() < 2e-6, "{} vs {want}", ours[j]);
            }
        }

        // Attention against candle's unfused ops on a random-ish QKV with one padded position.
        let (batch, seq, heads, head_dim) = (2, 5, 3, 4);
        let hidden = heads * head_dim;
        let qkv = Tensor::arange(0f32, (batch * seq * 3 * hidden) as f32, &device).unwrap()
            .affine(0.37, 0.0).unwrap().sin().unwrap().reshape((batch, seq, 3 * hidden)).unwrap();
        let mask = vec![true, true, true, true, false, true, true, true, true, true];
        let packing = crate::contextual::nn::Packing::new(&mask, batch, seq);
        let packed = fused_attention(&packing.gather(&qkv).unwrap(), &packing.starts, heads).unwrap();
        let ours = packing.scatter(&packed).unwrap();
        let split = |i: usize| qkv.narrow(2, i * hidden, hidden).unwrap().reshape((batch, seq, heads, head_dim)).unwrap()
            .transpose(1, 2).unwrap().contiguous().unwrap();
        let (q, k, v) = (split(0), split(1), split(2));
        let bias: Vec<f32> = mask.iter().map(|&m| if m { 0.0 } else { f32::MIN }).collect();
        let bias = Tensor::from_vec(bias, (batch, 1, 1, seq), &device).unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * 0.5).unwrap().broadcast_add(&bias).unwrap();
        let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let theirs = probs.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((batch, seq, hidden)).unwrap();
        let (ours, theirs) = (ours.to_vec3::<f32>().unwrap(), theirs.to_vec3::<f32>().unwrap());
        for b in 0..batch {
            for t in 0..seq {
                if mask[b * seq + t] {
                    for (a, e) in ours[b][t].iter().zip(&theirs[b][t]) {
                        assert!((a - e).abs() < 1e-6, "{b} {t}: {a} vs {e}");
                    }
                } else {
                    assert!(ours[b][t].iter().all(|&x| x == 0.0), "padding rows stay zero");
                }
            }
        }
    }
}
