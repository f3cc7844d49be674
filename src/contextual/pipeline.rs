//! The architecture-independent half of a contextual engine: tokenize a sentence, find the
//! target word's pieces (and those of the other words), cut a window out of a sentence longer
//! than the model, pad sentences into length-sorted batches, run the model, pool.
//!
//! Pieces are found through the tokenizer's byte offsets, so the same code serves WordPiece
//! (`##`), byte-level BPE (`Ġ`), SentencePiece (`▁`) and byte fallback alike.

use std::ops::Range;

use candle_core::Tensor;
use rayon::prelude::*;
use tokenizers::Encoding;

use super::ContextualEncoder;
use crate::engine::{Embedding, LayerVectors, Pooling, SentenceVectors};
use crate::error::{Error, Result};
use crate::occurrence::Occurrence;

/// Sentences per forward pass: large enough to keep the matrix products efficient,
/// small enough that a batch of long sentences stays well within memory.
const BATCH_SIZE: usize = 32;

/// Parts per thread that a batch is cut into on the CPU (see `encode_sentences`): with two
/// threads, four parts of all-MiniLM-L6-v2's sorted batches ran 1.10x as fast as one pass shared
/// by both threads, two parts 1.06x (alternating in one process).
const PARTS_PER_THREAD: usize = 2;

/// Tokens a part needs at least. Against one shared pass, sorted batches of 4-32 sentences in
/// parts of ~10-20 tokens ran 0.92-0.99x as fast, of ~40 tokens 1.05-1.06x, of ~80-170 tokens
/// 1.06-1.10x.
const PART_TOKENS: usize = 40;

/// A sentence as token ids, with the positions of the target word's pieces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedOccurrence {
    /// Token ids, special tokens included, at most the model's maximum length.
    pub ids: Vec<u32>,
    /// Positions in `ids` of the target word's pieces.
    pub word_tokens: Range<usize>,
    /// The target's pieces as the tokenizer wrote them.
    pub pieces: Vec<String>,
    /// The pieces that are the tokenizer's unknown token.
    pub unknown: Vec<String>,
    /// Set when the sentence was longer than the model allows and a window around the target was kept.
    pub windowed_from: Option<usize>,
}

/// An occurrence tokenized as [`ContextualEncoder::tokenize`] does, plus the pieces of other words
/// of the same sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedSentence {
    /// The occurrence's tokens and the target's pieces.
    pub target: TokenizedOccurrence,
    /// Each other word that got at least one piece inside the encoded tokens: its byte span in
    /// the sentence and the positions of its pieces in `target.ids`.
    pub words: Vec<(Range<usize>, Range<usize>)>,
}

impl TokenizedSentence {
    /// The target alone, without other words.
    pub fn alone(target: TokenizedOccurrence) -> Self {
        TokenizedSentence { target, words: Vec::new() }
    }
}

impl ContextualEncoder {
    /// Tokenizes a sentence and finds the target word's pieces.
    ///
    /// A sentence longer than the model's positions is cut to a window centred on the
    /// target, or for a decoder ending with it (`windowed_from` says so); the target itself is
    /// never cut.
    pub fn tokenize(&self, occurrence: &Occurrence) -> Result<TokenizedOccurrence> {
        let encoding = self.encode_text(occurrence.sentence())?;
        self.tokenize_encoding(&encoding, occurrence)
    }

    /// Tokenizes an occurrence and finds the pieces of `words`, byte spans of other words of
    /// the same sentence (for example from [`context_words`](crate::engine::context_words)).
    ///
    /// Words that overlap the target, produce no pieces, or do not lie wholly inside the window
    /// a long sentence is cut to are left out.
    pub fn tokenize_with_words(&self, occurrence: &Occurrence, words: &[Range<usize>]) -> Result<TokenizedSentence> {
        let encoding = self.encode_text(occurrence.sentence())?;
        let target = self.tokenize_encoding(&encoding, occurrence)?;
        let pieces_of = |span: &Range<usize>| word_pieces(&encoding, span);
        // `tokenize` may have cut a long sentence to a window; map full positions into it.
        let shift = pieces_of(&occurrence.span()).map_or(0, |p| p.start - target.word_tokens.start);
        let (lead, trail) = special_ends(&encoding);
        let window = lead..target.ids.len() - trail;
        let target_span = occurrence.span();
        let words = words
            .iter()
            .filter(|span| span.end <= target_span.start || span.start >= target_span.end)
            .filter_map(|span| {
                let full = pieces_of(span)?;
                let pieces = full.start.checked_sub(shift)?..full.end - shift;
                (pieces.start >= window.start && pieces.end <= window.end).then(|| (span.clone(), pieces))
            })
            .collect();
        Ok(TokenizedSentence { target, words })
    }

