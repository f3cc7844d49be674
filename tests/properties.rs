//! Properties checked on generated inputs (proptest): batching does not change BERT's vectors,
//! a static vector ignores its sentence, cosines stay in [-1, 1], and every occurrence the
//! finder reports slices back to the word.

use std::ops::Range;
use std::sync::OnceLock;

use proptest::prelude::*;
use vecshift::occurrence::find_all;
use vecshift::{BertEncoder, Embedder, Locator, Occurrence, Pooling, StaticEngine, cosine, cosine_matrix, mean_off_diagonal};

#[path = "../fuzz/src/fold.rs"]
mod fold;
use fold::folded;

fn bert() -> &'static BertEncoder {
    static BERT: OnceLock<BertEncoder> = OnceLock::new();
    BERT.get_or_init(|| BertEncoder::load_default().expect("the embedded BERT model loads"))
}

fn glove() -> &'static StaticEngine {
    static GLOVE: OnceLock<StaticEngine> = OnceLock::new();
    GLOVE.get_or_init(|| StaticEngine::open_default().expect("the embedded GloVe vectors load"))
}

const FILLER: &[&str] = &[
    "the", "a", "river", "money", "we", "sat", "on", "approved", "my", "loan", "yesterday", "Zürich", "naïve",
    "银行", "!", ",", "(", ")", "\u{1F600}", "e\u{301}", "don't", "3.14", "mother-in-law", "\u{200B}",
];
const TARGETS: &[&str] = &[
    "bank", "spring", "bat", "Bank", "café", "cafe\u{301}", "ice cream", "straße", "STRAẞE", "İstanbul", "ΣΟΦΊΑ", "ﬁle",
    "ǅemal", "银行", "タワー", "x", "ban\u{200D}k", "n\u{303}o\u{308}",
];

/// A sentence of filler words (and arbitrary text) with `word` somewhere in it, and its span.
fn sentence_with(word: &'static str) -> impl Strategy<Value = (String, Range<usize>)> {
    (
        prop::collection::vec(prop::sample::select(FILLER), 0..12),
        "\\PC{0,12}",
        prop::collection::vec(prop::sample::select(FILLER), 0..12),
    )
        .prop_map(move |(before, noise, after)| {
            let mut sentence = format!("{noise} {} ", before.join(" "));
            let start = sentence.len();
            sentence.push_str(word);
            let span = start..sentence.len();
            sentence.push(' ');
            sentence.push_str(&after.join(" "));
            (sentence, span)
        })
}

