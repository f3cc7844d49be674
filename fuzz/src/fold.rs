//! A word as the occurrence finder compares it (shared by the fuzz checks and
//! `tests/properties.rs`).

/// `s` with zero-width characters dropped, lowercased, each character canonically decomposed:
/// two strings the finder matches to each other fold to the same string.
pub fn folded(s: &str) -> String {
    let invisible = |c: &char| matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}');
    let mut out = String::new();
    for c in s.chars().filter(|c| !invisible(c)).flat_map(char::to_lowercase) {
        unicode_normalization::char::decompose_canonical(c, |d| out.push(d));
    }
    out
}
