//! Search results and the score order they are ranked by.

use serde::Serialize;

/// A word and its cosine similarity to a query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Neighbor {
    /// The neighbouring word.
    pub word: String,
    /// Cosine similarity to the query.
    pub cosine: f32,
}

/// A row's score and index, ordered totally so that it can live in a heap: NaN sorts lowest,
/// and of equal scores the lower row (the more frequent word) ranks higher, as in gensim.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Score(pub(crate) f32, pub(crate) usize);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: &Score| if s.0.is_nan() { f32::NEG_INFINITY } else { s.0 };
        key(self).total_cmp(&key(other)).then(other.1.cmp(&self.1))
    }
}
