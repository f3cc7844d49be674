//! Sentence lists for `compare` and the UI: plain text (one sentence per line) or the curated TSV sets
//! (`word<TAB>sentence[<TAB>sense]`), read with line numbers so a bad row can be named.

use std::path::{Path, PathBuf};

use clap::Args;

use anyhow::{Context, Result, anyhow};
use vecshift::Occurrence;

/// One sentence as a file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The word column of a TSV row; `None` for plain text.
    pub word: Option<String>,
    /// The sentence.
    pub text: String,
    /// The sense column of a TSV row, when present and not empty.
    pub sense: Option<String>,
    /// Where it came from, for messages: `FILE line N` or `sentence N (-s)`.
    pub place: String,
}

/// Parses the text of a sentences file; `name` is only used in error messages.
pub fn parse(name: &str, text: &str) -> Result<Vec<Row>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let row = if line.contains('\t') {
            let mut columns = line.split('\t').map(str::trim);
            let word = columns.next().unwrap_or_default();
            let sentence = columns.next().unwrap_or_default();
            if word.is_empty() || sentence.is_empty() {
                return Err(anyhow!(
                    "{name} line {}: a TSV row needs word<TAB>sentence[<TAB>sense], with neither empty",
                    number + 1
                ));
            }
            let sense = columns.next().filter(|s| !s.is_empty()).map(str::to_owned);
            Row { word: Some(word.to_owned()), text: sentence.to_owned(), sense, place: format!("{name} line {}", number + 1) }
        } else {
            Row { word: None, text: line.trim().to_owned(), sense: None, place: format!("{name} line {}", number + 1) }
        };
        rows.push(row);
    }
    Ok(rows)
}

/// The text of a sentences file, which must be UTF-8 without NUL bytes; the error names the line.
fn decode(name: &str, bytes: Vec<u8>) -> Result<String> {
    let line_of = |bytes: &[u8], offset: usize| bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(anyhow!("{name} is UTF-16 text; save it as UTF-8"));
    }
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        return Err(anyhow!(
            "{name} line {}: a NUL byte, which text does not contain (a binary or UTF-16 file?); save it as UTF-8 text",
            line_of(&bytes, nul)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line_start = bytes[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        anyhow!(
            "{name} line {}: not UTF-8 text (bad byte 0x{:02x} at column {}); save the file as UTF-8",
            line_of(bytes, offset),
            bytes[offset],
            offset - line_start + 1
        )
    })
}

