//! What the decoders (GPT-2, the Llama family) share: the causal attention mask and the
//! attention product itself, in plain candle ops (the fused kernel of [`super::kernels`] is
//! BERT's bidirectional attention).

use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::Dense;

/// The additive attention bias of a decoder, `[batch, 1, seq, seq]`: 0 where query `i` may look
/// at key `j` (`j <= i` and `j` is a real token), the lowest f32 elsewhere (as transformers does:
/// finite, so that a row never becomes NaN).
///
/// Batches are padded on the right, so the causal part alone already hides padding from real
/// tokens; the padding part keeps that true whatever the padding side.
pub(crate) fn causal_bias(attention_mask: &Tensor) -> Result<Tensor> {
    let (batch, seq) = attention_mask.dims2()?;
    let real = attention_mask.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<u32>()?;
    let mut bias = vec![f32::MIN; batch * seq * seq];
    for b in 0..batch {
        for i in 0..seq {
            let row = &mut bias[(b * seq + i) * seq..][..=i];
            for (j, value) in row.iter_mut().enumerate() {
                if real[b * seq + j] != 0 {
                    *value = 0.0;
                }
            }
        }
    }
    Tensor::from_vec(bias, (batch, 1, seq, seq), attention_mask.device())
}

/// `softmax(q kᵀ · scale + bias) v` for `[batch, heads, seq, head_dim]` queries, keys and values
/// (keys and values already repeated for grouped-query attention); returns `[batch, seq,
/// heads · head_dim]`, the heads side by side as the output projection expects them.
pub(crate) fn attend(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, scale: f64) -> Result<Tensor> {
    let (batch, heads, seq, head_dim) = q.dims4()?;
    let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(bias)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    probs.matmul(v)?.transpose(1, 2)?.reshape((batch, seq, heads * head_dim))
}

/// `[batch, seq, heads · head_dim]` to `[batch, heads, seq, head_dim]`, contiguous.
pub(crate) fn split_heads(xs: &Tensor, heads: usize) -> Result<Tensor> {
    let (batch, seq, width) = xs.dims3()?;
    xs.reshape((batch, seq, heads, width / heads))?.transpose(1, 2)?.contiguous()
}

/// A `Linear` layer (`[out, in]` weight) with or without a bias, as a [`Dense`].
pub(crate) fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Dense> {
    let layer = candle_nn::linear_b(in_dim, out_dim, bias, vb)?;
    Dense::from_parts(layer.weight(), layer.bias())
}
