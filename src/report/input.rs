//! Report input, streamed line by line: plain text, TSV, JSONL or WiC, one [`Record`] per
//! occurrence of a target word.

use std::io::BufRead;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::occurrence::{Locator, Occurrence};

/// The layout of a report's input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// One sentence per line; the target words are given separately.
    Text,
    /// `word<TAB>sentence[<TAB>sense]`, as in `data/sentences/`.
    Tsv,
    /// One JSON object per line: `{"word", "sentence", "span"?: [start, end], "sense"?}`.
    Jsonl,
    /// WiC's `target<TAB>POS<TAB>i-j<TAB>sentence1<TAB>sentence2`: two occurrences per line,
    /// the target being the `i`-th and `j`-th whitespace token.
    Wic,
}

impl InputFormat {
    /// Guesses the format from a file name: `.jsonl`/`.ndjson`, `.tsv`, `.data.txt` (WiC's
    /// naming), other `.txt`; `None` for anything else.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some(InputFormat::Jsonl)
        } else if name.ends_with(".tsv") {
            Some(InputFormat::Tsv)
        } else if name.ends_with(".data.txt") {
            Some(InputFormat::Wic)
        } else if name.ends_with(".txt") {
            Some(InputFormat::Text)
        } else {
            None
        }
    }
}

impl FromStr for InputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "txt" => Ok(InputFormat::Text),
            "tsv" => Ok(InputFormat::Tsv),
            "jsonl" | "ndjson" => Ok(InputFormat::Jsonl),
            "wic" => Ok(InputFormat::Wic),
            _ => Err(Error::InvalidArgument(format!("unknown input format {s:?}; expected text, tsv, jsonl or wic"))),
        }
    }
}

impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputFormat::Text => "text",
            InputFormat::Tsv => "tsv",
            InputFormat::Jsonl => "jsonl",
            InputFormat::Wic => "wic",
        })
    }
}

/// One occurrence of a target word, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in the input (in the shard's part of it, when reading a shard).
    pub line: usize,
    /// Byte offset of the start of that line in the whole input: where the record is however
    /// the input is split into shards (the report's sample is chosen by it).
    pub offset: u64,
    /// The target word as the input names it; occurrences are grouped by it.
    pub word: String,
    /// The sentence and the word's span in it.
    pub occurrence: Occurrence,
    /// The sense label, when the input gives one.
    pub sense: Option<String>,
}

/// An input line that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRow {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What one input line gives: its occurrences (none when a `words` filter leaves it out), or
/// why it is unusable.
pub type Row = std::result::Result<Vec<Record>, BadRow>;

/// Reads records one line at a time, so input of any length runs in constant memory.
///
/// ```
/// use vecshift::report::{InputFormat, RecordReader};
/// let input = "bank\tThe bank approved my loan.\tfinance\n\nbank\tNo target here.\n";
/// let rows: Vec<_> = RecordReader::new(input.as_bytes(), InputFormat::Tsv, &[])?.collect::<Result<_, _>>()?;
/// assert_eq!(rows[0].as_ref().unwrap()[0].sense.as_deref(), Some("finance"));
/// assert_eq!(rows[1].as_ref().unwrap_err().line, 2);   // empty line
/// assert_eq!(rows[2].as_ref().unwrap_err().line, 3);   // "bank" is not in the sentence
/// # Ok::<(), vecshift::Error>(())
/// ```
pub struct RecordReader<R> {
    reader: R,
    format: InputFormat,
    /// Lowercased target words: required for text, a filter for the other formats.
    words: Vec<String>,
    line: usize,
    /// Byte offset of the next line in the whole input, and of the line being parsed.
    offset: u64,
    line_offset: u64,
    /// Whether the input starts at the file's first line (where a header or a byte-order
    /// mark may be), not in the middle of it as a shard does.
    at_file_start: bool,
    buffer: Vec<u8>,
}

