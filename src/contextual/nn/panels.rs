//! Dense-layer products with each weight packed once, at load, in the layout the CPU kernel reads.
//!
//! candle's matrix product (the `gemm` crate) packs the weight matrix into cache-sized panels on
//! every call. Encoding one sentence at a time, a dense layer uses each weight for only the
//! sentence's ten or so tokens, so that packing costs about as much as the product itself, and
//! f32 checkpoints ran 30% behind ONNX Runtime. Here the panels are built once: the weights of
//! [`PANEL`] output features, `in x PANEL` contiguous, stay in cache while the tokens pass in
//! tiles of [`TILE`] rows, and a micro-kernel keeps a `TILE x PANEL` block of the result in 24
//! AVX-512 registers (about 240 GFLOP/s per core of the development machine). CPUs with AVX2,
//! FMA and F16C but not AVX-512 (AMD Zen 1-3, Intel before Skylake-X) take panels of the same
//! weights, laid out one half after the other, in a micro-kernel of 6 tokens x 16 features (12
//! of the 16 AVX registers), in blocks of 48 tokens; without this kernel, on such a CPU,
//! candle's product (which packs on every call) left the encoder at 0.65x ONNX Runtime one
//! sentence at a time.
//!
//! Checkpoints stored in f16 (the embedded model) are exactly representable in f16, so their
//! panels stay f16 (one copy, half the bytes, which matters when the encoder waits on memory:
//! all-MiniLM-L6-v2 reads 42 MB of f32 weights per sentence) and the kernel widens them as it
//! reads them (`vcvtph2ps`). Either way it accumulates in f32, every sum from the bias through
//! the inputs in order, one fused multiply-add each: both kernels give the same values bit for
//! bit, whatever the batch. Other CPUs keep candle's product.
//!
//! [`tiled_with`] is the blocking loop, shared with the int8 kernel of [`super::int8`].

use bytemuck::Zeroable;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use half::f16;
use rayon::prelude::*;

use super::pages::Pages;
use super::split::Split;

/// Output features per weight panel: two AVX-512 registers.
pub(crate) const PANEL: usize = 32;
/// Tokens per tile: 12 x 2 accumulators + 2 weight registers + 1 broadcast fit in 32.
pub(crate) const TILE: usize = 12;

/// A dense layer's `[out, in]` weight in the one form this CPU computes with, for
/// [`Packed::forward`].
pub(crate) struct Packed {
    in_dim: usize,
    out_dim: usize,
    form: Form,
}

/// Where the CPU has AMX, the split weights: every product then takes them, whatever its number
/// of tokens. Choosing by the number of tokens was faster one short sentence at a time (by
/// 15-25% on all-MiniLM-L6-v2), but then a sentence's vectors depended on the batch it came in
/// (a sharded report no longer equalled one process's); one kernel per weight keeps every row's
/// sums the same in any batch. Only that form is kept, so a model takes no more memory than
/// its f32 weights.
enum Form {
    /// Panel `p` holds the `in_dim x PANEL` weights of features `p * PANEL ..`, zero-padded,
    /// in the order its kernel reads them ([`Kernel`]).
    Panels(Panels),
    /// The weights split for AMX (see [`super::split`]).
    Split(Split),
}

/// A weight's panels, laid out for one of the micro-kernels.
struct Panels {
    values: Values,
    kernel: Kernel,
}

/// The panels' element type: f16 when that is exact, f32 otherwise.
enum Values {
    F16(Pages<f16>),
    F32(Pages<f32>),
}

/// The micro-kernel a weight's panels are laid out for: each reads its panel as one stream.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kernel {
    /// AVX-512: step `k` of a panel holds its [`PANEL`] weights together (two registers).
    Avx512,
    /// AVX2: the panel's first 16 features (`in_dim x 16`), then its other 16. A pass of this
    /// kernel covers one half; with the halves interleaved row by row, as the AVX-512 kernel
    /// reads them, it read every other cache line, which the hardware prefetchers followed less
    /// well. One half after the other (both layouts run at the same time, one per core, then
    /// swapped): 10-token products streaming from memory 1.07x as fast in f32 and 1.10x in f16,
    /// batches of 336 tokens 1.05x in f32 and unchanged in f16.
    Avx2,
}

impl Kernel {
    /// The widest kernel this CPU has (AVX2 where it has neither: then no panels are built).
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        if x86::avx512_available() {
            return Kernel::Avx512;
        }
        Kernel::Avx2
    }

    /// Where weight (`feature`, `k`) of a panel goes, `feature < PANEL`.
    fn offset(self, in_dim: usize, feature: usize, k: usize) -> usize {
        match self {
            Kernel::Avx512 => k * PANEL + feature,
            Kernel::Avx2 => (feature / 16 * in_dim + k) * 16 + feature % 16,
        }
    }
}

impl Packed {
    /// Packs a row-major `[out_dim, in_dim]` weight, or `None` when this CPU lacks the kernel.
    pub(crate) fn pack(weight: &[f32], out_dim: usize, in_dim: usize) -> Option<Self> {
        if !kernel_available() || weight.len() != out_dim * in_dim || in_dim == 0 {
            return None;
        }
        let form = match Split::pack(weight, out_dim, in_dim) {
            Some(split) => Form::Split(split),
            None => Form::Panels(Panels::pack(weight, out_dim, in_dim)?),
        };
        Some(Packed { in_dim, out_dim, form })
    }

    /// `xs [tokens, in] x weight^T (+ bias)`, then GELU (erf) if asked: a row-major
    /// `[tokens, out]` result.
    fn matmul(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool) -> Vec<f32> {
        match &self.form {
            Form::Split(split) => split.matmul(xs, bias, gelu),
            Form::Panels(panels) => panels.matmul(xs, self.in_dim, self.out_dim, bias, gelu),
        }
    }
}