    /// The tokenizer's encoding of a sentence, special tokens included.
    fn encode_text(&self, sentence: &str) -> Result<Encoding> {
        self.tokenizer
            .encode(sentence, true)
            .map_err(|e| Error::Tokenizer { sentence: sentence.to_owned(), reason: e.to_string() })
    }

    /// [`tokenize`](Self::tokenize) on an encoding already made by [`encode_text`](Self::encode_text).
    fn tokenize_encoding(&self, encoding: &Encoding, occurrence: &Occurrence) -> Result<TokenizedOccurrence> {
        let sentence = occurrence.sentence();
        let Some(Range { start: first, end }) = word_pieces(encoding, &occurrence.span()) else {
            return Err(Error::Tokenizer {
                sentence: sentence.to_owned(),
                reason: format!(
                    "the word {:?} produced no pieces (WordPieces or BPE tokens): is it only punctuation or invisible characters?",
                    occurrence.word()
                ),
            });
        };
        let ids = encoding.get_ids();
        // The vocabulary's spelling of each piece: a Unigram model's unknown piece carries the
        // text it replaced, not `<unk>`.
        let pieces: Vec<String> = ids[first..end]
            .iter()
            .zip(&encoding.get_tokens()[first..end])
            .map(|(&id, token)| self.tokenizer.id_to_token(id).unwrap_or_else(|| token.clone()))
            .collect();
        let mut unknown: Vec<String> =
            ids[first..end].iter().zip(&pieces).filter(|(id, _)| self.unknown_ids.contains(id)).map(|(_, p)| p.clone()).collect();
        unknown.extend(uncovered(sentence, &occurrence.span(), &encoding.get_offsets()[first..end]));
        let last = end - 1;
        let max = self.info.max_positions;
        if ids.len() <= max {
            return Ok(TokenizedOccurrence { ids: ids.to_vec(), word_tokens: first..end, pieces, unknown, windowed_from: None });
        }

        // Keep the special tokens at both ends and the window of content tokens around the word.
        let (lead, trail) = special_ends(encoding);
        let budget = max - lead - trail;
        let word_len = last + 1 - first;
        if word_len > budget {
            return Err(Error::Tokenizer {
                sentence: sentence.chars().take(80).collect(),
                reason: format!("the word alone has {word_len} pieces, more than the model's {max} positions"),
            });
        }
        let content_end = ids.len() - trail;
        // A decoder's word sees only what precedes it: keep as much of that as fits.
        let start = match self.info.causal {
            true => (last + 1).saturating_sub(budget),
            false => (first + word_len / 2).saturating_sub(budget / 2),
        };
        let start = start.clamp(lead, content_end - budget);
        let mut windowed = ids[..lead].to_vec();
        windowed.extend_from_slice(&ids[start..start + budget]);
        windowed.extend_from_slice(&ids[content_end..]);
        let shift = start - lead;
        Ok(TokenizedOccurrence {
            ids: windowed,
            word_tokens: first - shift..last + 1 - shift,
            pieces,
            unknown,
            windowed_from: Some(ids.len()),
        })
    }

    /// Runs the model on tokenized sentences (padded and masked into one batch) and pools
    /// each target word per layer.
    pub fn encode_tokenized(&self, batch: &[TokenizedOccurrence], pooling: Pooling) -> Result<Vec<LayerVectors>> {
        let sentences: Vec<TokenizedSentence> = batch.iter().cloned().map(TokenizedSentence::alone).collect();
        let refs: Vec<&TokenizedSentence> = sentences.iter().collect();
        Ok(self.encode_sentences(&refs, pooling)?.into_iter().map(|s| s.target.vectors).collect())
    }

