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
        assert!(err.contains("latin1.txt line 1") && err.contains("UTF-8") && err.contains("column 4"), "{err}");
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