impl Panels {
    /// Panels for the widest kernel this CPU has: f16 when every weight is exactly an f16 value
    /// (half the memory traffic).
    fn pack(weight: &[f32], out_dim: usize, in_dim: usize) -> Option<Self> {
        Self::pack_for(weight, out_dim, in_dim, Kernel::best())
    }

    /// Panels for `kernel`, which this CPU must have to multiply with them.
    fn pack_for(weight: &[f32], out_dim: usize, in_dim: usize, kernel: Kernel) -> Option<Self> {
        let values = match weight.iter().all(|&w| f16::from_f32(w).to_f32() == w || w.is_nan()) {
            true => Values::F16(panel_layout(weight, out_dim, in_dim, kernel, f16::from_f32)?),
            false => Values::F32(panel_layout(weight, out_dim, in_dim, kernel, |w| w)?),
        };
        Some(Panels { values, kernel })
    }

    /// [`Packed::matmul`] in the kernel these panels are laid out for, whatever the number of
    /// tokens.
    fn matmul(&self, xs: &[f32], in_dim: usize, out_dim: usize, bias: Option<&[f32]>, gelu: bool) -> Vec<f32> {
        let avx512 = self.kernel == Kernel::Avx512;
        #[cfg(target_arch = "x86_64")]
        let rows = if avx512 { TILE } else { x86::AVX2_ROWS };
        #[cfg(not(target_arch = "x86_64"))]
        let rows = TILE;
        tiled_with(xs.len() / in_dim, out_dim, rows, Tasks::PerPanel, || (), |(), block| {
            let panel_bias = block.bias(bias);
            let tile_xs = &xs[block.first_token * in_dim..(block.first_token + block.tokens) * in_dim];
            let range = block.panel * in_dim * PANEL..(block.panel + 1) * in_dim * PANEL;
            // SAFETY: `kernel_available` held when this was packed, for a kernel this CPU has;
            // `range` is one whole panel, and `block` is a block of the result that
            // `tiled_with` hands to this call alone.
            unsafe {
                match &self.values {
                    Values::F16(panels) => x86::block(&panels[range], tile_xs, &panel_bias, gelu, in_dim, block, avx512),
                    Values::F32(panels) => x86::block(&panels[range], tile_xs, &panel_bias, gelu, in_dim, block, avx512),
                }
            }
        })
    }
}

/// `weight` (`[out_dim, in_dim]`) rearranged into zero-padded panels of [`PANEL`] features,
/// each in the order `kernel` reads it, in large pages (see [`super::pages`]); `None` where
/// that memory cannot be mapped.
fn panel_layout<T: Zeroable>(weight: &[f32], out_dim: usize, in_dim: usize, kernel: Kernel, convert: impl Fn(f32) -> T) -> Option<Pages<T>> {
    let mut panels = Pages::zeroed(out_dim.div_ceil(PANEL) * in_dim * PANEL)?;
    for (feature, row) in weight.chunks_exact(in_dim).enumerate() {
        let panel = &mut panels[feature / PANEL * in_dim * PANEL..][..in_dim * PANEL];
        for (k, &w) in row.iter().enumerate() {
            panel[kernel.offset(in_dim, feature % PANEL, k)] = convert(w);
        }
    }
    Some(panels)
}

/// One block of a product's result: `tokens` rows (at most a tile's) of `features <= PANEL` values.
#[derive(Clone, Copy)]
pub(crate) struct Block {
    /// The weight panel (features `panel * PANEL ..`).
    pub(crate) panel: usize,
    /// First feature, `panel * PANEL`.
    pub(crate) first_feature: usize,
    /// Features in this block (fewer than [`PANEL`] in the last panel).
    pub(crate) features: usize,
    /// First token row of the tile.
    pub(crate) first_token: usize,
    /// Token rows in this block (fewer than a tile's in the last tile).
    pub(crate) tokens: usize,
    /// Where the block's first value goes.
    pub(crate) out: *mut f32,
    /// Distance between the block's rows in `out`: the result's width.
    pub(crate) stride: usize,
}

impl Block {
    /// This block's features of `bias`, zero-padded to a whole panel (zeros without a bias).
    pub(crate) fn bias(&self, bias: Option<&[f32]>) -> [f32; PANEL] {
        let mut panel = [0f32; PANEL];
        if let Some(bias) = bias {
            panel[..self.features].copy_from_slice(&bias[self.first_feature..self.first_feature + self.features]);
        }
        panel
    }

    /// Row `j` of this block, as a block of one token (for epilogues that go row by row).
    pub(crate) fn row(self, j: usize) -> Block {
        Block { first_token: self.first_token + j, tokens: 1, out: self.out.wrapping_add(j * self.stride), ..self }
    }
}

// SAFETY: every block is handed to one task only, and blocks never overlap (see `tiled_with`).
unsafe impl Send for Block {}

/// How [`tiled_with`] shares a product's panels among its tasks.
#[derive(Clone, Copy)]
pub(crate) enum Tasks {
    /// A task per panel (inside a forward pass, shared out by [`super::team`], each thread
    /// taking neighbouring panels). Tasks of a few panels (an eighth of a product's on two threads) left
    /// one thread idle while the other finished its last task: a task per panel made the AVX2
    /// kernel's products on two threads 1.04-1.09x as fast, batched or ten tokens at a time, f16
    /// or f32, in all-MiniLM-L6-v2's and bert-base's shapes (both variants alternating in one
    /// process, on an AMD EPYC Zen 3).
    PerPanel,
    /// Tasks of at least a quarter of a thread's share of the panels, as before: the AMX and
    /// int8 kernels, where tasks per panel have not been measured.
    Few,
}