impl<R: BufRead> RecordReader<R> {
    /// Reads `format` from `reader`. Plain text needs the target `words`; for the other formats
    /// a non-empty `words` keeps only rows about those words (case-insensitively).
    pub fn new(reader: R, format: InputFormat, words: &[String]) -> Result<Self> {
        let words: Vec<String> = words.iter().map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect();
        if format == InputFormat::Text && words.is_empty() {
            return Err(Error::InvalidArgument(
                "plain-text input (one sentence per line) needs the target word(s): pass --word".into(),
            ));
        }
        Ok(RecordReader { reader, format, words, line: 0, offset: 0, line_offset: 0, at_file_start: true, buffer: Vec::new() })
    }

    /// Says that `reader` begins at byte `offset` of a larger input, at the start of a line (a
    /// shard, see [`Shard`](super::Shard)): records' offsets count from the input's start, and
    /// unless `offset` is 0 the first line is not checked for a header or a byte-order mark.
    /// Line numbers still count from 1 at the reader's start.
    pub fn starting_at(mut self, offset: u64) -> Self {
        self.offset = offset;
        self.at_file_start = offset == 0;
        self
    }

    /// How many lines have been read so far.
    pub fn lines_read(&self) -> usize {
        self.line
    }

    fn wanted(&self, word: &str) -> bool {
        self.words.is_empty() || self.words.iter().any(|w| w.to_lowercase() == word.to_lowercase())
    }

    fn parse(&self, text: &str) -> Row {
        let (line, offset) = (self.line, self.line_offset);
        let bad = |reason: String| BadRow { line, reason };
        if text.trim().is_empty() {
            return Err(bad("empty line".into()));
        }
        let record = |word: &str, sentence: &str, locator: &Locator, sense: Option<&str>| {
            Occurrence::locate(word, sentence, locator)
                .map(|occurrence| Record {
                    line,
                    offset,
                    word: word.to_owned(),
                    occurrence,
                    sense: sense.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
                })
                .map_err(|e| bad(e.to_string()))
        };
        match self.format {
            InputFormat::Text => {
                let found: Vec<Record> =
                    self.words.iter().filter_map(|w| record(w, text.trim(), &Locator::default(), None).ok()).collect();
                if found.is_empty() {
                    let words = self.words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(", ");
                    return Err(bad(format!("none of the target words ({words}) occurs as a whole word in the sentence")));
                }
                Ok(found)
            }
            InputFormat::Tsv => {
                let columns: Vec<&str> = text.split('\t').collect();
                let (word, sentence, sense) = match columns.as_slice() {
                    [word, sentence] => (word.trim(), sentence.trim(), None),
                    [word, sentence, sense] => (word.trim(), sentence.trim(), Some(*sense)),
                    _ => {
                        return Err(bad(format!(
                            "expected word<TAB>sentence[<TAB>sense], found {} tab-separated column(s)",
                            columns.len()
                        )));
                    }
                };
                if line == 1 && self.at_file_start && word.eq_ignore_ascii_case("word") && sentence.eq_ignore_ascii_case("sentence") {
                    return Ok(Vec::new()); // a header
                }
                if !self.wanted(word) {
                    return Ok(Vec::new());
                }
                record(word, sentence, &Locator::default(), sense).map(|r| vec![r])
            }
            InputFormat::Jsonl => {
                let row: JsonRow = serde_json::from_str(text).map_err(|e| bad(format!("not a JSON object with \"word\" and \"sentence\": {e}")))?;
                if !self.wanted(&row.word) {
                    return Ok(Vec::new());
                }
                let locator = row.span.map_or_else(Locator::default, |[start, end]| Locator::Span(start..end));
                let sense = match &row.sense {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    Some(other) => return Err(bad(format!("\"sense\" must be a string or a number, not {other}"))),
                };
                record(&row.word, &row.sentence, &locator, sense.as_deref()).map(|r| vec![r])
            }
            InputFormat::Wic => {
                let columns: Vec<&str> = text.split('\t').collect();
                let [word, _pos, indices, first, second] = columns.as_slice() else {
                    return Err(bad(format!("expected WiC's 5 tab-separated columns (target, POS, i-j, sentence1, sentence2), found {}", columns.len())));
                };
                let parsed = indices.split_once('-').and_then(|(i, j)| Some((i.trim().parse().ok()?, j.trim().parse().ok()?)));
                let Some((i, j)) = parsed else {
                    return Err(bad(format!("the third column must be the token indices i-j, not {indices:?}")));
                };
                if !self.wanted(word) {
                    return Ok(Vec::new());
                }
                Ok(vec![record(word, first, &Locator::TokenIndex(i), None)?, record(word, second, &Locator::TokenIndex(j), None)?])
            }
        }
    }
}

