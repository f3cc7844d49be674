//! The library's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in vecshift's library code.
///
/// Each variant names the thing that failed (a file, a word, a model) and, where
/// there is one, how to fix it, so that the binary can print it as one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target word does not occur in the sentence.
    #[error("the word {word:?} does not occur as a whole word in the sentence {}", clip(.sentence))]
    WordNotInSentence {
        /// The word that was searched for.
        word: String,
        /// The sentence that was searched.
        sentence: String,
    },

    /// The word occurs in the sentence, but fewer times than asked for.
    #[error("the word {word:?} occurs {found} time(s) in {}, so occurrence {asked} does not exist", clip(.sentence))]
    OccurrenceOutOfRange {
        /// The word that was searched for.
        word: String,
        /// The sentence that was searched.
        sentence: String,
        /// The 1-based occurrence that was asked for.
        asked: usize,
        /// How many occurrences there are.
        found: usize,
    },

    /// An explicit span or token index does not fit the sentence.
    #[error("invalid position in {}: {reason}", clip(.sentence))]
    InvalidSpan {
        /// The sentence.
        sentence: String,
        /// What is wrong with the span or token index.
        reason: String,
    },

    /// A word has no vector in a static model (not even through its lowercase form or subwords).
    #[error("the word {word:?} is not in the vocabulary of {model} (nor its lowercase form{subwords})", subwords = if *.has_subwords { ", nor any of its subwords" } else { "; this format has no subwords" })]
    UnknownWord {
        /// The word that was looked up.
        word: String,
        /// The model's name.
        model: String,
        /// Whether the model could have composed a vector from subwords.
        has_subwords: bool,
    },

    /// A word-vector file could not be read.
    #[error("cannot read word vectors from {path}: {reason}")]
    VectorFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, and how to fix it where that is known.
        reason: String,
    },

    /// A BERT checkpoint could not be loaded or run.
    #[error("cannot use the BERT model at {path}: {reason}")]
    Model {
        /// The model directory (or hub id).
        path: PathBuf,
        /// What is wrong with it, and how to fix it where that is known.
        reason: String,
    },

    /// A Hugging Face model id could not be resolved to local files.
    #[error("the model {model} is missing {missing} in the Hugging Face cache {cache}{reason}; {hint}", missing = .missing.join(", "), reason = .reason.as_deref().map(|r| format!(" and could not be downloaded ({r})")).unwrap_or_default())]
    MissingModelFiles {
        /// The hub id (with revision).
        model: String,
        /// The files that are not in the cache.
        missing: Vec<String>,
        /// The cache directory that was searched.
        cache: PathBuf,
        /// Why the download failed, when one was tried.
        reason: Option<String>,
        /// How to supply the files.
        hint: String,
    },

    /// Tokenization failed.
    #[error("tokenizer error on {}: {reason}", clip(.sentence))]
    Tokenizer {
        /// The sentence being tokenized.
        sentence: String,
        /// The tokenizer's message.
        reason: String,
    },

    /// A tensor computation failed.
    #[error("tensor computation failed: {}", candle_message(.0))]
    Tensor(#[from] candle_core::Error),

    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A partial report (one shard's state) cannot be read or merged.
    #[error("{path}: {reason}")]
    Partial {
        /// The partial report's file.
        path: PathBuf,
        /// What is wrong with it, and how to fix it.
        reason: String,
    },

    /// An argument is outside what the operation supports.
    #[error("{0}")]
    InvalidArgument(String),
}

/// Shorthand for results with vecshift's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest sentence quoted whole in a message; a longer one is cut in the middle, so that a
/// 1 MB line still gives a readable one-line error.
const QUOTED_CHARS: usize = 120;

/// `sentence` quoted (escaped, so it stays on one line), its middle cut when it is long.
fn clip(sentence: &str) -> String {
    let count = sentence.chars().count();
    if count <= QUOTED_CHARS {
        return format!("{sentence:?}");
    }
    let head: String = sentence.chars().take(QUOTED_CHARS / 2).collect();
    let tail: String = sentence.chars().skip(count - QUOTED_CHARS / 2).collect();
    format!("{head:?}...{tail:?} ({count} characters)")
}

/// A candle error's message on one line: candle appends a captured backtrace (when
/// `RUST_BACKTRACE` is set) and puts context on lines of its own.
pub(crate) fn candle_message(error: &candle_core::Error) -> String {
    match error {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => format!("{context}: {}", candle_message(inner)),
        candle_core::Error::WithPath { inner, path } => format!("{}: {}", path.display(), candle_message(inner)),
        other => other.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; "),
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sentences_are_cut_in_messages() {
        let sentence = format!("{} bank {}", "a ".repeat(500_000), "b ".repeat(500_000));
        let message = Error::WordNotInSentence { word: "x".into(), sentence }.to_string();
        assert!(message.len() < 400 && message.contains("(2000006 characters)"), "{message}");
        let short = Error::WordNotInSentence { word: "x".into(), sentence: "a\nb".into() }.to_string();
        assert!(short.ends_with("\"a\\nb\""), "{short}");
    }

    #[test]
    fn candle_errors_lose_their_backtrace() {
        let inner = candle_core::Error::Msg("shape mismatch".into());
        let error = candle_core::Error::WithBacktrace { inner: Box::new(inner), backtrace: Box::new(std::backtrace::Backtrace::force_capture()) };
        assert_eq!(Error::from(error).to_string(), "tensor computation failed: shape mismatch");
    }
}
