//! Analogy accuracy (3CosAdd) on files in the format of word2vec's questions-words.txt.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use super::{EvalVocab, bad_line, display_name, fold, read_lines};
use crate::error::{Error, Result};
use crate::static_vectors::StaticEngine;

/// gensim's default search space: the 300,000 most frequent words.
pub const DEFAULT_RESTRICT_VOCAB: usize = 300_000;

/// How many answers gensim asks `most_similar` for before skipping case variants of the
/// question's own words.
const CANDIDATES: usize = 5;

/// One question: `a` is to `b` as `c` is to `d`.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalogyQuestion {
    /// `a`, `b`, `c` and the expected answer `d`, as written in the file.
    pub words: [String; 4],
    /// Line number in the file (from 1).
    pub line: usize,
}

/// A section of questions (`: capital-common-countries` and the lines after it).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalogySection {
    /// The name after the colon.
    pub name: String,
    /// The section's questions, in file order.
    pub questions: Vec<AnalogyQuestion>,
}

impl AnalogySection {
    /// Whether the section tests syntax: questions-words.txt names those sections `gram*`
    /// (`gram1-adjective-to-adverb` ... `gram9-plural-verbs`); the others are semantic.
    pub fn is_syntactic(&self) -> bool {
        self.name.starts_with("gram")
    }
}

/// The questions of one analogy file.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalogySet {
    /// The file's name (shown in results).
    pub file: String,
    /// The sections, in file order.
    pub sections: Vec<AnalogySection>,
}

impl AnalogySet {
    /// Reads a questions-words.txt style file: `: name` starts a section, every other non-empty
    /// line is four words separated by whitespace. A question before the first section, or a
    /// line that is not four words, is an error naming the line.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut sections: Vec<AnalogySection> = Vec::new();
        for (line, text) in read_lines(path, "analogy file")? {
            if let Some(name) = text.strip_prefix(':') {
                // gensim takes `line.lstrip(': ').strip()`.
                let name = name.trim_start_matches([':', ' ']).trim().to_owned();
                sections.push(AnalogySection { name, questions: Vec::new() });
                continue;
            }
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            let Some(section) = sections.last_mut() else {
                return Err(bad_line(path, line, "a question comes before the first section line (\": name\")"));
            };
            let Ok(words) = <[&str; 4]>::try_from(words.as_slice()) else {
                return Err(bad_line(path, line, format!("expected four words \"a b c d\" (a is to b as c is to d), found {}", words.len())));
            };
            section.questions.push(AnalogyQuestion { words: words.map(str::to_owned), line });
        }
        if sections.iter().all(|s| s.questions.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "{} has no analogy questions (expected \": section\" lines followed by lines of four words)",
                path.display()
            )));
        }
        Ok(AnalogySet { file: display_name(path), sections })
    }

    /// Number of questions in all sections.
    pub fn len(&self) -> usize {
        self.sections.iter().map(|s| s.questions.len()).sum()
    }

    /// Whether the file has no questions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Correct answers among the questions attempted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Questions answered correctly.
    pub correct: usize,
    /// Questions whose four words are all in the searched vocabulary.
    pub attempted: usize,
    /// `correct / attempted`; `null` when nothing was attempted.
    pub accuracy: Option<f64>,
}

impl Accuracy {
    fn new(correct: usize, attempted: usize) -> Self {
        Accuracy { correct, attempted, accuracy: (attempted > 0).then(|| correct as f64 / attempted as f64) }
    }

    fn sum<'a>(parts: impl Iterator<Item = &'a Accuracy>) -> Self {
        let (correct, attempted) = parts.fold((0, 0), |(c, a), p| (c + p.correct, a + p.attempted));
        Accuracy::new(correct, attempted)
    }
}

/// One section's accuracy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SectionAccuracy {
    /// The section's name.
    pub name: String,
    /// Its accuracy.
    #[serde(flatten)]
    pub score: Accuracy,
}

/// The result for one analogy file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalogyResult {
    /// The file's name.
    pub file: String,
    /// The number of words searched (`--restrict-vocab`, capped at the vocabulary size).
    pub restrict_vocab: usize,
    /// Questions in the file.
    pub questions: usize,
    /// Questions skipped because a word is outside the searched vocabulary.
    pub oov: usize,
    /// Per section, in file order.
    pub sections: Vec<SectionAccuracy>,
    /// All sections not named `gram*`.
    pub semantic: Accuracy,
    /// All sections named `gram*`.
    pub syntactic: Accuracy,
    /// All sections.
    pub total: Accuracy,
}

/// 3CosAdd accuracy exactly as gensim's `evaluate_word_analogies` (default settings) computes it.
///
/// The vocabulary is the first `restrict_vocab` words, matched case-insensitively (see
/// [`EvalVocab`]); a question with a word outside it is skipped (not attempted). The answer is
/// the word maximising the cosine to `unit(b) - unit(a) + unit(c)` among those words, the
/// question's own words excluded, and so are (like gensim, among its five best candidates) other
/// spellings of them; it is correct when it equals `d` ignoring case. All questions are
/// answered together by [`StaticEngine::nearest_batch`].
pub fn evaluate(engine: &StaticEngine, set: &AnalogySet, restrict_vocab: usize) -> AnalogyResult {
    let vocab = EvalVocab::new(engine.words(), Some(restrict_vocab));
    let storage = engine.matrix();

    let mut asked = Vec::new(); // (section, [row a, b, c], folded words)
    let mut queries = Vec::new();
    let mut exclude = Vec::new();
    for (s, section) in set.sections.iter().enumerate() {
        for q in &section.questions {
            let rows: Option<Vec<usize>> = q.words.iter().map(|w| vocab.get(w)).collect();
            let Some(rows) = rows else { continue };
            let (a, b, c) = (storage.row(rows[0]), storage.row(rows[1]), storage.row(rows[2]));
            queries.push((&b - &a + c).to_vec());
            exclude.push(rows[..3].to_vec());
            asked.push((s, q.words.clone().map(|w| fold(&w))));
        }
    }
    let answers = engine.nearest_batch(&queries, CANDIDATES, &exclude, Some(vocab.len()));

    let mut scores = vec![(0, 0); set.sections.len()];
    for ((s, folded), candidates) in asked.iter().zip(&answers) {
        let ignore: HashSet<&str> = folded[..3].iter().map(String::as_str).collect();
        // gensim takes the first candidate that is not a spelling of a question word, else the last one.
        let mut predicted = None;
        for &(row, _) in candidates {
            let word = fold(&engine.words()[row]);
            let stop = !ignore.contains(word.as_str());
            predicted = Some(word);
            if stop {
                break;
            }
        }
        scores[*s].1 += 1;
        if predicted.as_deref() == Some(folded[3].as_str()) {
            scores[*s].0 += 1;
        }
    }
    let sections: Vec<SectionAccuracy> = set
        .sections
        .iter()
        .zip(&scores)
        .map(|(section, &(correct, attempted))| SectionAccuracy { name: section.name.clone(), score: Accuracy::new(correct, attempted) })
        .collect();
    let part = |syntactic: bool| {
        Accuracy::sum(set.sections.iter().zip(&sections).filter(|(s, _)| s.is_syntactic() == syntactic).map(|(_, a)| &a.score))
    };
    AnalogyResult {
        file: set.file.clone(),
        restrict_vocab: vocab.len(),
        questions: set.len(),
        oov: set.len() - asked.len(),
        semantic: part(false),
        syntactic: part(true),
        total: Accuracy::sum(sections.iter().map(|s| &s.score)),
        sections,
    }
}
