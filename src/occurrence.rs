//! Finding a target word in a sentence: the [`Occurrence`] every engine embeds.

use std::ops::Range;

use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

use crate::error::{Error, Result};

/// One occurrence of a word: a sentence and the byte span of the word in it.
///
/// The span is checked when the occurrence is made (non-empty, inside the sentence, on
/// character boundaries), so every `Occurrence` can be sliced safely.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    sentence: String,
    span: Range<usize>,
}

/// How to find the target word in a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locator {
    /// Search for the word: whole-word, case-insensitive; the `n`-th match (1-based).
    Search {
        /// Which match to take, counting from 1.
        nth: usize,
    },
    /// An explicit half-open span of UTF-8 byte offsets.
    Span(Range<usize>),
    /// The `n`-th whitespace-separated token (0-based), as WiC gives it, without the
    /// punctuation around it (`"bank."` gives `bank`; a token of punctuation only is kept).
    TokenIndex(usize),
}

impl Default for Locator {
    fn default() -> Self {
        Locator::Search { nth: 1 }
    }
}

impl Occurrence {
    /// Locates `word` in `sentence` the way `locator` says.
    ///
    /// ```
    /// use vecshift::{Locator, Occurrence};
    /// let occ = Occurrence::locate("bank", "The Bank, by the river bank.", &Locator::Search { nth: 2 }).unwrap();
    /// assert_eq!(occ.word(), "bank");
    /// assert_eq!(occ.span(), 23..27);
    /// ```
    pub fn locate(word: &str, sentence: &str, locator: &Locator) -> Result<Self> {
        let span = match locator {
            Locator::Search { nth } => find_word(sentence, word, *nth)?,
            Locator::Span(span) => check_span(sentence, span.clone())?,
            Locator::TokenIndex(index) => token_span(sentence, *index)?,
        };
        Ok(Occurrence { sentence: sentence.to_owned(), span })
    }

    /// Finds the first whole-word occurrence of `word` in `sentence`.
    pub fn find(word: &str, sentence: &str) -> Result<Self> {
        Self::locate(word, sentence, &Locator::default())
    }

    /// An occurrence at an explicit byte span; errors when the span is empty, runs past the
    /// sentence or cuts through a character.
    pub fn new(sentence: impl Into<String>, span: Range<usize>) -> Result<Self> {
        let sentence = sentence.into();
        let span = check_span(&sentence, span)?;
        Ok(Occurrence { sentence, span })
    }

    /// The whole sentence.
    pub fn sentence(&self) -> &str {
        &self.sentence
    }

    /// UTF-8 byte offsets of the word in [`sentence`](Self::sentence), half-open.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The word as it is written in the sentence.
    pub fn word(&self) -> &str {
        &self.sentence[self.span.clone()]
    }
}

/// Returns every whole-word, case-insensitive match of `word` in `sentence`.
///
/// Matches start and end on Unicode word boundaries (UAX #29), so punctuation next to the
/// word is fine but "bank" does not match inside "banking". Words written in scripts
/// without spaces between words (Chinese, Japanese, Thai, ...) match as substrings,
/// because word boundaries cannot be found there without a dictionary.
///
/// Canonically equivalent spellings match each other: "café" with a precomposed "é" (NFC)
/// and with "e" plus a combining accent (NFD). Zero-width characters (zero-width space,
/// joiner and non-joiner, word joiner, soft hyphen, BOM) are invisible to the match: one
/// inside the word is skipped ("ban\u{200D}k" is "bank", and the span covers it), one next
/// to the word is left out of the span.
pub fn find_all(sentence: &str, word: &str) -> Vec<Range<usize>> {
    let word = word.trim();
    let mut want = Vec::new();
    let mut buffer = Vec::new();
    for c in word.chars().filter(|&c| !is_invisible(c)) {
        fold(c, &mut buffer);
        want.extend_from_slice(&buffer);
    }
    if want.is_empty() {
        return Vec::new();
    }
    let substring = word.chars().any(is_spaceless_script);
    let mut boundaries: Vec<usize> = sentence.split_word_bound_indices().map(|(i, _)| i).collect();
    boundaries.push(sentence.len());
    let is_boundary = |i: usize| substring || boundaries.binary_search(&i).is_ok();
    // A zero-width character after the word may belong to the word for UAX #29 (a joiner
    // does): the end is a boundary if one follows those characters.
    let ends_word = |end: usize| {
        is_boundary(end)
            || sentence[end..]
                .char_indices()
                .take_while(|&(_, c)| is_invisible(c))
                .any(|(i, c)| is_boundary(end + i + c.len_utf8()))
    };

    let mut found = Vec::new();
    let mut after = 0;
    for start in sentence.char_indices().map(|(i, _)| i) {
        if start < after || !is_boundary(start) {
            continue;
        }
        if let Some(end) = match_caseless(sentence, start, &want, &mut buffer)
            && ends_word(end)
        {
            found.push(start..end);
            after = end;
        }
    }
    found
}