    /// Encodes tokenized sentences in length-sorted batches and pools the target and every
    /// listed word per layer, in the input order.
    pub fn embed_all_words(&self, sentences: &[TokenizedSentence], pooling: Pooling) -> Result<Vec<SentenceVectors>> {
        self.encode(sentences.iter().cloned().map(Ok).collect(), pooling)?.into_iter().collect()
    }

    /// Encodes the sentences that tokenized in length-sorted batches, and returns every result
    /// in the input order (tokenizing failures stay in their slots).
    pub(super) fn encode(&self, tokenized: Vec<Result<TokenizedSentence>>, pooling: Pooling) -> Result<Vec<Result<SentenceVectors>>> {
        let mut order: Vec<usize> = (0..tokenized.len()).filter(|&i| tokenized[i].is_ok()).collect();
        order.sort_by_key(|&i| tokenized[i].as_ref().map_or(0, |t| t.target.ids.len()));
        let mut results: Vec<Option<SentenceVectors>> = vec![None; tokenized.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&TokenizedSentence> = chunk.iter().filter_map(|&i| tokenized[i].as_ref().ok()).collect();
            for (&i, vectors) in chunk.iter().zip(self.encode_sentences(&batch, pooling)?) {
                results[i] = Some(vectors);
            }
        }
        Ok(tokenized
            .into_iter()
            .zip(results)
            .map(|(t, r)| t.map(|_| r.expect("every tokenized sentence is in one batch")))
            .collect())
    }

    /// Each word's vectors per layer, for a batch sorted by length: row 0 is the target, rows
    /// 1.. the other words.
    ///
    /// On the CPU, a batch of enough tokens is cut into parts of about equal token counts, and
    /// each part runs its own forward pass on one of the pool's threads; a thread that finishes
    /// takes the next part, then steals steps of the others' passes. One pass shared by all
    /// threads has to meet at the end of each of its ~40 steps, and on a virtual machine whose
    /// host stops a virtual CPU now and then (8.5% of the time on the development machine), the
    /// other thread waits for it there; in parts, it works on. A sentence's vectors do not
    /// depend on the batch it comes in, so the parts give the same values as one pass.
    fn encode_sentences(&self, batch: &[&TokenizedSentence], pooling: Pooling) -> Result<Vec<SentenceVectors>> {
        let lengths: Vec<usize> = batch.iter().map(|t| t.target.ids.len()).collect();
        let threads = rayon::current_num_threads();
        let parts = match self.device.is_cpu() && threads > 1 {
            true => (PARTS_PER_THREAD * threads).min(lengths.iter().sum::<usize>() / PART_TOKENS),
            false => 1,
        };
        // Fewer than two runs (one sentence, or one that holds nearly all the tokens): one pass.
        let bounds = if parts > 1 { split_by_tokens(&lengths, parts) } else { Vec::new() };
        if bounds.len() < 3 {
            return self.encode_part(batch, pooling, true);
        }
        let results: Vec<Result<Vec<SentenceVectors>>> = bounds.par_windows(2).map(|w| self.encode_part(&batch[w[0]..w[1]], pooling, false)).collect();
        results.into_iter().try_fold(Vec::with_capacity(batch.len()), |mut all, part| {
            all.extend(part?);
            Ok(all)
        })
    }