/// Computes a `[tokens, out_dim]` result block by block, in tiles of `rows` tokens, in parallel
/// over weight panels: each task takes its panels (see [`Tasks`]) and streams their weights
/// once, for all tiles of tokens. `init` makes a state once per task, handed to all of its
/// blocks (the int8 kernel's configured AMX tiles); `block` must write all of its block's values.
pub(crate) fn tiled_with<S>(tokens: usize, out_dim: usize, rows: usize, tasks: Tasks, init: impl Fn() -> S + Sync + Send, block: impl Fn(&mut S, Block) + Sync + Send) -> Vec<f32> {
    let mut out = Vec::with_capacity(tokens * out_dim);
    let panels = out_dim.div_ceil(PANEL);
    let out_ptr = SharedOut(out.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let task = |state: &mut S, panel: usize| {
        let features = PANEL.min(out_dim - panel * PANEL);
        for first_token in (0..tokens).step_by(rows) {
            let first = first_token * out_dim + panel * PANEL;
            block(
                state,
                Block {
                    panel,
                    first_feature: panel * PANEL,
                    features,
                    first_token,
                    tokens: rows.min(tokens - first_token),
                    out: out_ptr.at(first),
                    stride: out_dim,
                },
            );
        }
    };
    match tasks {
        Tasks::PerPanel => super::team::for_each_init(panels, init, task),
        Tasks::Few => {
            let per_task = panels.div_ceil(4 * rayon::current_num_threads()).max(1);
            (0..panels).into_par_iter().with_min_len(per_task).for_each_init(init, task);
        }
    }
    // SAFETY: the blocks of all (panel, tile) pairs cover every one of the values, and `block`
    // writes all of its own.
    unsafe { out.set_len(tokens * out_dim) };
    out
}

/// The result buffer, written by the panel tasks in disjoint blocks.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: the tasks write disjoint blocks (see `tiled_with`).
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

/// Whether one of the panel kernels (AVX-512, or AVX2 with FMA and F16C) can run here.
pub(crate) fn kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86::avx512_available() || x86::avx2_available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A weight in a packed CPU form: its product with a row-major f32 input, as a candle op.
pub(crate) trait PackedWeight: Sync {
    /// The op's name, for candle's messages.
    const NAME: &'static str;
    /// `(in_dim, out_dim)`.
    fn dims(&self) -> (usize, usize);
    /// `xs [tokens, in] x weight^T (+ bias)`, then GELU (erf) if asked: a row-major
    /// `[tokens, out]` result.
    fn product(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool) -> Vec<f32>;

    /// The same for an f32 tensor `[.., in]` on the CPU.
    fn forward(&self, xs: &Tensor, bias: Option<&[f32]>, gelu: bool) -> Result<Tensor>
    where
        Self: Sized,
    {
        xs.contiguous()?.apply_op1_no_bwd(&Product { weight: self, bias, gelu })
    }
}

impl PackedWeight for Packed {
    const NAME: &'static str = "vecshift-matmul-packed-weights";

    fn dims(&self) -> (usize, usize) {
        (self.in_dim, self.out_dim)
    }

    fn product(&self, xs: &[f32], bias: Option<&[f32]>, gelu: bool) -> Vec<f32> {
        self.matmul(xs, bias, gelu)
    }
}

/// The product with a [`PackedWeight`] and an optional bias, as a candle op.
struct Product<'a, W> {
    weight: &'a W,
    /// Added to every row of the product (`out` values), in the same pass.
    bias: Option<&'a [f32]>,
    /// Apply GELU (erf) to the result, also in the same pass (while the block is in cache).
    gelu: bool,
}

impl<W: PackedWeight> CustomOp1 for Product<'_, W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else { candle_core::bail!("{} expects f32", W::NAME) };
        let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("{} expects a contiguous tensor", W::NAME) };
        let (in_dim, out_dim) = self.weight.dims();
        if self.bias.is_some_and(|b| b.len() != out_dim) {
            candle_core::bail!("{}: a bias of {} values for {out_dim} outputs", W::NAME, self.bias.map_or(0, <[f32]>::len));
        }
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&in_dim) {
            candle_core::bail!("{}: input of shape {dims:?} for a weight of {in_dim} inputs", W::NAME);
        }
        *dims.last_mut().expect("checked above") = out_dim;
        Ok((CpuStorage::F32(self.weight.product(&data[start..end], self.bias, self.gelu)), Shape::from(dims)))
    }
}

