//! A target word together with the other words of its sentence, from one forward pass: what
//! measures that compare a word with its context (intra-sentence similarity) need.

use std::ops::Range;

use candle_core::Tensor;

use super::{BATCH_SIZE, BertEncoder, Pooling, TokenizedOccurrence, word_pieces};
use crate::engine::LayerVectors;
use crate::error::Result;
use crate::occurrence::Occurrence;

/// An occurrence tokenized as [`BertEncoder::tokenize`] does, plus the WordPieces of other words
/// of the same sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedSentence {
    /// The occurrence's tokens and the target's pieces.
    pub target: TokenizedOccurrence,
    /// Each other word that got at least one piece inside the encoded tokens: its byte span in
    /// the sentence and the positions of its pieces in `target.ids`.
    pub words: Vec<(Range<usize>, Range<usize>)>,
}

/// The per-layer vectors of a target word and of the other words of its sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceVectors {
    /// The target, exactly as [`Embedder::embed_batch`](crate::Embedder::embed_batch) pools it.
    pub target: LayerVectors,
    /// The other words, in the order given to [`BertEncoder::tokenize_with_words`], with their byte spans.
    pub words: Vec<(Range<usize>, LayerVectors)>,
}

impl BertEncoder {
    /// Tokenizes an occurrence and finds the WordPieces of `words`, byte spans of other words of
    /// the same sentence (for example from Unicode word segmentation).
    ///
    /// Words that overlap the target, produce no pieces, or do not lie wholly inside the window
    /// a long sentence is cut to are left out.
    pub fn tokenize_with_words(&self, occurrence: &Occurrence, words: &[Range<usize>]) -> Result<TokenizedSentence> {
        let encoding = self.encode_text(&occurrence.sentence)?;
        let target = self.tokenize_encoding(&encoding, occurrence)?;
        let special = encoding.get_special_tokens_mask();
        let pieces_of = |span: &Range<usize>| word_pieces(&encoding, span);
        // `tokenize` may have cut a long sentence to a window; map full positions into it.
        let shift = pieces_of(&occurrence.span).map_or(0, |p| p.start - target.word_tokens.start);
        let lead = special.iter().take_while(|&&s| s == 1).count();
        let trail = special.iter().rev().take_while(|&&s| s == 1).count();
        let window = lead..target.ids.len() - trail;
        let words = words
            .iter()
            .filter(|span| span.end <= occurrence.span.start || span.start >= occurrence.span.end)
            .filter_map(|span| {
                let full = pieces_of(span)?;
                let pieces = full.start.checked_sub(shift)?..full.end - shift;
                (pieces.start >= window.start && pieces.end <= window.end).then(|| (span.clone(), pieces))
            })
            .collect();
        Ok(TokenizedSentence { target, words })
    }

    /// Encodes sentences in length-sorted batches, as [`Embedder::embed_batch`](crate::Embedder::embed_batch)
    /// does, and pools the target and every listed word per layer with the encoder's pooling.
    pub fn embed_all_words(&self, sentences: &[TokenizedSentence]) -> Result<Vec<SentenceVectors>> {
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        order.sort_by_key(|&i| sentences[i].target.ids.len());
        let mut results: Vec<Option<SentenceVectors>> = vec![None; sentences.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&TokenizedSentence> = chunk.iter().map(|&i| &sentences[i]).collect();
            for (&i, vectors) in chunk.iter().zip(self.encode_sentences(&batch)?) {
                results[i] = Some(vectors);
            }
        }
        Ok(results.into_iter().map(|r| r.expect("every sentence is in one batch")).collect())
    }

    /// One padded forward pass; pooling is a product with a `[batch, words, seq]` weight tensor
    /// whose row 0 is the target and rows 1.. the other words.
    pub(super) fn encode_sentences(&self, batch: &[&TokenizedSentence]) -> Result<Vec<SentenceVectors>> {
        let n = batch.len();
        let seq = batch.iter().map(|t| t.target.ids.len()).max().unwrap_or(0);
        let rows = 1 + batch.iter().map(|t| t.words.len()).max().unwrap_or(0);
        let mut ids = vec![self.config.pad_token_id; n * seq];
        let mut mask = vec![0u32; n * seq];
        let mut weights = vec![0f32; n * rows * seq];
        for (b, t) in batch.iter().enumerate() {
            let len = t.target.ids.len();
            ids[b * seq..b * seq + len].copy_from_slice(&t.target.ids);
            mask[b * seq..b * seq + len].fill(1);
            let spans = std::iter::once(&t.target.word_tokens).chain(t.words.iter().map(|(_, p)| p));
            for (r, pieces) in spans.enumerate() {
                let pieces = match self.pooling {
                    Pooling::Mean => pieces.clone(),
                    Pooling::First => pieces.start..pieces.start + 1,
                    Pooling::Last => pieces.end - 1..pieces.end,
                };
                let row = (b * rows + r) * seq;
                weights[row + pieces.start..row + pieces.end].fill(1.0 / pieces.len() as f32);
            }
        }
        let ids = Tensor::from_vec(ids, (n, seq), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, seq), &self.device)?;
        let weights = Tensor::from_vec(weights, (n, rows, seq), &self.device)?;
        let hidden = self.model.forward(&ids, &mask)?;
        // pooled[layer][b][row] = vector
        let pooled = hidden.iter().map(|state| weights.matmul(state)?.to_vec3::<f32>()).collect::<Result<Vec<_>, _>>()?;
        Ok(batch
            .iter()
            .enumerate()
            .map(|(b, t)| {
                let vectors = |r: usize| LayerVectors::new(pooled.iter().map(|layer| layer[b][r].clone()).collect());
                SentenceVectors {
                    target: vectors(0),
                    words: t.words.iter().enumerate().map(|(w, (span, _))| (span.clone(), vectors(w + 1))).collect(),
                }
            })
            .collect())
    }
}
