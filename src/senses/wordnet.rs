//! Reading the WordNet 3.x database files (`index.noun`, `data.noun`, ... as Princeton ships them
//! and Debian's `wordnet-base` installs them in `/usr/share/wordnet`).
//!
//! Only what naming senses needs is read: a word's synsets, in WordNet's order (nouns, verbs,
//! adjectives, adverbs; within each, the index's order, most frequent sense first), with their
//! lemmas, definition and example sentences. A synset is named as NLTK names it,
//! `lemma.pos.NN`: its first lemma, its part of speech and its sense number among that lemma's
//! synsets (so the second synset of "bank" is `depository_financial_institution.n.01`; an
//! adjective satellite, `s`, is numbered among the lemma's satellites, as NLTK 3.9 and later do).
//!
//! A data file line is looked up by its byte offset, as in the original files; when the line is
//! not at that offset (an extract that keeps only some lines, such as the one in `data/wordnet`)
//! the file is searched for the line that starts with the offset.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::{Error, Result};

/// The parts of speech, in the order their synsets are listed, with their file suffixes.
const POS: [(char, &str); 4] = [('n', "noun"), ('v', "verb"), ('a', "adj"), ('r', "adv")];

/// One synset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Synset {
    /// NLTK-style name, e.g. `bank.n.01`.
    pub name: String,
    /// The byte offset in the data file, WordNet's identifier of the synset within its part of speech.
    pub offset: u32,
    /// Part of speech: `n`, `v`, `a`, `s` (adjective satellite) or `r`.
    pub pos: char,
    /// The lemmas (multi-word ones with `_`), in WordNet's order.
    pub lemmas: Vec<String>,
    /// The definition: the gloss without its examples.
    pub definition: String,
    /// The example sentences: the quoted parts of the gloss.
    pub examples: Vec<String>,
}

impl Synset {
    /// The identifier with the offset, as WordNet tools write it (`08420278-n`).
    pub fn id(&self) -> String {
        format!("{:08}-{}", self.offset, if self.pos == 's' { 'a' } else { self.pos })
    }
}

/// One part of speech's index: lemma -> synset offsets, in WordNet's order.
type Index = HashMap<String, Vec<u32>>;

/// A WordNet database directory.
#[derive(Debug)]
pub struct WordNet {
    dir: PathBuf,
    /// Per part of speech: lemma -> synset offsets, read on first use.
    indexes: [OnceLock<std::result::Result<Index, String>>; 4],
}

impl WordNet {
    /// Opens the directory holding `index.noun`, `data.noun` and the other database files.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        for (_, suffix) in POS {
            for kind in ["index", "data"] {
                let path = dir.join(format!("{kind}.{suffix}"));
                if !path.is_file() {
                    return Err(Error::InvalidArgument(format!(
                        "{} is not a WordNet database directory: {} is missing (install Debian's wordnet-base \
                         for /usr/share/wordnet, or point to a WordNet 3.x \"dict\" directory)",
                        dir.display(),
                        path.display()
                    )));
                }
            }
        }
        Ok(WordNet { dir, indexes: Default::default() })
    }

    /// The directory the files are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The synsets of `word` (any case; spaces as in "river bank" are WordNet's underscores),
    /// nouns first, then verbs, adjectives and adverbs. Empty when WordNet does not know the word.
    pub fn synsets(&self, word: &str) -> Result<Vec<Synset>> {
        let lemma = normalize(word);
        let mut synsets = Vec::new();
        for (p, &(pos, _)) in POS.iter().enumerate() {
            let Some(offsets) = self.index(p)?.get(&lemma).cloned() else { continue };
            for offset in offsets {
                synsets.push(self.synset(p, pos, offset)?);
            }
        }
        Ok(synsets)
    }

    fn index(&self, p: usize) -> Result<&Index> {
        let path = self.dir.join(format!("index.{}", POS[p].1));
        self.indexes[p].get_or_init(|| read_index(&path)).as_ref().map_err(|e| Error::InvalidArgument(e.clone()))
    }

    fn synset(&self, p: usize, pos: char, offset: u32) -> Result<Synset> {
        let path = self.dir.join(format!("data.{}", POS[p].1));
        let line = data_line(&path, offset)?;
        let bad = |why: &str| Error::InvalidArgument(format!("{}: the line of synset {offset:08} {why}", path.display()));
        let (head, gloss) = line.split_once(" | ").unwrap_or((&line, ""));
        let fields: Vec<&str> = head.split_whitespace().collect();
        // offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] p_cnt ...
        let ss_type = fields.get(2).and_then(|t| t.chars().next()).ok_or_else(|| bad("has no synset type"))?;
        let count = fields.get(3).and_then(|c| usize::from_str_radix(c, 16).ok()).ok_or_else(|| bad("has no word count"))?;
        let lemmas: Vec<String> = (0..count)
            .map(|i| fields.get(4 + 2 * i).map(|w| strip_marker(w).to_owned()).ok_or_else(|| bad("has fewer words than it says")))
            .collect::<Result<_>>()?;
        let first = lemmas.first().ok_or_else(|| bad("has no words"))?;
        let mut same_kind = self.index(p)?.get(&normalize(first)).cloned().unwrap_or_default();
        if ss_type == 's' {
            // As NLTK (3.9 on) numbers them: a satellite among the lemma's satellites only.
            same_kind.retain(|&o| o == offset || data_line(&path, o).is_ok_and(|l| l.split_whitespace().nth(2) == Some("s")));
        }
        let sense = same_kind.iter().position(|&x| x == offset).map_or(1, |i| i + 1);
        let (definition, examples) = split_gloss(gloss);
        let pos = if ss_type == 's' { 's' } else { pos };
        Ok(Synset { name: format!("{}.{pos}.{sense:02}", first.to_lowercase()), offset, pos, lemmas, definition, examples })
    }
}