/// Stores a block's `N` rows of f32 accumulators, with GELU if asked (the int8 kernel's too).
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::store as store_block;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    use super::{Block, PANEL, TILE};

    pub(super) use avx2::ROWS as AVX2_ROWS;

    /// Whether the AVX-512 micro-kernel can run here.
    pub(super) fn avx512_available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma")
    }

    /// Whether the AVX2 micro-kernel can run here (F16C widens the f16 panels).
    pub(super) fn avx2_available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
    }

    /// A panel element the micro-kernels can widen to f32.
    pub(super) trait Element: Copy {
        /// The `PANEL` weights of inner step `k`, as two f32 registers.
        ///
        /// # Safety
        /// AVX-512F must be available and `panel` valid for `(k + 1) * PANEL` elements.
        unsafe fn load(panel: *const Self, k: usize) -> [__m512; 2];

        /// 16 consecutive weights (one inner step of an AVX2 panel's half), as two AVX
        /// registers.
        ///
        /// # Safety
        /// AVX and F16C must be available and `weights` valid for 16 elements.
        unsafe fn load16(weights: *const Self) -> [__m256; 2];
    }

    impl Element for f16 {
        #[inline(always)]
        unsafe fn load(panel: *const Self, k: usize) -> [__m512; 2] {
            let w = panel.cast::<__m256i>();
            // SAFETY: as the trait's contract: 2 x 16 halves at step `k`.
            unsafe { [_mm512_cvtph_ps(_mm256_loadu_si256(w.add(2 * k))), _mm512_cvtph_ps(_mm256_loadu_si256(w.add(2 * k + 1)))] }
        }

        #[inline(always)]
        unsafe fn load16(weights: *const Self) -> [__m256; 2] {
            let w = weights.cast::<__m128i>();
            // SAFETY: as the trait's contract: 2 x 8 halves.
            unsafe { [_mm256_cvtph_ps(_mm_loadu_si128(w)), _mm256_cvtph_ps(_mm_loadu_si128(w.add(1)))] }
        }
    }

    impl Element for f32 {
        #[inline(always)]
        unsafe fn load(panel: *const Self, k: usize) -> [__m512; 2] {
            // SAFETY: as the trait's contract: 2 x 16 floats at step `k`.
            unsafe { [_mm512_loadu_ps(panel.add(PANEL * k)), _mm512_loadu_ps(panel.add(PANEL * k + 16))] }
        }

        #[inline(always)]
        unsafe fn load16(weights: *const Self) -> [__m256; 2] {
            // SAFETY: as the trait's contract: 2 x 8 floats.
            unsafe { [_mm256_loadu_ps(weights), _mm256_loadu_ps(weights.add(8))] }
        }
    }

    /// One block of the result, in the AVX-512 micro-kernel if `avx512`, else the AVX2 one.
    ///
    /// # Safety
    /// The CPU must have the kernel asked for ([`avx512_available`] or [`avx2_available`]);
    /// `weights` is one panel (`in_dim x PANEL`) laid out for that kernel, `xs` the tile's
    /// `block.tokens` token rows (`tokens x in_dim`), and `block.out` must be valid for
    /// `block.tokens` rows of `block.features` values, `block.stride` apart.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block<T: Element>(weights: &[T], xs: &[f32], bias: &[f32; PANEL], gelu: bool, in_dim: usize, block: Block, avx512: bool) {
        debug_assert!(weights.len() >= in_dim * PANEL && xs.len() >= in_dim * block.tokens && block.features <= PANEL);
        if !avx512 {
            // SAFETY: as this function's contract, for the AVX2 kernel.
            return unsafe { avx2::block(weights, xs, bias, gelu, in_dim, block) };
        }
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match block.tokens {
                    // SAFETY: as this function's own contract.
                    $($n => unsafe { micro::<T, $n>(weights, xs, bias, gelu, in_dim, block) },)*
                    _ => {}
                }
            };
        }
        debug_assert!(block.tokens <= TILE);
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12);
    }

    /// The micro-kernel for `N` tokens: `N x 2` accumulators (starting from the bias), two
    /// widened weight registers and one broadcast token value per step of the inner dimension.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn micro<T: Element, const N: usize>(weights: &[T], xs: &[f32], bias: &[f32; PANEL], gelu: bool, in_dim: usize, block: Block) {
        // SAFETY: `bias` holds PANEL = 2 x 16 values.
        let bias = unsafe { [_mm512_loadu_ps(bias.as_ptr()), _mm512_loadu_ps(bias.as_ptr().add(16))] };
        let mut acc = [bias; N];
        let (w, x) = (weights.as_ptr(), xs.as_ptr());
        for k in 0..in_dim {
            // SAFETY: `k < in_dim`, within the panel and the tile.
            unsafe {
                let [w0, w1] = T::load(w, k);
                for (j, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*x.add(j * in_dim + k));
                    acc[0] = _mm512_fmadd_ps(w0, b, acc[0]);
                    acc[1] = _mm512_fmadd_ps(w1, b, acc[1]);
                }
            }
        }
        // SAFETY: as this function's contract.
        unsafe { store(&acc, gelu, block) };
    }

    /// Stores `N` rows of a block's accumulators, masked to its features, with GELU if asked.
    ///
    /// # Safety
    /// As [`block`]'s, for `N = block.tokens` rows.
    #[target_feature(enable = "avx512f,fma")]
    pub(crate) unsafe fn store<const N: usize>(acc: &[[__m512; 2]; N], gelu: bool, block: Block) {
        let features = block.features;
        let low = if features >= 16 { 0xFFFF } else { (1u16 << features) - 1 };
        let high = if features >= PANEL { 0xFFFF } else { ((1u32 << features.saturating_sub(16)) - 1) as u16 };
        for (j, acc) in acc.iter().enumerate() {
            let row = block.out.wrapping_add(j * block.stride);
            // SAFETY: row `j < tokens` of the block, masked to its `features` values.
            unsafe {
                _mm512_mask_storeu_ps(row, low, acc[0]);
                _mm512_mask_storeu_ps(row.add(16), high, acc[1]);
            }
            if gelu {
                // SAFETY: the `features` values just stored.
                let row = unsafe { std::slice::from_raw_parts_mut(row, features) };
                // Vectorised 16 wide here, as this function is compiled for AVX-512.
                row.iter_mut().for_each(|v| *v = crate::contextual::nn::kernels::gelu(*v));
            }
        }
    }

    /// The AVX2 micro-kernel: a block in sub-blocks of at most six tokens (`GROUP`) and 16
    /// features, each summed in `2 x tokens` AVX registers from one half of a panel laid out
    /// for it ([`super::super::Kernel::Avx2`]).
    mod avx2 {
        use std::arch::x86_64::*;
        use std::ops::Range;

        use super::super::{Block, PANEL};
        use super::Element;
        use crate::contextual::nn::kernels::gelu_avx2;

        /// Tokens per sub-block: 6 x 2 accumulators + 2 weight registers + 1 broadcast = 15
        /// of the 16 AVX registers.
        const GROUP: usize = 6;

        /// Tokens per block (the tiles [`super::super::tiled_with`] hands this kernel). Once the
        /// first block has brought a panel into cache, the later blocks' passes read it from
        /// there: blocks of 48 rather than the AVX-512 kernel's 12 tokens made batched products
        /// about 5% faster (both variants run at the same time, one per core, then swapped).
        pub(crate) const ROWS: usize = 48;

        /// Passes per block at most: two halves of the panel for each group of tokens.
        const MAX_PASSES: usize = 2 * ROWS.div_ceil(GROUP);

        /// [`super::block`] on a CPU with AVX2, FMA and F16C, for blocks of up to [`ROWS`]
        /// tokens (same contract otherwise).
        pub(super) unsafe fn block<T: Element>(weights: &[T], xs: &[f32], bias: &[f32; PANEL], gelu: bool, in_dim: usize, block: Block) {
            debug_assert!(block.tokens <= ROWS);
            // Passes of up to GROUP tokens and 16 features. Even groups: 8 tokens as 4 + 4
            // rather than 6 + 2, which would stream the panel twice for the same work either way
            // but leave the second pass mostly idle.
            let groups = block.tokens.div_ceil(GROUP);
            let mut passes = [Pass { first: 0, tokens: 0, half: 0 }; MAX_PASSES];
            let mut count = 0;
            let mut first = 0;
            for group in 0..groups {
                let tokens = (block.tokens - first) / (groups - group);
                for half in 0..block.features.div_ceil(16) {
                    passes[count] = Pass { first, tokens, half };
                    count += 1;
                }
                first += tokens;
            }
            let passes = &passes[..count];
            let run = |pass: &Pass, steps: Range<usize>, prefetch: Range<usize>| {
                let sub = Block {
                    first_feature: block.first_feature + 16 * pass.half,
                    features: (block.features - 16 * pass.half).min(16),
                    first_token: block.first_token + pass.first,
                    tokens: pass.tokens,
                    out: block.out.wrapping_add(pass.first * block.stride + 16 * pass.half),
                    ..block
                };
                let (xs, bias) = (&xs[pass.first * in_dim..], &bias[16 * pass.half..]);
                let gelu = gelu && steps.end == in_dim;
                macro_rules! dispatch {
                    ($($n:literal)*) => {
                        match (pass.tokens, prefetch.is_empty()) {
                            // SAFETY: as this function's contract, for the sub-block.
                            $(($n, true) => unsafe { micro::<T, $n, false>(weights, xs, bias, gelu, in_dim, pass.half, sub, steps, prefetch) },
                            ($n, false) => unsafe { micro::<T, $n, true>(weights, xs, bias, gelu, in_dim, pass.half, sub, steps, prefetch) },)*
                            _ => {}
                        }
                    };
                }
                dispatch!(1 2 3 4 5 6);
            };
            if block.first_token != 0 || size_of::<T>() != 4 {
                // The panel is in cache: the first block brought it. f16 panels (half the
                // bytes: all-MiniLM-L6-v2's fit a 32 MB L3) gained nothing from chunks, and
                // lost a seventh to their stops and restarts (chunks of 64 rows); in the
                // layout of one half after the other, chunks of 256 rows with prefetches made
                // 10-token products 0.82-0.88x as fast, in both models' shapes.
                passes.iter().for_each(|pass| run(pass, 0..in_dim, 0..0));
                return;
            }
            // The first block reads the panel from memory (one sentence at a time, all of a
            // model's weights stream past for ten or so tokens). Pass after pass over the whole
            // panel, the memory would idle while the later passes read the panel from cache:
            // instead all passes go through a chunk of rows, each prefetching its share of the
            // next chunk (past the last, the next panel's first rows), so that memory and
            // arithmetic overlap. The sums stop at each chunk's end and resume from the stored
            // f32 values: the same operations in the same order.
            let share = CHUNK.div_ceil(passes.len());
            for start in (0..in_dim).step_by(CHUNK) {
                let end = (start + CHUNK).min(in_dim);
                for (i, pass) in passes.iter().enumerate() {
                    let ahead = start + CHUNK + i * share;
                    run(pass, start..end, ahead..ahead + share);
                }
            }
        }

        /// Rows of the panel in one chunk of the first block's passes (32 KB of f32 weights, both
        /// halves). Against 128 rows, 10-token products streaming from memory ran 1.00-1.05x as
        /// fast in all-MiniLM-L6-v2's shapes and 1.04-1.22x in bert-base's (four rounds each,
        /// both run at the same time, one per core); 512 rows were no better than 256.
        const CHUNK: usize = 256;

        /// One pass over a panel: `tokens` tokens from the block's `first`, 16 features of `half`.
        #[derive(Clone, Copy)]
        struct Pass {
            first: usize,
            tokens: usize,
            half: usize,
        }

        /// The micro-kernel for `N` tokens and the 16 features of `half` of the panel (laid out
        /// for this kernel), over the inner `steps`: from the bias when they start at 0, else
        /// from the block's stored values; with `PREFETCH`, it asks for the whole of the rows
        /// `prefetch`, one per step.
        #[target_feature(enable = "avx2,fma,f16c")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn micro<T: Element, const N: usize, const PREFETCH: bool>(
            weights: &[T],
            xs: &[f32],
            bias: &[f32],
            gelu: bool,
            in_dim: usize,
            half: usize,
            block: Block,
            steps: Range<usize>,
            prefetch: Range<usize>,
        ) {
            let mut acc = [[_mm256_setzero_ps(); 2]; N];
            for (j, acc) in acc.iter_mut().enumerate() {
                let mut row = [0f32; 16];
                match steps.start {
                    0 => row.copy_from_slice(&bias[..16]),
                    // SAFETY: row `j < tokens` of the sub-block, its `features` values, which
                    // the previous chunk stored.
                    _ => unsafe { std::ptr::copy_nonoverlapping(block.out.wrapping_add(j * block.stride), row.as_mut_ptr(), block.features) },
                }
                // SAFETY: 16 floats.
                *acc = unsafe { [_mm256_loadu_ps(row.as_ptr()), _mm256_loadu_ps(row.as_ptr().add(8))] };
            }
            // This pass's half of the panel: `in_dim` steps of 16 weights.
            let (w, x) = (weights.as_ptr().wrapping_add(half * in_dim * 16), xs.as_ptr());
            // The row of the panel (rows from `in_dim` on: the next panel's) to ask for next,
            // as the panel it is in and the row in that panel: a division per step instead cost
            // 7-8% of 10-token products streaming from memory in all-MiniLM-L6-v2's shapes and
            // 20% in bert-base's (both run at the same time, one per core).
            let (mut ahead, mut ahead_row) = (weights.as_ptr().wrapping_add(prefetch.start / in_dim * in_dim * PANEL), prefetch.start % in_dim);
            // One inner step: 16 weights, each token's value at `x` (token `j` at `j * in_dim`).
            let step = |acc: &mut [[__m256; 2]; N], w: *const T, x: *const f32| {
                // SAFETY: callers pass a step `k < in_dim` of the panel's half and the tokens.
                unsafe {
                    let [w0, w1] = T::load16(w);
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let b = _mm256_set1_ps(*x.add(j * in_dim));
                        acc[0] = _mm256_fmadd_ps(w0, b, acc[0]);
                        acc[1] = _mm256_fmadd_ps(w1, b, acc[1]);
                    }
                }
            };
            let (mut k, end) = (steps.start, steps.end);
            if PREFETCH {
                // The steps that ask for a row each.
                let stop = (k + prefetch.len()).min(end);
                while k < stop {
                    // Both halves of the row, a cache line each in f32. Into L2 rather than
                    // L1: 1.05-1.07x on 10-token products streaming from memory, as the misses
                    // no longer wait on L1's few fill buffers. Prefetches never fault, so rows
                    // past the last panel's end need no check.
                    _mm_prefetch::<_MM_HINT_T1>(ahead.wrapping_add(16 * ahead_row).cast::<i8>());
                    _mm_prefetch::<_MM_HINT_T1>(ahead.wrapping_add(16 * (in_dim + ahead_row)).cast::<i8>());
                    ahead_row += 1;
                    if ahead_row == in_dim {
                        (ahead, ahead_row) = (ahead.wrapping_add(in_dim * PANEL), 0);
                    }
                    step(&mut acc, w.wrapping_add(16 * k), x.wrapping_add(k));
                    k += 1;
                }
            }
            if let (2, Ok(six)) = (size_of::<T>(), <&mut [[__m256; 2]; GROUP]>::try_from(acc.as_mut_slice())) {
                // Six tokens of f16 weights: 12 accumulators, 2 widened weight registers and a
                // broadcast take 15 of the 16 registers. Unrolled in Rust, the compiler widened
                // the next step's weights early and kept an accumulator on the stack (0.55x as
                // fast; 0.6x unrolled by two; 0.76-0.86x with a compiler fence between steps),
                // so these steps are written out in assembly.
                let iterations = (end - k) / 4;
                // SAFETY: steps `k..k + 4 * iterations` of the panel's half and the six tokens.
                unsafe { f16_six_by_four(six, w.wrapping_add(16 * k).cast(), x.wrapping_add(k), in_dim, iterations) };
                k += 4 * iterations;
            }
            // Several steps at a time: their addresses are offsets from the same registers, and
            // the loop's own instructions (a fifth of some thirty per step) come once per
            // iteration. Four steps against one: batched products of f32 weights 1.06-1.13x as
            // fast, 10-token products streaming from memory 1.02-1.10x (f16: 1.01-1.05x); eight
            // against four, for f32 weights only: batched 1.02-1.15x, streaming unchanged (f16
            // streaming 0.82x). Both variants at the same time, one per core, then swapped.
            let (mut w, mut x) = (w.wrapping_add(16 * k), x.wrapping_add(k));
            if size_of::<T>() == 4 {
                while k + 8 <= end {
                    for u in 0..8 {
                        step(&mut acc, w.wrapping_add(16 * u), x.wrapping_add(u));
                    }
                    (w, x, k) = (w.wrapping_add(128), x.wrapping_add(8), k + 8);
                }
            }
            while k + 4 <= end {
                for u in 0..4 {
                    step(&mut acc, w.wrapping_add(16 * u), x.wrapping_add(u));
                }
                (w, x, k) = (w.wrapping_add(64), x.wrapping_add(4), k + 4);
            }
            for _ in k..end {
                step(&mut acc, w, x);
                (w, x) = (w.wrapping_add(16), x.wrapping_add(1));
            }
            if gelu {
                // In registers, all rows at once (see `gelu_avx2`): products with GELU ran
                // 1.04-1.05x as fast as with GELU value by value in a row buffer.
                // SAFETY: this function is compiled for AVX2 and FMA.
                acc = unsafe { gelu_avx2(acc) };
            }
            for (j, acc) in acc.iter().enumerate() {
                let out = block.out.wrapping_add(j * block.stride);
                // SAFETY: row `j < tokens` of the sub-block, its `features` values.
                unsafe {
                    if block.features == 16 {
                        _mm256_storeu_ps(out, acc[0]);
                        _mm256_storeu_ps(out.add(8), acc[1]);
                    } else {
                        let mut row = [0f32; 16];
                        _mm256_storeu_ps(row.as_mut_ptr(), acc[0]);
                        _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[1]);
                        std::ptr::copy_nonoverlapping(row.as_ptr(), out, block.features);
                    }
                }
            }
        }

        /// One inner step of [`f16_six_by_four`]: the weights at byte offsets `$w` and `$w16`
        /// from `{w}` widened into ymm12-13, each token's value at byte offset `$x` from its
        /// row broadcast into ymm14, and two multiply-adds per token into ymm0-11.
        macro_rules! six_step {
            ($w:literal, $w16:literal, $x:literal) => {
                concat!(
                    "vcvtph2ps ymm12, xmmword ptr [{w} + ", $w, "]\n",
                    "vcvtph2ps ymm13, xmmword ptr [{w} + ", $w16, "]\n",
                    "vbroadcastss ymm14, dword ptr [{x} + ", $x, "]\n",
                    "vfmadd231ps ymm0, ymm12, ymm14\n",
                    "vfmadd231ps ymm1, ymm13, ymm14\n",
                    "vbroadcastss ymm14, dword ptr [{x} + {s} + ", $x, "]\n",
                    "vfmadd231ps ymm2, ymm12, ymm14\n",
                    "vfmadd231ps ymm3, ymm13, ymm14\n",
                    "vbroadcastss ymm14, dword ptr [{x} + {s}*2 + ", $x, "]\n",
                    "vfmadd231ps ymm4, ymm12, ymm14\n",
                    "vfmadd231ps ymm5, ymm13, ymm14\n",
                    "vbroadcastss ymm14, dword ptr [{x3} + ", $x, "]\n",
                    "vfmadd231ps ymm6, ymm12, ymm14\n",
                    "vfmadd231ps ymm7, ymm13, ymm14\n",
                    "vbroadcastss ymm14, dword ptr [{x3} + {s} + ", $x, "]\n",
                    "vfmadd231ps ymm8, ymm12, ymm14\n",
                    "vfmadd231ps ymm9, ymm13, ymm14\n",
                    "vbroadcastss ymm14, dword ptr [{x3} + {s}*2 + ", $x, "]\n",
                    "vfmadd231ps ymm10, ymm12, ymm14\n",
                    "vfmadd231ps ymm11, ymm13, ymm14\n",
                )
            };
        }

        /// `iterations` times four inner steps for six tokens and 16 features of f16 weights,
        /// from `w` (16 weights per step) and `x` (token `j`'s value at `x + j * in_dim`): the
        /// same multiply-adds, in the same order per accumulator, as `micro`'s steps.
        ///
        /// In assembly so that the twelve accumulators, two weight registers and the broadcast
        /// stay in the 16 registers. Against one step per iteration in Rust, products of 336
        /// tokens with f16 weights ran 1.09-1.13x as fast (all-MiniLM-L6-v2's shapes, both
        /// variants at the same time, one per core, then swapped).
        ///
        /// # Safety
        /// AVX2, FMA and F16C; `w` holds `16 * 4 * iterations` values and each of the six rows
        /// at `x` `4 * iterations`.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn f16_six_by_four(acc: &mut [[__m256; 2]; GROUP], w: *const half::f16, x: *const f32, in_dim: usize, iterations: usize) {
            if iterations == 0 {
                return;
            }
            let [[a0, a1], [a2, a3], [a4, a5], [a6, a7], [a8, a9], [a10, a11]] = acc;
            // SAFETY: the caller's contract; the loop reads only there and writes no memory.
            unsafe {
                std::arch::asm!(
                "2:",
                six_step!(0, 16, 0),
                six_step!(32, 48, 4),
                six_step!(64, 80, 8),
                six_step!(96, 112, 12),
                "add {w}, 128",
                "add {x}, 16",
                "add {x3}, 16",
                "dec {n}",
                "jnz 2b",
                w = inout(reg) w => _,
                x = inout(reg) x => _,
                // Rows 3-5 from a second base: an address takes one scaled index only.
                x3 = inout(reg) x.wrapping_add(3 * in_dim) => _,
                s = in(reg) in_dim * size_of::<f32>(),
                n = inout(reg) iterations => _,
                inout("ymm0") *a0, inout("ymm1") *a1, inout("ymm2") *a2, inout("ymm3") *a3,
                inout("ymm4") *a4, inout("ymm5") *a5, inout("ymm6") *a6, inout("ymm7") *a7,
                inout("ymm8") *a8, inout("ymm9") *a9, inout("ymm10") *a10, inout("ymm11") *a11,
                out("ymm12") _, out("ymm13") _, out("ymm14") _,
                options(nostack, readonly),
                );
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::{Block, PANEL};

    /// Never called: [`super::kernel_available`] is false off x86-64.
    pub(super) unsafe fn block<T>(_: &[T], _: &[f32], _: &[f32; PANEL], _: bool, _: usize, _: Block, _: bool) {
        unreachable!("the packed kernel is x86-64 only")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Plain f64 sums, the reference.
    pub(crate) fn reference(weight: &[f32], xs: &[f32], out_dim: usize, in_dim: usize) -> Vec<f32> {
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

    /// Odd sizes: partial panels and partial tiles on every edge.
    pub(crate) const SHAPES: [(usize, usize, usize); 5] = [(1, 32, 8), (10, 384, 384), (13, 70, 33), (25, 17, 5), (0, 32, 4)];

    /// A deterministic `[out_dim, in_dim]` weight in [-1, 1], not exactly representable in f16.
    pub(crate) fn weights(out_dim: usize, in_dim: usize) -> Vec<f32> {
        (0..out_dim * in_dim).map(|i| ((i * 7919 % 2001) as f32 - 1000.0) / 997.0).collect()
    }

    /// `weight` rounded to f16 values (which the packers then keep as f16).
    fn in_f16(weight: &[f32]) -> Vec<f32> {
        weight.iter().map(|&w| f16::from_f32(w).to_f32()).collect()
    }

    /// Deterministic inputs in [-2, 2].
    pub(crate) fn inputs(tokens: usize, in_dim: usize) -> Vec<f32> {
        (0..tokens * in_dim).map(|i| ((i * 104_729 % 1999) as f32 - 999.0) / 500.0).collect()
    }

    fn check(weight: &[f32], out_dim: usize, in_dim: usize, tokens: usize, want_f16: bool) {
        let xs = inputs(tokens, in_dim);
        // The panels directly: on a CPU with AMX, `Packed` keeps only the split weights.
        let packed = Panels::pack(weight, out_dim, in_dim).unwrap();
        assert_eq!(matches!(packed.values, Values::F16(_)), want_f16);
        let bias: Vec<f32> = (0..out_dim).map(|o| o as f32 / 7.0 - 3.0).collect();
        let mut want = reference(weight, &xs, out_dim, in_dim);
        for (w, b) in want.iter_mut().zip(bias.iter().cycle()) {
            *w += b;
        }
        let close = |g: f32, w: f32| (g - w).abs() <= 1e-4 * (1.0 + w.abs());
        let got = packed.matmul(&xs, in_dim, out_dim, Some(&bias), false);
        assert_eq!(got.len(), want.len());
        for (&g, &w) in got.iter().zip(&want) {
            assert!(close(g, w), "{tokens}x{out_dim}x{in_dim}: {g} vs {w}");
        }
        // GELU(x) = x/2 (1 + erf(x / sqrt 2)).
        let gelu = |x: f32| (0.5 * f64::from(x) * (1.0 + erf(f64::from(x) / std::f64::consts::SQRT_2))) as f32;
        for (&g, &w) in packed.matmul(&xs, in_dim, out_dim, Some(&bias), true).iter().zip(&want) {
            assert!(close(g, gelu(w)), "GELU {tokens}x{out_dim}x{in_dim}: {g} vs {}", gelu(w));
        }
    }

    #[test]
    fn equals_the_f64_product_for_f16_and_f32_weights() {
        if !kernel_available() {
            eprintln!("skipped: this CPU has neither AVX-512 nor AVX2 with FMA and F16C");
            return;
        }
        // 100 tokens: more than one block of the AVX2 kernel (48 tokens), the last one partial.
        for (tokens, out_dim, in_dim) in SHAPES.into_iter().chain([(100, 70, 300)]) {
            let f32_weight = weights(out_dim, in_dim);
            let f16_weight = in_f16(&f32_weight);
            check(&f16_weight, out_dim, in_dim, tokens, true);
            check(&f32_weight, out_dim, in_dim, tokens, false);
        }
    }

    #[test]
    fn a_token_gets_the_same_values_in_any_batch() {
        if !kernel_available() {
            eprintln!("skipped: this CPU has neither AVX-512 nor AVX2 with FMA and F16C");
            return;
        }
        let (out_dim, in_dim) = (70, 384);
        let weight = weights(out_dim, in_dim);
        let panels = Panels::pack(&weight, out_dim, in_dim).unwrap();
        let bias: Vec<f32> = (0..out_dim).map(|o| o as f32 / 7.0 - 3.0).collect();
        let xs = inputs(110, in_dim);
        let all = panels.matmul(&xs, in_dim, out_dim, Some(&bias), true);
        // Batches of every size from 1 to 13 (partial tiles and sub-blocks of every shape), and
        // around the AVX2 kernel's blocks of 48 tokens.
        for size in (1..=13).chain([47, 48, 49, 55]) {
            for (first, batch) in xs.chunks(size * in_dim).enumerate() {
                let got = panels.matmul(batch, in_dim, out_dim, Some(&bias), true);
                let want = &all[first * size * out_dim..][..got.len()];
                assert!(got.iter().zip(want).all(|(g, w)| g.to_bits() == w.to_bits()), "batches of {size}, batch {first}");
            }
        }
    }

    /// On a CPU with AVX-512, the AVX2 kernel (which other CPUs take) gives the same values bit
    /// for bit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_kernel_equals_the_avx512_one() {
        if !(x86::avx512_available() && x86::avx2_available()) {
            eprintln!("skipped: this CPU lacks AVX-512 or AVX2 with FMA and F16C");
            return;
        }
        // 100 tokens: more than one block of the AVX2 kernel.
        for (tokens, out_dim, in_dim) in SHAPES.into_iter().chain([(100, 70, 300)]) {
            let f32_weight = weights(out_dim, in_dim);
            let f16_weight = in_f16(&f32_weight);
            let xs = inputs(tokens, in_dim);
            let bias: Vec<f32> = (0..out_dim).map(|o| o as f32 / 7.0 - 3.0).collect();
            for weight in [f32_weight, f16_weight] {
                let wide = Panels::pack_for(&weight, out_dim, in_dim, Kernel::Avx512).unwrap();
                let narrow = Panels::pack_for(&weight, out_dim, in_dim, Kernel::Avx2).unwrap();
                for gelu in [false, true] {
                    let wide = wide.matmul(&xs, in_dim, out_dim, Some(&bias), gelu);
                    let narrow = narrow.matmul(&xs, in_dim, out_dim, Some(&bias), gelu);
                    assert!(wide.iter().zip(&narrow).all(|(a, b)| a.to_bits() == b.to_bits()), "{tokens}x{out_dim}x{in_dim}, gelu {gelu}");
                }
            }
        }
    }

    /// erf in f64: the Maclaurin series up to |x| = 3, the asymptotic series of erfc beyond
    /// (both far more precise than the f32 kernel under test).
    pub(crate) fn erf(x: f64) -> f64 {
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
}