fn occurrence(sentence: &str, span: Range<usize>) -> Occurrence {
    Occurrence::locate("", sentence, &Locator::Span(span)).expect("the span is the word's")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// One padded batch gives each occurrence the vectors it gets alone, at every layer (also
    /// with a sentence longer than the model's 512 positions, encoded in a window).
    #[test]
    fn bert_batched_equals_one_at_a_time(
        sentences in prop::collection::vec(prop::sample::select(TARGETS).prop_flat_map(sentence_with), 1..5),
        long in prop::option::weighted(0.25, 0..4usize),
    ) {
        let mut occurrences: Vec<Occurrence> = sentences.iter().map(|(s, span)| occurrence(s, span.clone())).collect();
        if let Some(at) = long {
            let filler = "the river bank ".repeat(200);
            let sentence = format!("{} {filler}", filler.repeat(at % 2));
            let start = sentence.find("bank").unwrap();
            occurrences.push(occurrence(&sentence, start..start + 4));
        }
        let bert = bert();
        let batched: Vec<_> = bert.embed_batch(&occurrences, Pooling::Mean).unwrap().into_iter().map(|r| r.unwrap().vectors).collect();
        prop_assert_eq!(batched.len(), occurrences.len());
        for (occ, together) in occurrences.iter().zip(&batched) {
            let alone = bert.embed(occ, Pooling::Mean).unwrap().vectors;
            prop_assert_eq!(alone.num_layers(), together.num_layers());
            for (layer, (a, b)) in alone.layers().iter().zip(together.layers()).enumerate() {
                let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
                prop_assert!(worst <= 1e-5, "layer {layer} differs by {worst} in {:?}", occ.sentence());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A word's static vector is the same, bit for bit, whatever the sentence around it.
    #[test]
    fn static_vector_ignores_the_sentence(
        index in 0..5000usize,
        capitalise in any::<bool>(),
        contexts in prop::collection::vec(("\\PC{0,20}", "\\PC{0,20}"), 1..6),
    ) {
        let glove = glove();
        let word = &glove.words()[index];
        prop_assume!(word.chars().all(|c| c.is_ascii_alphanumeric()));
        let written = if capitalise { word.to_ascii_uppercase() } else { word.clone() };
        let occurrences: Vec<Occurrence> = contexts
            .iter()
            .map(|(before, after)| {
                let sentence = format!("{before} {written} {after}");
                let start = before.len() + 1;
                occurrence(&sentence, start..start + written.len())
            })
            .collect();
        let expected = glove.lookup(word).unwrap().vector;
        for vectors in glove.embed_batch(&occurrences, Pooling::Mean).unwrap().into_iter().map(|r| r.unwrap().vectors) {
            prop_assert_eq!(vectors.num_layers(), 1);
            let bits: Vec<u32> = vectors.layers()[0].iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(bits, expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }
}

/// Finite components from subnormal to near `f32::MAX`, of either sign, and zeros.
fn component() -> impl Strategy<Value = f32> {
    prop_oneof![
        1 => Just(0.0f32),
        2 => (-1.0f32..=1.0, -45i32..=38).prop_map(|(m, e)| (f64::from(m) * 10f64.powi(e)) as f32),
        1 => prop::num::f32::NORMAL | prop::num::f32::SUBNORMAL | prop::num::f32::ZERO,
    ]
    .prop_filter("finite", |v| v.is_finite())
}

/// Vectors of one length, each scaled by its own power of ten.
fn vectors() -> impl Strategy<Value = Vec<Vec<f32>>> {
    (1..48usize, 1..6usize).prop_flat_map(|(dims, count)| {
        prop::collection::vec(
            (prop::collection::vec(component(), dims), -40i32..=38).prop_map(|(v, e)| {
                let scale = 10f64.powi(e);
                v.into_iter().map(|x| (f64::from(x) * scale) as f32).map(|x| if x.is_finite() { x } else { f32::MAX.copysign(x) }).collect()
            }),
            count,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Cosines lie in [-1, 1] whatever the magnitudes; NaN only where a vector is all zeros.
    #[test]
    fn cosines_lie_in_the_unit_interval(vectors in vectors()) {
        let zero = |v: &[f32]| v.iter().all(|&x| x == 0.0);
        let matrix = cosine_matrix(&vectors);
        for (i, a) in vectors.iter().enumerate() {
            for (j, b) in vectors.iter().enumerate() {
                let c = cosine(a, b);
                prop_assert_eq!(c.to_bits(), matrix[i][j].to_bits());
                if zero(a) || zero(b) {
                    prop_assert!(c.is_nan(), "cos({a:?}, {b:?}) = {c}");
                } else {
                    prop_assert!((-1.0..=1.0).contains(&c), "cos({a:?}, {b:?}) = {c}");
                    if i == j {
                        prop_assert!((c - 1.0).abs() <= 1e-6, "cos(v, v) = {c} for {a:?}");
                    }
                }
            }
        }
        let mean = mean_off_diagonal(&matrix);
        if vectors.len() >= 2 && !vectors.iter().any(|v| zero(v)) {
            prop_assert!((-1.0..=1.0).contains(&mean), "mean {mean}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Every found span lies on character boundaries, in order, and slices back to the word
    /// (ignoring case, canonical equivalence and zero-width characters, as the finder does);
    /// a copy of the word between spaces is always found.
    #[test]
    fn found_spans_slice_back_to_the_word(
        word in prop_oneof![3 => prop::sample::select(TARGETS).prop_map(str::to_owned), 1 => "\\PC{1,6}"],
        pieces in prop::collection::vec(("\\PC{0,16}", any::<bool>()), 0..6),
        nth in 1..4usize,
    ) {
        let mut sentence = String::new();
        let mut inserted = Vec::new();
        for (text, with_word) in &pieces {
            sentence.push_str(text);
            if *with_word {
                sentence.push(' ');
                inserted.push(sentence.len()..sentence.len() + word.len());
                sentence.push_str(&word);
                sentence.push(' ');
            }
        }
        let found = find_all(&sentence, &word);
        let mut after = 0;
        for span in &found {
            prop_assert!(after <= span.start && span.start < span.end, "{found:?}");
            let text = sentence.get(span.clone());
            prop_assert!(text.is_some(), "{span:?} is not on character boundaries of {sentence:?}");
            prop_assert_eq!(folded(text.unwrap()), folded(word.trim()), "{:?} in {:?}", span, sentence);
            after = span.end;
        }
        if TARGETS.contains(&word.as_str()) {
            for span in &inserted {
                prop_assert!(found.contains(span), "{word:?} at {span:?} not found in {sentence:?}: {found:?}");
            }
        }
        match Occurrence::locate(&word, &sentence, &Locator::Search { nth }) {
            Ok(occ) => prop_assert_eq!(Some(&occ.span()), found.get(nth - 1)),
            Err(_) => prop_assert!(found.len() < nth),
        }
    }
}