/// WordNet's form of a lemma: lower case, spaces as underscores.
fn normalize(word: &str) -> String {
    word.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("_")
}

/// Drops the syntactic marker of adjectives, `(a)`, `(p)` or `(ip)`.
fn strip_marker(word: &str) -> &str {
    match word.find('(') {
        Some(i) if word.ends_with(')') => &word[..i],
        _ => word,
    }
}

fn read_index(path: &Path) -> std::result::Result<Index, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the WordNet index {}: {e}", path.display()))?;
    let mut index = HashMap::new();
    // Licence lines start with spaces.
    for line in text.lines().filter(|l| !l.starts_with(' ') && !l.is_empty()) {
        // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(synsets) = fields.get(2).and_then(|c| c.parse::<usize>().ok()) else { continue };
        let offsets: Vec<u32> = fields.iter().rev().take(synsets).rev().filter_map(|o| o.parse().ok()).collect();
        if offsets.len() == synsets {
            index.insert(fields[0].to_owned(), offsets);
        }
    }
    Ok(index)
}

/// The line of the data file that describes the synset at `offset`.
fn data_line(path: &Path, offset: u32) -> Result<String> {
    let cannot = |e: std::io::Error| Error::InvalidArgument(format!("cannot read the WordNet data file {}: {e}", path.display()));
    let key = format!("{offset:08} ");
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    file.seek(SeekFrom::Start(u64::from(offset))).map_err(cannot)?;
    let mut line = String::new();
    // A seek past the end or into the middle of a line reads something else: search instead.
    if BufReader::new(&mut file).read_line(&mut line).is_ok() && line.starts_with(&key) {
        return Ok(line.trim_end().to_owned());
    }
    file.seek(SeekFrom::Start(0)).map_err(cannot)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    text.lines()
        .find(|l| l.starts_with(&key))
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidArgument(format!("{}: no synset at offset {offset:08} (index and data files do not match)", path.display())))
}

/// Splits a gloss into its definition and its quoted example sentences.
pub fn split_gloss(gloss: &str) -> (String, Vec<String>) {
    let gloss = gloss.trim();
    let definition = gloss.split('"').next().unwrap_or("").trim().trim_end_matches(';').trim().to_owned();
    // The odd-numbered pieces between quotes are the examples.
    let examples =
        gloss.split('"').skip(1).step_by(2).map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
    (definition, examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gloss_splits_into_definition_and_examples() {
        let (d, e) = split_gloss("sloping land (especially the slope beside a body of water); \"they pulled the canoe up on the bank\"; \"he sat on the bank\"  ");
        assert_eq!(d, "sloping land (especially the slope beside a body of water)");
        assert_eq!(e, ["they pulled the canoe up on the bank", "he sat on the bank"]);
        assert_eq!(split_gloss("a long seat for more than one person"), ("a long seat for more than one person".into(), vec![]));
        assert_eq!(strip_marker("big(a)"), "big");
        assert_eq!(normalize(" River Bank "), "river_bank");
    }
}