/// Reads a sentences file; the error names the file and what to do about it.
pub fn read(path: &Path) -> Result<Vec<Row>> {
    if path.is_dir() {
        return Err(anyhow!("the sentences file {} is a folder; name a text or TSV file", path.display()));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the sentences file {}", path.display()))?;
    let text = decode(&path.display().to_string(), bytes)?;
    let rows = parse(&path.display().to_string(), &text)?;
    if rows.is_empty() {
        return Err(anyhow!("{} has no sentences in it", path.display()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_plain_and_broken_rows() {
        let rows = parse("t", "\u{feff}bank\tThe bank.\tfinance\r\n\nbank\tA river bank.\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            Row { word: Some("bank".into()), text: "The bank.".into(), sense: Some("finance".into()), place: "t line 1".into() }
        );
        assert_eq!(rows[1].sense, None);

        let plain = parse("t", "One bank.\n  Two banks. \n").unwrap();
        assert_eq!(plain[1], Row { word: None, text: "Two banks.".into(), sense: None, place: "t line 2".into() });

        let err = parse("f.tsv", "bank\tok\nbank\t\tsense\n").unwrap_err().to_string();
        assert!(err.contains("f.tsv line 2"), "{err}");
    }

    #[test]
    fn word_filters_tsv_rows_and_several_words_need_one() {
        let rows = || parse("two.tsv", "bank\tA bank.\nbass\tA bass.\tfish\nBass\tThe bass.\tmusic\n").unwrap();
        let (word, kept) = rows_for(Some("bass"), rows(), "two.tsv").unwrap();
        assert_eq!(word, "bass");
        assert_eq!(kept.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["A bass.", "The bass."]);
        assert_eq!(kept[0].place, "two.tsv line 2");
        let err = rows_for(None, rows(), "two.tsv").unwrap_err().to_string();
        assert!(err.contains("2 words (\"bank\", \"bass\")") && err.contains("--word"), "{err}");
        let err = rows_for(Some("bat"), rows(), "two.tsv").unwrap_err().to_string();
        assert!(err.contains("no rows about \"bat\""), "{err}");
        let (word, kept) = rows_for(None, rows().split_off(1), "t").unwrap();
        assert_eq!((word.as_str(), kept.len()), ("bass", 2), "one word, spelled two ways");
        assert!(rows_for(None, parse("t", "A bank.\n").unwrap(), "t").unwrap_err().to_string().contains("--word"));
    }

    #[test]
    fn sentences_without_the_word_are_skipped_or_stop_with_strict() {
        let rows = || parse("s.txt", "A bank.\nA river.\nThe bank.\n").unwrap();
        let find = |s: &str| Ok(Occurrence::find("bank", s)?);
        let found = locate_rows(rows(), find, false).unwrap();
        assert_eq!(found.iter().map(|(r, _)| r.place.as_str()).collect::<Vec<_>>(), ["s.txt line 1", "s.txt line 3"]);
        let err = locate_rows(rows(), find, true).unwrap_err().to_string();
        assert!(err.starts_with("s.txt line 2: ") && err.contains("--strict"), "{err}");
    }

    #[test]
    fn a_word_without_sentences_takes_its_example_set() {
        let input = SentenceInput { word: Some("Spring".into()), ..SentenceInput::default() };
        let (word, rows, source) = input.word_and_rows(None).unwrap();
        assert_eq!((word.as_str(), rows.len()), ("Spring", 9));
        assert!(source.unwrap().ends_with("sentences/spring.tsv"));
        let input = SentenceInput { word: Some("zebra".into()), ..SentenceInput::default() };
        assert!(input.word_and_rows(None).unwrap().1.is_empty());
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        assert!(read(&missing).unwrap_err().to_string().contains("nope.txt"));
        let bad = dir.path().join("latin1.txt");
        std::fs::write(&bad, b"caf\xe9 bank\n").unwrap();
        let err = read(&bad).unwrap_err().to_string();
        assert!(err.contains("latin1.txt line 1") && err.contains("UTF-8") && err.contains("column 4"), "{err}");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "\n\n").unwrap();
        assert!(read(&empty).unwrap_err().to_string().contains("no sentences"));
    }
}

/// The word and sentences options shared by `compare` and the terminal UI.
#[derive(Debug, Default, Args)]
pub struct SentenceInput {
    /// The target word (may be left out when a TSV sentences file names only one word; with
    /// several, it keeps the rows about this word).
    #[arg(long, short)]
    pub word: Option<String>,
    /// A file with one sentence per line, or TSV `word<TAB>sentence[<TAB>sense]`. Without it
    /// (and without -s), the example set data/sentences/WORD.tsv of --word, when there is one.
    #[arg(long, value_name = "FILE", conflicts_with = "sentence")]
    pub sentences: Option<PathBuf>,
    /// A sentence (repeat for each one).
    #[arg(long = "sentence", short = 's', value_name = "S")]
    pub sentence: Vec<String>,
    /// Stop at the first sentence without the word instead of skipping it with a warning.
    #[arg(long)]
    pub strict: bool,
}

/// The example set bundled for `word`, `data/sentences/WORD.tsv`, when there is one.
pub fn example(word: &str) -> Option<PathBuf> {
    // Found where the default models are: $VECSHIFT_DATA, the user data directory, the source tree.
    let word = word.trim().to_lowercase();
    if word.is_empty() || word.contains(['/', '\\']) || word.starts_with('.') {
        return None;
    }
    super::data::find(&format!("sentences/{word}.tsv")).filter(|p| p.is_file())
}

/// The target word and the rows about it. With `word`, a TSV file's rows about other words
/// are left out; without it, the file must be about one word, which becomes the target
/// (rows about several words are never compared together). `name` names the input in errors.
pub fn rows_for(word: Option<&str>, rows: Vec<Row>, name: &str) -> Result<(String, Vec<Row>)> {
    let mut words: Vec<&str> = Vec::new();
    for w in rows.iter().filter_map(|r| r.word.as_deref()) {
        if !words.iter().any(|seen| same_word(seen, w)) {
            words.push(w);
        }
    }
    let listed = || words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(", ");
    let word = match (word, words.as_slice()) {
        (Some(word), _) if word.trim().is_empty() => return Err(anyhow!("--word is empty; name the target word")),
        (Some(word), _) => word.trim().to_owned(),
        (None, [only]) => (*only).to_owned(),
        (None, []) => return Err(anyhow!("name the target word with --word ({name} gives none)")),
        (None, _) => {
            return Err(anyhow!("{name} has rows about {} words ({}); pick one with --word", words.len(), listed()));
        }
    };
    if !words.is_empty() && !words.iter().any(|w| same_word(w, &word)) {
        return Err(anyhow!("{name} has no rows about {word:?} (its words: {}); pick one of them with --word", listed()));
    }
    let rows = rows.into_iter().filter(|r| r.word.as_deref().is_none_or(|w| same_word(w, &word))).collect();
    Ok((word, rows))
}

/// Whether two spellings name the same target word (case is ignored, as when searching).
fn same_word(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Finds `word` in every row. A row without it is skipped with a warning naming its file and
/// line, or, with `strict`, stops everything with that message.
pub fn locate_rows(
    rows: Vec<Row>,
    locate: impl Fn(&str) -> Result<Occurrence>,
    strict: bool,
) -> Result<Vec<(Row, Occurrence)>> {
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        match locate(&row.text) {
            Ok(occurrence) => found.push((row, occurrence)),
            Err(e) if strict => return Err(anyhow!("{}: {e:#} (stopped by --strict)", row.place)),
            Err(e) => log::warn!("{}: {e:#}; skipped (--strict stops instead)", row.place),
        }
    }
    Ok(found)
}

impl SentenceInput {
    /// The sentences given by `--sentences` or `-s`, or `None` when neither was given.
    pub fn given_rows(&self) -> Option<Result<Vec<Row>>> {
        match &self.sentences {
            Some(path) => Some(read(path)),
            None if !self.sentence.is_empty() => Some(Ok(self
                .sentence
                .iter()
                .enumerate()
                .map(|(i, s)| Row { word: None, text: s.clone(), sense: None, place: format!("sentence {} (-s)", i + 1) })
                .collect())),
            None => None,
        }
    }

    /// The target word, the rows about it and the file they came from: the given sentences,
    /// else the example set of `--word` (or of `default_word`), else no rows.
    pub fn word_and_rows(&self, default_word: Option<&str>) -> Result<(String, Vec<Row>, Option<PathBuf>)> {
        if let Some(rows) = self.given_rows() {
            let name = self.sentences.as_ref().map_or("the -s sentences".into(), |p| p.display().to_string());
            let (word, rows) = rows_for(self.word.as_deref(), rows?, &name)?;
            return Ok((word, rows, self.sentences.clone()));
        }
        let Some(word) = self.word.as_deref().or(default_word) else {
            return Err(anyhow!("name the target word with --word, and the sentences with --sentences FILE or -s S1 -s S2 ..."));
        };
        match example(word) {
            Some(path) => {
                let (word, rows) = rows_for(Some(word), read(&path)?, &path.display().to_string())?;
                Ok((word, rows, Some(path)))
            }
            None => Ok((rows_for(Some(word), Vec::new(), "")?.0, Vec::new(), None)),
        }
    }

    /// Whether any of the options was given.
    pub fn is_empty(&self) -> bool {
        self.word.is_none() && self.sentences.is_none() && self.sentence.is_empty() && !self.strict
    }
}
