//! `vecshift compare`: how one word's vector moves across sentences, layer by layer.

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;
use vecshift::{Embedder, cosine_matrix, mean_off_diagonal};

use super::GlobalArgs;
use super::output::{LocateArgs, fmt_cos, print_json};
use super::sentences::{Row, SentenceInput, locate_rows};

/// Arguments of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    input: SentenceInput,
    /// Layer whose BERT matrix the table shows (negative counts from the last).
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    layer: isize,
    #[command(flatten)]
    locate: LocateArgs,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

#[derive(Serialize)]
struct StaticJson {
    model: String,
    matrix: Vec<Vec<f32>>,
    mean_similarity: f32,
}

#[derive(Serialize)]
struct LayerJson {
    layer: usize,
    matrix: Vec<Vec<f32>>,
    mean_similarity: f32,
}

#[derive(Serialize)]
struct ContextualJson {
    model: String,
    pooling: vecshift::Pooling,
    layers: Vec<LayerJson>,
}

#[derive(Serialize)]
struct CompareJson {
    word: String,
    sentences: Vec<String>,
    spans: Vec<[usize; 2]>,
    senses: Vec<Option<String>>,
    #[serde(rename = "static")]
    static_: Option<StaticJson>,
    contextual: ContextualJson,
}

pub fn run(global: &GlobalArgs, args: CompareArgs) -> Result<()> {
    let (word, rows, _) = args.input.word_and_rows(None)?;
    let found = locate_rows(rows, |sentence| args.locate.occurrence(sentence, &word), args.input.strict)?;
    if found.len() < 2 {
        let hint = if args.input.word.is_some() && args.input.given_rows().is_none() {
            format!(" (there is no example set data/sentences/{}.tsv)", word.to_lowercase())
        } else {
            String::new()
        };
        bail!(
            "compare needs at least two sentences with {word:?}, found {}{hint}; give them with --sentences FILE or -s S1 -s S2 ...",
            found.len()
        );
    }
    let (rows, occurrences): (Vec<_>, Vec<_>) = found.into_iter().unzip();

    let glove = global.load_static()?;
    let bert = global.load_bert()?;
    let static_ = match glove.embed_batch(&occurrences) {
        Ok(vectors) => {
            if let Some(zero) = vectors.iter().position(|v| v.layers()[0].iter().all(|&x| x == 0.0)) {
                log::warn!(
                    "the static vector of {:?} in {} is all zeros, so its cosines are undefined (n/a in the table, null in JSON)",
                    occurrences[zero].word(),
                    glove.name()
                );
            }
            let matrix = cosine_matrix(&vectors.iter().map(|v| v.layers()[0].clone()).collect::<Vec<_>>());
            Some(StaticJson { model: glove.name().into(), mean_similarity: mean_off_diagonal(&matrix), matrix })
        }
        Err(e) => {
            log::warn!("{e}; the static comparison is left out");
            None
        }
    };
    let vectors = bert.embed_batch(&occurrences)?;
    let layers = (0..bert.num_layers())
        .map(|layer| {
            let matrix = cosine_matrix(&vectors.iter().map(|v| v.layers()[layer].clone()).collect::<Vec<_>>());
            LayerJson { layer, mean_similarity: mean_off_diagonal(&matrix), matrix }
        })
        .collect();
    let out = CompareJson {
        word,
        sentences: occurrences.iter().map(|o| o.sentence.clone()).collect(),
        spans: occurrences.iter().map(|o| [o.span.start, o.span.end]).collect(),
        senses: rows.iter().map(|r: &Row| r.sense.clone()).collect(),
        static_,
        contextual: ContextualJson { model: bert.name().into(), pooling: bert.pooling(), layers },
    };
    if global.json {
        return print_json(&out);
    }
    let shown = vecshift::LayerSelection::Layer(args.layer).range(bert.num_layers())?.start;
    print_table(&out, shown);
    Ok(())
}

/// Widest matrix that still fits in 80 columns (4 + 6 per column).
const MAX_MATRIX_COLUMNS: usize = 12;

fn print_table(out: &CompareJson, shown: usize) {
    let n = out.sentences.len();
    println!("{:?} in {n} sentences; BERT {} ({} pooling)", out.word, out.contextual.model, out.contextual.pooling);
    let static_mean = out.static_.as_ref().map(|s| s.mean_similarity);
    match (&out.static_, static_mean) {
        (Some(s), Some(mean)) => println!("static {}: one vector for every sentence, mean cosine {}", s.model, fmt_cos(mean)),
        _ => println!("static: the word is not in the vocabulary"),
    }
    println!();
    println!("layer  mean cosine  (0 = embeddings output; static = {})", static_mean.map_or("n/a".into(), fmt_cos));
    for layer in &out.contextual.layers {
        let bar_len = if layer.mean_similarity.is_nan() { 0 } else { (layer.mean_similarity.max(0.0) * 40.0).round() as usize };
        println!("{:>5}  {}        {}", layer.layer, fmt_cos(layer.mean_similarity), "#".repeat(bar_len));
    }
    println!();
    if n <= MAX_MATRIX_COLUMNS {
        println!("pairwise cosines at layer {shown} (static: all {}):", static_mean.map_or("n/a".into(), fmt_cos));
        print!("    ");
        for j in 0..n {
            print!(" {:>5}", format!("S{}", j + 1));
        }
        println!();
        for (i, row) in out.contextual.layers[shown].matrix.iter().enumerate() {
            print!("{:>4}", format!("S{}", i + 1));
            for v in row {
                print!(" {}", fmt_cos(*v));
            }
            println!();
        }
    } else {
        println!("({n} sentences: the matrices are in the --json output)");
    }
    println!();
    for (i, (sentence, sense)) in out.sentences.iter().zip(&out.senses).enumerate() {
        let label = sense.as_ref().map(|s| format!("[{s}] ")).unwrap_or_default();
        let text = format!("{label}{sentence}");
        let clipped: String = text.chars().take(72).collect();
        let ellipsis = if clipped.len() < text.len() { "..." } else { "" };
        println!("{:>4} {clipped}{ellipsis}", format!("S{}", i + 1));
    }
}