/// One JSONL row; unknown keys are ignored.
#[derive(Deserialize)]
struct JsonRow {
    word: String,
    sentence: String,
    span: Option<[usize; 2]>,
    sense: Option<serde_json::Value>,
}

impl<R: BufRead> Iterator for RecordReader<R> {
    /// An I/O error ends the input; a bad line is an `Ok(Err(BadRow))` and reading goes on.
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buffer.clear();
        match self.reader.read_until(b'\n', &mut self.buffer) {
            Ok(0) => return None,
            Ok(read) => {
                self.line_offset = self.offset;
                self.offset += read as u64;
            }
            Err(e) => return Some(Err(Error::io(format!("<input line {}>", self.line + 1), e))),
        }
        self.line += 1;
        let first = self.line == 1 && self.at_file_start;
        let mut bytes = self.buffer.as_slice();
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if first {
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        let bad = |reason: String| Some(Ok(Err(BadRow { line: self.line, reason })));
        if first && (bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff])) {
            return bad("the input is UTF-16 text; re-save it as UTF-8".into());
        }
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            return bad(format!("a NUL byte at column {} (a binary or UTF-16 file?); re-save it as UTF-8 text", nul + 1));
        }
        Some(Ok(match std::str::from_utf8(bytes) {
            Ok(text) => self.parse(text),
            Err(e) => Err(BadRow {
                line: self.line,
                reason: format!("not valid UTF-8 (bad byte at column {}); re-save the file as UTF-8", e.valid_up_to() + 1),
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: InputFormat, words: &[&str], text: &str) -> Vec<Row> {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        RecordReader::new(text.as_bytes(), format, &words).unwrap().collect::<Result<_>>().unwrap()
    }

    #[test]
    fn text_with_several_words() {
        let rows = read(InputFormat::Text, &["bank", "river"], "The river bank.\r\nA bank.\nNothing here.\n");
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.iter().map(|r| (r.word.as_str(), r.occurrence.word())).collect::<Vec<_>>(), [("bank", "bank"), ("river", "river")]);
        assert_eq!(rows[1].as_ref().unwrap().len(), 1);
        let bad = rows[2].as_ref().unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(bad.reason.contains("\"bank\", \"river\""), "{bad}");
        assert!(RecordReader::new(&b""[..], InputFormat::Text, &[]).is_err(), "text needs --word");
    }

    #[test]
    fn tsv_header_filter_and_bad_rows() {
        let text = "word\tsentence\tsense\nbank\tThe Bank.\tmoney\nbat\tA bat.\t\nbank\tone\ttwo\tthree\nbank\n";
        let rows = read(InputFormat::Tsv, &["BANK"], text);
        assert!(rows[0].as_ref().unwrap().is_empty(), "header");
        let bank = &rows[1].as_ref().unwrap()[0];
        assert_eq!((bank.line, bank.occurrence.word(), bank.sense.as_deref()), (2, "Bank", Some("money")));
        assert!(rows[2].as_ref().unwrap().is_empty(), "filtered out by --word");
        assert!(rows[3].as_ref().unwrap_err().reason.contains("4 tab-separated"));
        assert!(rows[4].as_ref().unwrap_err().reason.contains("1 tab-separated"));
    }

    #[test]
    fn jsonl_spans_and_senses() {
        let text = concat!(
            r#"{"word": "bank", "sentence": "bank and bank", "span": [9, 13], "sense": 2}"#, "\n",
            r#"{"word": "bank", "sentence": "the bank", "extra": true}"#, "\n",
            r#"{"word": "bank""#, "\n",
            r#"{"word": "bank", "sentence": "the bank", "sense": [1]}"#, "\n",
        );
        let rows = read(InputFormat::Jsonl, &[], text);
        let first = &rows[0].as_ref().unwrap()[0];
        assert_eq!((first.occurrence.span(), first.sense.as_deref()), (9..13, Some("2")));
        assert_eq!(rows[1].as_ref().unwrap()[0].sense, None);
        assert!(rows[2].as_ref().unwrap_err().reason.contains("JSON"));
        assert!(rows[3].as_ref().unwrap_err().reason.contains("sense"));
    }

    #[test]
    fn wic_gives_two_occurrences() {
        let rows = read(InputFormat::Wic, &[], "board\tN\t2-2\tRoom and board .\tHe nailed boards across .\nboard\tN\t2-9\ta b c\td e f\n");
        let pair = rows[0].as_ref().unwrap();
        assert_eq!(pair.iter().map(|r| r.occurrence.word()).collect::<Vec<_>>(), ["board", "boards"]);
        assert!(pair.iter().all(|r| r.word == "board" && r.line == 1));
        assert!(rows[1].as_ref().unwrap_err().reason.contains("token index 9"));
    }

    #[test]
    fn offsets_and_shards_starting_mid_file() {
        let text = "word\tsentence\nbank\tThe bank.\nbat\tA bat.\n";
        let offsets: Vec<u64> = read(InputFormat::Tsv, &[], text).iter().flat_map(|r| r.as_ref().unwrap().iter().map(|r| r.offset)).collect();
        assert_eq!(offsets, [14, 29]);
        // From the second line on, as a shard reads it: offsets count from the file's start,
        // lines from the shard's, and a first line that looks like a header is data.
        let rest = &text[14..];
        let rows: Vec<Row> = RecordReader::new(rest.as_bytes(), InputFormat::Tsv, &[]).unwrap().starting_at(14).map(|r| r.unwrap()).collect();
        let first = &rows[0].as_ref().unwrap()[0];
        assert_eq!((first.line, first.offset, first.word.as_str()), (1, 14, "bank"));
        let header = "word\tsentence\n";
        let read_at = |offset| -> Vec<Row> {
            RecordReader::new(header.as_bytes(), InputFormat::Tsv, &[]).unwrap().starting_at(offset).map(|r| r.unwrap()).collect()
        };
        assert!(read_at(0)[0].as_ref().unwrap().is_empty(), "a header at the file's start");
        assert!(read_at(7)[0].is_err(), "a bad row in the middle of the file");
    }

    #[test]
    fn non_utf8_and_bom() {
        let rows: Vec<Row> = RecordReader::new(&b"\xef\xbb\xbfbank\tbank\n\xff\tx\n"[..], InputFormat::Tsv, &[]).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(rows[0].as_ref().unwrap()[0].word, "bank");
        assert!(rows[1].as_ref().unwrap_err().reason.contains("UTF-8"));
        let rows: Vec<Row> = RecordReader::new(&b"bank\tthe bank\0\n"[..], InputFormat::Tsv, &[]).unwrap().map(|r| r.unwrap()).collect();
        assert!(rows[0].as_ref().unwrap_err().reason.contains("NUL byte at column 14"), "{rows:?}");
    }

    #[test]
    fn format_from_path() {
        assert_eq!(InputFormat::from_path(Path::new("x/dev.data.txt")), Some(InputFormat::Wic));
        assert_eq!(InputFormat::from_path(Path::new("a.TSV")), Some(InputFormat::Tsv));
        assert_eq!(InputFormat::from_path(Path::new("a.txt")), Some(InputFormat::Text));
        assert_eq!(InputFormat::from_path(Path::new("a.ndjson")), Some(InputFormat::Jsonl));
        assert_eq!(InputFormat::from_path(Path::new("a.csv")), None);
    }
}