/// Zero-width characters that do not change how a word looks or reads.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// `c` lowercased and canonically decomposed (NFD), into `out`.
fn fold(c: char, out: &mut Vec<char>) {
    out.clear();
    for lower in c.to_lowercase() {
        unicode_normalization::char::decompose_canonical(lower, |d| out.push(d));
    }
}

/// If `sentence[start..]` begins with the folded word `want` (ignoring case, canonical
/// equivalence and zero-width characters inside it), returns the end of the match.
fn match_caseless(sentence: &str, start: usize, want: &[char], buffer: &mut Vec<char>) -> Option<usize> {
    let mut want = want.iter().peekable();
    for (offset, c) in sentence[start..].char_indices() {
        if is_invisible(c) {
            if offset == 0 {
                return None;
            }
            continue;
        }
        fold(c, buffer);
        for folded in buffer.iter() {
            // A sentence character that folds to several characters must match whole.
            if want.next() != Some(folded) {
                return None;
            }
        }
        if want.peek().is_none() {
            return Some(start + offset + c.len_utf8());
        }
    }
    None
}

/// Scripts written without spaces between words.
fn is_spaceless_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // half-width Katakana
        | 0x20000..=0x2FFFF) // CJK extensions B-F
}

fn find_word(sentence: &str, word: &str, nth: usize) -> Result<Range<usize>> {
    if nth == 0 {
        return Err(Error::InvalidArgument("occurrences are counted from 1".into()));
    }
    let all = find_all(sentence, word);
    match all.get(nth - 1) {
        Some(span) => Ok(span.clone()),
        None if all.is_empty() => {
            Err(Error::WordNotInSentence { word: word.to_owned(), sentence: sentence.to_owned() })
        }
        None => Err(Error::OccurrenceOutOfRange {
            word: word.to_owned(),
            sentence: sentence.to_owned(),
            asked: nth,
            found: all.len(),
        }),
    }
}

fn check_span(sentence: &str, span: Range<usize>) -> Result<Range<usize>> {
    let invalid = |reason: String| Error::InvalidSpan { sentence: sentence.to_owned(), reason };
    if span.start >= span.end {
        return Err(invalid(format!("span {}..{} is empty", span.start, span.end)));
    }
    if span.end > sentence.len() {
        return Err(invalid(format!(
            "span {}..{} ends past the sentence's {} bytes",
            span.start,
            span.end,
            sentence.len()
        )));
    }
    if !sentence.is_char_boundary(span.start) || !sentence.is_char_boundary(span.end) {
        return Err(invalid(format!(
            "span {}..{} cuts through a character (offsets are UTF-8 bytes)",
            span.start, span.end
        )));
    }
    Ok(span)
}

