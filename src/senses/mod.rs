//! Senses as a result: discover them without labels ([`cluster`]), name them from WordNet
//! ([`wordnet`], [`SenseInventory`]) and assign them by nearest neighbour.
//!
//! Naming follows the supervised 1-NN idea of Loureiro et al. (2021, "Analysis and Evaluation of
//! Language Models for Word Sense Disambiguation"): each WordNet synset of the word becomes one
//! or more *sense occurrences* — the word in the synset's example sentences, or, for a synset
//! without a usable example, the word followed by its definition (`"bank: sloping land ..."`) —
//! embedded with the same engine and layer as the user's sentences. A user occurrence gets the
//! synset of its nearest sense occurrence ([`Assign::Nearest`]) or of the nearest synset
//! centroid ([`Assign::Centroid`]), by cosine.

pub mod cluster;
pub mod wordnet;

use serde::Serialize;

use crate::analysis::cosine;
use crate::analysis::postprocess::Postprocess;
use crate::engine::{Embedder, LayerSelection};
use crate::error::{Error, Result};
use crate::occurrence::Occurrence;
pub use wordnet::{Synset, WordNet};

/// How a vector is matched to labelled vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Assign {
    /// The label of the most similar labelled vector (1-NN).
    #[default]
    Nearest,
    /// The label whose centroid (mean of its vectors) is most similar.
    Centroid,
}

impl std::str::FromStr for Assign {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nearest" | "1nn" | "nn" => Ok(Assign::Nearest),
            "centroid" => Ok(Assign::Centroid),
            _ => Err(Error::InvalidArgument(format!("unknown assignment {s:?}: expected nearest or centroid"))),
        }
    }
}

/// Labelled vectors to match against: 1-NN or nearest centroid by cosine.
#[derive(Clone, Debug)]
pub struct NearestSense {
    vectors: Vec<Vec<f32>>,
    labels: Vec<usize>,
    centroids: Vec<(usize, Vec<f32>)>,
}

impl NearestSense {
    /// Keeps `vectors` with their `labels` (any `usize` ids) and computes one centroid per label
    /// (the mean of its unit-length vectors, so long vectors do not dominate).
    pub fn new(vectors: Vec<Vec<f32>>, labels: Vec<usize>) -> Self {
        assert_eq!(vectors.len(), labels.len());
        let mut ids: Vec<usize> = labels.clone();
        ids.sort_unstable();
        ids.dedup();
        let centroids = ids
            .into_iter()
            .map(|id| {
                let d = vectors.first().map_or(0, Vec::len);
                let mut sum = vec![0f32; d];
                for (v, _) in vectors.iter().zip(&labels).filter(|&(_, &l)| l == id) {
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    if norm > 0.0 {
                        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x / norm);
                    }
                }
                (id, sum)
            })
            .collect();
        NearestSense { vectors, labels, centroids }
    }

    /// The best label for `query` and its cosine; `None` when there is nothing to match (or
    /// every cosine is undefined). Ties go to the first labelled vector (or lowest label).
    pub fn assign(&self, query: &[f32], how: Assign) -> Option<(usize, f32)> {
        let candidates: Box<dyn Iterator<Item = (usize, &Vec<f32>)>> = match how {
            Assign::Nearest => Box::new(self.labels.iter().copied().zip(&self.vectors)),
            Assign::Centroid => Box::new(self.centroids.iter().map(|(l, v)| (*l, v))),
        };
        let mut best: Option<(usize, f32)> = None;
        for (label, v) in candidates {
            let c = cosine(query, v);
            if !c.is_nan() && best.is_none_or(|(_, b)| c > b) {
                best = Some((label, c));
            }
        }
        best
    }
}

/// Where a sense's occurrences come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SenseSource {
    /// The synset's example sentences that contain the word.
    Examples,
    /// `word: definition`, for a synset with no example containing the word.
    Gloss,
}

/// The occurrences that stand for one synset.
#[derive(Clone, Debug, PartialEq)]
pub struct SenseOccurrences {
    /// The synset.
    pub synset: Synset,
    /// Where [`occurrences`](Self::occurrences) come from.
    pub source: SenseSource,
    /// The word in the examples, or in the `word: definition` sentence.
    pub occurrences: Vec<Occurrence>,
}

/// A word's WordNet synsets as occurrences to embed.
#[derive(Clone, Debug, PartialEq)]
pub struct SenseInventory {
    /// The word.
    pub word: String,
    /// One entry per synset, in WordNet's order.
    pub senses: Vec<SenseOccurrences>,
}

