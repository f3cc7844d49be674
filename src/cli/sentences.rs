//! Sentence lists for `compare` and the UI: plain text (one sentence per line) or the curated TSV sets
//! (`word<TAB>sentence[<TAB>sense]`), read with line numbers so a bad row can be named.

use std::path::{Path, PathBuf};

use clap::Args;

use anyhow::{Context, Result, anyhow};

/// One sentence as a file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The word column of a TSV row; `None` for plain text.
    pub word: Option<String>,
    /// The sentence.
    pub text: String,
    /// The sense column of a TSV row, when present and not empty.
    pub sense: Option<String>,
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
            Row { word: Some(word.to_owned()), text: sentence.to_owned(), sense }
        } else {
            Row { word: None, text: line.trim().to_owned(), sense: None }
        };
        rows.push(row);
    }
    Ok(rows)
}

/// Reads a sentences file; the error names the file and what to do about it.
pub fn read(path: &Path) -> Result<Vec<Row>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the sentences file {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{} is not UTF-8 text (bad byte at offset {}); save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
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
        assert_eq!(rows[0], Row { word: Some("bank".into()), text: "The bank.".into(), sense: Some("finance".into()) });
        assert_eq!(rows[1].sense, None);

        let plain = parse("t", "One bank.\n  Two banks. \n").unwrap();
        assert_eq!(plain[1], Row { word: None, text: "Two banks.".into(), sense: None });

        let err = parse("f.tsv", "bank\tok\nbank\t\tsense\n").unwrap_err().to_string();
        assert!(err.contains("f.tsv line 2"), "{err}");
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        assert!(read(&missing).unwrap_err().to_string().contains("nope.txt"));
        let bad = dir.path().join("latin1.txt");
        std::fs::write(&bad, b"caf\xe9 bank\n").unwrap();
        let err = read(&bad).unwrap_err().to_string();
        assert!(err.contains("latin1.txt") && err.contains("UTF-8"), "{err}");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "\n\n").unwrap();
        assert!(read(&empty).unwrap_err().to_string().contains("no sentences"));
    }
}

/// The word and sentences options shared by `compare` and the terminal UI.
#[derive(Debug, Default, Args)]
pub struct SentenceInput {
    /// The target word (may be left out when a TSV sentences file names it).
    #[arg(long, short)]
    pub word: Option<String>,
    /// A file with one sentence per line, or TSV `word<TAB>sentence[<TAB>sense]`.
    #[arg(long, value_name = "FILE", conflicts_with = "sentence")]
    pub sentences: Option<PathBuf>,
    /// A sentence (repeat for each one).
    #[arg(long = "sentence", short = 's', value_name = "S")]
    pub sentence: Vec<String>,
}

impl SentenceInput {
    /// The sentences given by `--sentences` or `-s`, or `None` when neither was given.
    pub fn given_rows(&self) -> Option<Result<Vec<Row>>> {
        match &self.sentences {
            Some(path) => Some(read(path)),
            None if !self.sentence.is_empty() => {
                Some(Ok(self.sentence.iter().map(|s| Row { word: None, text: s.clone(), sense: None }).collect()))
            }
            None => None,
        }
    }

    /// Whether any of the options was given.
    pub fn is_empty(&self) -> bool {
        self.word.is_none() && self.sentences.is_none() && self.sentence.is_empty()
    }
}
