//! Evaluation against published test sets: word similarity ([`wordsim`]), analogies
//! ([`analogy`]) and Word-in-Context ([`wic`]).
//!
//! The static figures follow gensim's `evaluate_word_pairs` / `evaluate_word_analogies`
//! exactly (same vocabulary restriction, same case folding, same skipping of unknown words), so
//! the numbers can be placed beside the literature's. The contextual figures put a BERT model
//! through the same test sets layer by layer.

pub mod analogy;
pub mod deltas;
mod stats;
pub mod wic;
pub mod wordsim;
pub mod wsd;

use std::collections::HashMap;
use std::path::Path;

pub use stats::{average_ranks, pearson, spearman};

use crate::error::{Error, Result};

/// A vocabulary as gensim's evaluations see it: the first `restrict` words of the file (the most
/// frequent ones, in the usual frequency order), matched case-insensitively.
///
/// gensim upper-cases both the test words and the vocabulary (`case_insensitive=True`); when
/// several entries fold to the same form ("Apple", "apple"), the first one in file order wins.
/// This type does the same, so `get("PARIS")`, `get("Paris")` and `get("paris")` all find the
/// row of the most frequent spelling among the first `restrict` words.
#[derive(Clone, Debug)]
pub struct EvalVocab {
    rows: HashMap<String, usize>,
    len: usize,
}

impl EvalVocab {
    /// Builds the folded map over `words[..restrict]` (all words when `restrict` is `None`).
    pub fn new(words: &[String], restrict: Option<usize>) -> Self {
        let len = restrict.map_or(words.len(), |r| r.min(words.len()));
        let mut rows = HashMap::with_capacity(len);
        for (index, word) in words[..len].iter().enumerate() {
            rows.entry(fold(word)).or_insert(index);
        }
        EvalVocab { rows, len }
    }

    /// The row of `word` (any case), if it is among the searched words.
    pub fn get(&self, word: &str) -> Option<usize> {
        self.rows.get(&fold(word)).copied()
    }

    /// How many rows are searched (the `restrict` given, capped at the vocabulary size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no word is searched.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The case-folded form gensim compares (Python's `str.upper()`).
pub fn fold(word: &str) -> String {
    word.to_uppercase()
}

/// The lines of a UTF-8 text file, numbered from 1, without line endings.
///
/// Reads the whole file: test sets are small, and a non-UTF-8 line is reported with its number.
fn read_lines(path: &Path, what: &str) -> Result<Vec<(usize, String)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::InvalidArgument(format!("cannot read the {what} {}: {e}", path.display())))?;
    let mut lines = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw)
            .map_err(|_| bad_line(path, index + 1, "is not UTF-8 text (convert the file to UTF-8, e.g. with iconv)"))?;
        lines.push((index + 1, text.trim_start_matches('\u{feff}').to_owned()));
    }
    if lines.last().is_some_and(|(_, l)| l.is_empty()) {
        lines.pop();
    }
    Ok(lines)
}

/// An error about one line of an input file: `FILE line N: reason`.
fn bad_line(path: &Path, line: usize, reason: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{} line {line}: {reason}", path.display()))
}

/// The file name shown in results (the last path component).
fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_folds_case_and_keeps_the_first_spelling() {
        let words: Vec<String> = ["the", "Apple", "apple", "ß", "rare"].iter().map(|s| s.to_string()).collect();
        let vocab = EvalVocab::new(&words, Some(4));
        assert_eq!(vocab.get("APPLE"), Some(1));
        assert_eq!(vocab.get("apple"), Some(1));
        assert_eq!(vocab.get("ss"), Some(3), "Python's upper() maps ß to SS, and so does Rust's");
        assert_eq!(vocab.get("rare"), None, "outside the first 4 words");
        assert_eq!(vocab.len(), 4);
        assert_eq!(EvalVocab::new(&words, Some(10)).len(), 5);
        assert_eq!(EvalVocab::new(&words, None).get("Rare"), Some(4));
    }
}