    /// One padded forward pass over `batch`, then each word's pieces pooled (as
    /// `encode_sentences` returns them). With `team`, on the CPU, the pass's steps are shared
    /// with the pool's other threads (see `nn::team`); without, it runs on this thread, and
    /// idle threads steal its steps through rayon.
    fn encode_part(&self, batch: &[&TokenizedSentence], pooling: Pooling, team: bool) -> Result<Vec<SentenceVectors>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let n = batch.len();
        let seq = batch.iter().map(|t| t.target.ids.len()).max().unwrap_or(0);
        let mut ids = vec![self.info.pad_token_id; n * seq];
        let mut mask = vec![0u32; n * seq];
        for (b, t) in batch.iter().enumerate() {
            let len = t.target.ids.len();
            ids[b * seq..b * seq + len].copy_from_slice(&t.target.ids);
            mask[b * seq..b * seq + len].fill(1);
        }
        let ids = Tensor::from_vec(ids, (n, seq), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, seq), &self.device)?;
        // On a pool thread, with the other workers spinning beside it (see `nn::team`), each of
        // the forward pass's ~40 parallel steps is split with them at once; from outside the
        // pool, each would wake the pool and put this thread to sleep.
        let hidden = match self.device.is_cpu() && team {
            true => super::nn::team::with_team(|| self.model.forward(&ids, &mask))?,
            false => self.model.forward(&ids, &mask)?,
        };
        // The pieces pooled for row r of sentence t, and the weight of each.
        let pieces = |t: &TokenizedSentence, r: usize| -> (Range<usize>, f32) {
            let all = if r == 0 { &t.target.word_tokens } else { &t.words[r - 1].1 };
            let pieces = match pooling {
                Pooling::Mean => all.clone(),
                Pooling::First => all.start..all.start + 1,
                Pooling::Last => all.end - 1..all.end,
            };
            let weight = 1.0 / pieces.len() as f32;
            (pieces, weight)
        };
        let sentence = |t: &TokenizedSentence, vectors: &dyn Fn(usize) -> LayerVectors| SentenceVectors {
            target: Embedding {
                vectors: vectors(0),
                pieces: t.target.pieces.clone(),
                unknown: t.target.unknown.clone(),
                windowed_from: t.target.windowed_from,
            },
            words: t.words.iter().enumerate().map(|(w, (span, _))| (span.clone(), vectors(w + 1))).collect(),
        };
        let guards: Vec<_> = hidden.iter().map(Tensor::storage_and_layout).collect();
        if let Some(states) = guards.iter().map(|(storage, layout)| cpu_f32(storage, layout)).collect::<Option<Vec<&[f32]>>>() {
            // On the CPU, each vector is summed from its few pieces' rows, in parallel: a product
            // with a [batch, words, seq] weight tensor of mostly zeros does ~20 times the work,
            // on one thread, and its result was then copied out twice.
            let width = hidden[0].dim(2)?;
            return Ok(batch
                .par_iter()
                .enumerate()
                .map(|(b, t)| {
                    let vectors = |r: usize| {
                        let (pieces, weight) = pieces(t, r);
                        let rows = &pieces.clone().map(|p| (b * seq + p) * width).collect::<Vec<_>>();
                        LayerVectors::new(states.iter().map(|state| pool_rows(state, rows, weight, width)).collect())
                    };
                    sentence(t, &vectors)
                })
                .collect());
        }
        drop(guards);
        let rows = 1 + batch.iter().map(|t| t.words.len()).max().unwrap_or(0);
        let mut weights = vec![0f32; n * rows * seq];
        for (b, t) in batch.iter().enumerate() {
            for r in 0..=t.words.len() {
                let (pieces, weight) = pieces(t, r);
                let row = (b * rows + r) * seq;
                weights[row + pieces.start..row + pieces.end].fill(weight);
            }
        }
        let weights = Tensor::from_vec(weights, (n, rows, seq), &self.device)?;
        // pooled[layer][b][row] = vector
        let pooled = hidden.iter().map(|state| weights.matmul(state)?.to_vec3::<f32>()).collect::<Result<Vec<_>, _>>()?;
        Ok(batch
            .iter()
            .enumerate()
            .map(|(b, t)| sentence(t, &|r: usize| LayerVectors::new(pooled.iter().map(|layer| layer[b][r].clone()).collect())))
            .collect())
    }
}