fn token_span(sentence: &str, index: usize) -> Result<Range<usize>> {
    let mut tokens = sentence.split_whitespace();
    let count = sentence.split_whitespace().count();
    let token = tokens.nth(index).ok_or_else(|| Error::InvalidSpan {
        sentence: sentence.to_owned(),
        reason: format!("token index {index} is out of range: the sentence has {count} whitespace-separated tokens (counted from 0)"),
    })?;
    // `split_whitespace` yields subslices of `sentence`, so the pointer offset is the byte offset.
    let start = token.as_ptr() as usize - sentence.as_ptr() as usize;
    // WiC's sentences are tokenized, punctuation apart; in untokenized text the token
    // "bank." means the word "bank". A token of punctuation only is kept whole.
    let word = token.trim_matches(|c: char| !c.is_alphanumeric() && !unicode_normalization::char::is_combining_mark(c));
    if word.is_empty() {
        return Ok(start..start + token.len());
    }
    let lead = word.as_ptr() as usize - token.as_ptr() as usize;
    Ok(start + lead..start + lead + word.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans<'a>(sentence: &'a str, word: &str) -> Vec<&'a str> {
        find_all(sentence, word).into_iter().map(|r| &sentence[r]).collect()
    }

    #[test]
    fn whole_word_case_insensitive_with_punctuation() {
        assert_eq!(spans("Bank, bank! (bank) banking embank", "bank"), ["Bank", "bank", "bank"]);
        assert_eq!(spans("the river-bank", "BANK"), ["bank"]);
    }

    #[test]
    fn non_ascii_and_multiword() {
        assert_eq!(spans("Un café à Zürich, CAFÉ.", "café"), ["café", "CAFÉ"]);
        assert_eq!(spans("I like ice cream, Ice Cream!", "ice cream"), ["ice cream", "Ice Cream"]);
        assert_eq!(spans("naïveté is naïve", "naïve"), ["naïve"]);
    }

    #[test]
    fn canonical_equivalents_and_zero_width_characters() {
        let (nfc, nfd) = ("caf\u{e9}", "cafe\u{301}");
        for (sentence, word) in [(nfc, nfd), (nfd, nfc), (nfd, nfd), (nfc, nfc)] {
            assert_eq!(spans(&format!("Un {sentence}, svp."), word), [sentence], "{sentence:?} {word:?}");
        }
        assert!(spans(nfd, "cafe").is_empty(), "the accent belongs to the word");
        assert_eq!(spans("CAFE\u{301}!", nfc), ["CAFE\u{301}"]);
        assert_eq!(spans("the ban\u{200d}k and the ban\u{200b}k", "bank"), ["ban\u{200d}k", "ban\u{200b}k"]);
        assert_eq!(spans("a \u{200b}bank\u{200d} b bank\u{ad}", "bank"), ["bank", "bank"]);
        assert_eq!(spans("bank", "ba\u{200b}nk"), ["bank"]);
        assert!(spans("\u{200b}\u{200d}", "\u{200b}").is_empty());
        assert!(spans("bank\u{200d}ing", "bank").is_empty(), "a joiner does not split a word");
    }

    #[test]
    fn spaceless_scripts_match_substrings() {
        assert_eq!(spans("我在银行工作。", "银行"), ["银行"]);
        assert_eq!(spans("東京タワーに行った", "タワー"), ["タワー"]);
    }

    #[test]
    fn nth_occurrence_and_errors() {
        let s = "bank one, bank two";
        assert_eq!(Occurrence::locate("bank", s, &Locator::Search { nth: 2 }).unwrap().span, 10..14);
        let err = Occurrence::locate("bank", s, &Locator::Search { nth: 3 }).unwrap_err();
        assert!(matches!(err, Error::OccurrenceOutOfRange { found: 2, asked: 3, .. }), "{err}");
        let err = Occurrence::find("bank", "I went banking").unwrap_err();
        assert!(err.to_string().contains("\"bank\"") && err.to_string().contains("I went banking"));
    }

    #[test]
    fn explicit_span_and_token_index() {
        let s = "Ça marche  bien";
        assert_eq!(Occurrence::locate("", s, &Locator::TokenIndex(2)).unwrap().word(), "bien");
        assert!(Occurrence::locate("", s, &Locator::TokenIndex(3)).is_err());
        assert_eq!(Occurrence::locate("", s, &Locator::Span(0..3)).unwrap().word(), "Ça");
        assert!(Occurrence::locate("", s, &Locator::Span(0..1)).is_err(), "cuts through Ç");
        assert!(Occurrence::locate("", s, &Locator::Span(3..100)).is_err());
        assert!(Occurrence::locate("", s, &Locator::Span(3..3)).is_err());
        let s = "The Bank, by the «river-bank». ... cafe\u{301}.";
        let token = |i| Occurrence::locate("", s, &Locator::TokenIndex(i)).unwrap().word().to_owned();
        assert_eq!([token(1), token(4), token(5), token(6)], ["Bank", "river-bank", "...", "cafe\u{301}"]);
    }
}