impl SenseInventory {
    /// Builds the inventory of `word` from its synsets: each example sentence in which the word
    /// (or a regular inflection of it: +s, +es, +ed, +d, +ing, e->ing) is found becomes an
    /// occurrence; a synset with none gets the single sentence `word: definition`.
    pub fn new(word: &str, synsets: Vec<Synset>) -> Result<Self> {
        if synsets.is_empty() {
            return Err(Error::InvalidArgument(format!("WordNet has no synsets for {word:?} (give the word's base form, e.g. \"bank\" for \"banks\")")));
        }
        let forms = inflections(word);
        let senses = synsets
            .into_iter()
            .map(|synset| {
                let from_examples: Vec<Occurrence> = synset
                    .examples
                    .iter()
                    .filter_map(|e| forms.iter().find_map(|f| Occurrence::find(f, e).ok()))
                    .collect();
                if from_examples.is_empty() {
                    let sentence = format!("{word}: {}", synset.definition);
                    let occurrence = Occurrence::find(word, &sentence)?;
                    Ok(SenseOccurrences { synset, source: SenseSource::Gloss, occurrences: vec![occurrence] })
                } else {
                    Ok(SenseOccurrences { synset, source: SenseSource::Examples, occurrences: from_examples })
                }
            })
            .collect::<Result<_>>()?;
        Ok(SenseInventory { word: word.to_owned(), senses })
    }

    /// How many synsets are represented by example sentences (the rest by their definition).
    pub fn with_examples(&self) -> usize {
        self.senses.iter().filter(|s| s.source == SenseSource::Examples).count()
    }
}

/// The word and its regular inflections, tried in this order when looking for it in examples.
fn inflections(word: &str) -> Vec<String> {
    let mut forms = vec![word.to_owned()];
    for suffix in ["s", "es", "ed", "d", "ing"] {
        forms.push(format!("{word}{suffix}"));
    }
    if let Some(stem) = word.strip_suffix('e') {
        forms.push(format!("{stem}ing"));
    }
    forms
}

/// The synset guessed for one occurrence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SenseGuess {
    /// The sentence.
    pub sentence: String,
    /// The synset's name (`bank.n.01`).
    pub synset: String,
    /// The synset's offset id (`09213565-n`).
    pub id: String,
    /// Its definition.
    pub gloss: String,
    /// Cosine to the nearest sense occurrence (or centroid).
    pub cosine: f32,
}

/// Guesses the synset of each of `occurrences` from `inventory`, comparing the vectors that
/// `selection` takes from `engine`, after `postprocess` fitted on the sense and user
/// occurrences together.
pub fn guess_senses(
    engine: &dyn Embedder,
    selection: &LayerSelection,
    postprocess: Postprocess,
    inventory: &SenseInventory,
    occurrences: &[Occurrence],
    how: Assign,
) -> Result<Vec<SenseGuess>> {
    let sense_occurrences: Vec<Occurrence> = inventory.senses.iter().flat_map(|s| s.occurrences.iter().cloned()).collect();
    let labels: Vec<usize> =
        inventory.senses.iter().enumerate().flat_map(|(i, s)| std::iter::repeat_n(i, s.occurrences.len())).collect();
    let select = |occ: &[Occurrence]| -> Result<Vec<Vec<f32>>> {
        engine.embed_vectors(occ, engine.default_pooling())?.iter().map(|v| v.select(selection)).collect()
    };
    let sense_vectors = select(&sense_occurrences)?;
    let user_vectors = select(occurrences)?;
    let all: Vec<&Vec<f32>> = sense_vectors.iter().chain(&user_vectors).collect();
    let fitted = postprocess.fit(&all)?;
    let matcher = NearestSense::new(fitted.apply_all(&sense_vectors), labels);
    occurrences
        .iter()
        .zip(fitted.apply_all(&user_vectors))
        .map(|(occ, v)| {
            let (label, cosine) = matcher
                .assign(&v, how)
                .ok_or_else(|| Error::InvalidArgument(format!("the vector of {:?} in {:?} is zero: no sense can be matched", occ.word(), occ.sentence())))?;
            let synset = &inventory.senses[label].synset;
            Ok(SenseGuess { sentence: occ.sentence().to_owned(), synset: synset.name.clone(), id: synset.id(), gloss: synset.definition.clone(), cosine })
        })
        .collect()
}