/// Cuts sentences of these token counts, in order, into at most `parts` non-empty runs of about
/// equal token counts: the runs' boundaries, from 0 to `lengths.len()`.
fn split_by_tokens(lengths: &[usize], parts: usize) -> Vec<usize> {
    let total: usize = lengths.iter().sum();
    let mut bounds = vec![0];
    let mut sum = 0;
    for (i, &length) in lengths.iter().enumerate() {
        sum += length;
        // A cut once the runs so far hold their share of the tokens, and never after the last.
        if bounds.len() < parts && i + 1 < lengths.len() && sum * parts >= total * bounds.len() {
            bounds.push(i + 1);
        }
    }
    bounds.push(lengths.len());
    bounds
}

/// A hidden state's values when it is a contiguous f32 tensor in the CPU's memory.
fn cpu_f32<'a>(storage: &'a candle_core::Storage, layout: &candle_core::Layout) -> Option<&'a [f32]> {
    let candle_core::Storage::Cpu(cpu) = storage else { return None };
    let (start, end) = layout.contiguous_offsets()?;
    Some(&cpu.as_slice::<f32>().ok()?[start..end])
}

/// `Σ weight · state[row..row + width]` over `rows` (offsets into `state`), as candle's matrix
/// product with the weights sums it on CPUs with FMA: fused multiply-adds in row order from
/// zero (its zero weights add exact zeros), so the vectors did not change.
fn pool_rows(state: &[f32], rows: &[usize], weight: f32, width: usize) -> Vec<f32> {
    let mut out = vec![0f32; width];
    for &row in rows {
        pool_row_dispatch(&mut out, &state[row..row + width], weight);
    }
    out
}

#[inline(always)]
fn pool_row(out: &mut [f32], row: &[f32], weight: f32) {
    for (o, &x) in out.iter_mut().zip(row) {
        *o = weight.mul_add(x, *o);
    }
}

crate::simd::multiversion!(pool_row_dispatch(out: &mut [f32], row: &[f32], weight: f32) => pool_row);

/// How many special tokens stand at the start and at the end of an encoding.
fn special_ends(encoding: &Encoding) -> (usize, usize) {
    let special = encoding.get_special_tokens_mask();
    let lead = special.iter().take_while(|&&s| s == 1).count();
    let trail = special.iter().rev().take_while(|&&s| s == 1).count();
    (lead, trail)
}

/// Positions of the (non-special) pieces that overlap a byte span, if any.
fn word_pieces(encoding: &Encoding, span: &Range<usize>) -> Option<Range<usize>> {
    let special = encoding.get_special_tokens_mask();
    let mut pieces = encoding
        .get_offsets()
        .iter()
        .enumerate()
        .filter(|&(i, &(start, end))| special[i] == 0 && start < span.end && end > span.start)
        .map(|(i, _)| i);
    let first = pieces.next()?;
    Some(first..pieces.next_back().unwrap_or(first) + 1)
}

/// The parts of a word that no piece stands for: text a tokenizer without an unknown token (or
/// byte fallback) drops silently. Whitespace, combining marks and invisible format characters,
/// which normalizers remove on purpose, do not count.
fn uncovered(sentence: &str, span: &Range<usize>, offsets: &[(usize, usize)]) -> Vec<String> {
    let invisible = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || unicode_normalization::char::is_combining_mark(c)
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
    };
    let mut gaps: Vec<String> = Vec::new();
    let mut in_gap = false;
    for (i, c) in sentence[span.clone()].char_indices() {
        let at = span.start + i;
        let dropped = !invisible(c) && !offsets.iter().any(|&(start, end)| start <= at && at < end);
        match (dropped, in_gap) {
            (true, true) => gaps.last_mut().expect("a gap is open").push(c),
            (true, false) => gaps.push(c.to_string()),
            (false, _) => {}
        }
        in_gap = dropped;
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::{TokenizedSentence, split_by_tokens, uncovered};

    /// Parts of a batch, each its own forward pass, give every word the vectors that one pass
    /// over the whole batch gives it, bit for bit.
    #[test]
    fn parts_give_the_vectors_of_one_shared_pass() {
        use crate::engine::{Pooling, context_words};
        use crate::{ContextualEncoder, Occurrence};

        let bert = ContextualEncoder::load_default().expect("the embedded model loads");
        let filler = ["", "old ", "muddy old ", "quiet, muddy old ", "long and quiet, muddy old "];
        let sentences: Vec<String> = (0..24).map(|i| format!("We sat on the {}bank of the river {}.", filler[i % 5], "and talked ".repeat(i % 7))).collect();
        let mut tokenized: Vec<TokenizedSentence> = sentences
            .iter()
            .map(|s| {
                let occurrence = Occurrence::find("bank", s).unwrap();
                bert.tokenize_with_words(&occurrence, &context_words(&occurrence)).unwrap()
            })
            .collect();
        tokenized.sort_by_key(|t| t.target.ids.len());
        let batch: Vec<&TokenizedSentence> = tokenized.iter().collect();
        let tokens: usize = batch.iter().map(|t| t.target.ids.len()).sum();
        assert!(tokens >= 4 * super::PART_TOKENS, "{tokens} tokens: too few for four parts");
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let (parts, shared) = pool.install(|| (bert.encode_sentences(&batch, Pooling::Mean).unwrap(), bert.encode_part(&batch, Pooling::Mean, true).unwrap()));
        assert_eq!(parts.len(), batch.len());
        let bits = |v: &crate::engine::LayerVectors| v.layers().iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (p, s) in parts.iter().zip(&shared) {
            assert_eq!(p.target.pieces, s.target.pieces);
            assert!(bits(&p.target.vectors) == bits(&s.target.vectors), "the target's vectors differ");
            assert_eq!(p.words.len(), s.words.len());
            for ((span, p), (other, s)) in p.words.iter().zip(&s.words) {
                assert_eq!(span, other);
                assert!(bits(p) == bits(s), "the vectors of the word at {span:?} differ");
            }
        }
    }

    #[test]
    fn a_batch_is_cut_into_runs_of_about_equal_token_counts() {
        // Sorted lengths, as `encode` batches them.
        let lengths = [3, 5, 8, 9, 9, 10, 12, 15, 20, 31];
        let total: usize = lengths.iter().sum();
        for parts in 1..=12 {
            let bounds = split_by_tokens(&lengths, parts);
            assert_eq!((bounds[0], bounds[bounds.len() - 1]), (0, lengths.len()), "{parts} parts: {bounds:?}");
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{parts} parts, one empty: {bounds:?}");
            assert!(bounds.len() - 1 <= parts.min(lengths.len()), "{parts} parts: {bounds:?}");
            // No cut before the runs so far hold their shares of the tokens, and no run holds a
            // whole share before its last sentence.
            let mut before = 0;
            for (k, w) in bounds.windows(2).enumerate() {
                let run: usize = lengths[w[0]..w[1]].iter().sum();
                before += run;
                assert!(w[1] == lengths.len() || before * parts >= total * (k + 1), "{parts} parts: {bounds:?}");
                assert!((run - lengths[w[1] - 1]) * parts < total, "{parts} parts: {bounds:?}");
            }
        }
        assert_eq!(split_by_tokens(&[], 4), [0, 0]);
        assert_eq!(split_by_tokens(&[7], 4), [0, 1]);
        assert_eq!(split_by_tokens(&[4, 4, 4, 4], 2), [0, 2, 4]);
    }

    #[test]
    fn text_no_piece_stands_for_is_reported() {
        let sentence = "a x🦀y b";
        // Pieces for "x" and "y" only: the crab between them was dropped.
        assert_eq!(uncovered(sentence, &(2..8), &[(2, 3), (7, 8)]), ["🦀"]);
        assert_eq!(uncovered(sentence, &(2..8), &[(2, 8)]), Vec::<String>::new());
        // Several byte pieces of one character, each with the character's offsets.
        assert_eq!(uncovered(sentence, &(3..7), &[(3, 7), (3, 7), (3, 7), (3, 7)]), Vec::<String>::new());
        // A removed combining accent is not text the word lost.
        let accent = "cafe\u{301}";
        assert_eq!(uncovered(accent, &(0..accent.len()), &[(0, 4)]), Vec::<String>::new());
        assert_eq!(uncovered("xyz", &(0..3), &[]), ["xyz"]);
    }
}
