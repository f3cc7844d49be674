//! `vecshift compare`: how one word's vector moves across sentences, layer by layer.

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use vecshift::analysis::postprocess::Postprocess;
use vecshift::{Embedder, Occurrence, cosine_matrix, mean_off_diagonal};

use super::GlobalArgs;
use super::output::{LocateArgs, fmt_cos, print_json, warn_about_embedding};
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
    /// Anisotropy correction of the contextual vectors before the cosines: none, center,
    /// all-but-the-top:D, whiten or standardize, fitted per layer on the sentences' own
    /// occurrences, or on --fit (better: with a few sentences, centring alone pulls their mean
    /// cosine towards -1/(n-1)). The static vectors are left as they are: a correction maps one
    /// vector to one vector, so their cosines would stay 1.000.
    #[arg(long, value_name = "METHOD", default_value = "none")]
    postprocess: Postprocess,
    #[command(flatten)]
    fit: super::postprocess::FitArgs,
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

#[derive(Clone, Serialize)]
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
    /// Every engine, static ones first, each in the order given.
    engines: Vec<EngineJson>,
    /// The correction applied to the contextual vectors (`none`: raw).
    postprocess: String,
    /// What it was fitted on: `null` for the occurrences themselves (or no correction), else the
    /// --fit corpus with its size.
    fit: Option<String>,
    /// Each `--variant` engine against its original: drift per layer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    variants: Vec<vecshift::compress::VariantDrift>,
}

#[derive(Serialize)]
struct EngineJson {
    name: String,
    kind: vecshift::EngineKind,
    architecture: String,
    layers: Vec<LayerJson>,
}

/// Embeds every occurrence; the first one the engine cannot embed stops it, naming the sentence.
fn embed_all(engine: &dyn Embedder, occurrences: &[Occurrence], pooling: vecshift::Pooling) -> Result<Vec<vecshift::LayerVectors>> {
    engine
        .embed_batch(occurrences, pooling)?
        .into_iter()
        .enumerate()
        .map(|(i, found)| {
            let found = found.with_context(|| format!("{}: sentence {}", engine.name(), i + 1))?;
            warn_about_embedding(engine, &found, &occurrences[i], &format!("sentence {}", i + 1));
            Ok(found.vectors)
        })
        .collect()
}

/// Pairwise cosines and their mean at every layer of one engine.
fn engine_json(engine: &dyn Embedder, vectors: &[vecshift::LayerVectors]) -> EngineJson {
    let layers = (0..engine.num_layers())
        .map(|layer| {
            let matrix = cosine_matrix(&vectors.iter().map(|v| v.layers()[layer].clone()).collect::<Vec<_>>());
            LayerJson { layer, mean_similarity: mean_off_diagonal(&matrix), matrix }
        })
        .collect();
    EngineJson { name: engine.name().into(), kind: engine.kind(), architecture: engine.architecture().into(), layers }
}

pub fn run(global: &GlobalArgs, args: CompareArgs) -> Result<()> {
    if args.fit.fit.is_some() && args.postprocess == Postprocess::None {
        bail!("--fit is the corpus that the --postprocess correction is fitted on; add --postprocess (e.g. --postprocess whiten)");
    }
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

    let statics = global.load_static_engines()?;
    let contextuals = global.load_contextual_engines()?;
    let mut engines = Vec::new();
    let mut static_ = None;
    for glove in &statics {
        match embed_all(glove, &occurrences, global.pooling_for(glove)) {
            Ok(vectors) => {
                if let Some(zero) = vectors.iter().position(|v| v.layers()[0].iter().all(|&x| x == 0.0)) {
                    log::warn!(
                        "the static vector of {:?} in {} is all zeros, so its cosines are undefined (n/a in the table, null in JSON)",
                        occurrences[zero].word(),
                        glove.name()
                    );
                }
                let engine = engine_json(glove, &vectors);
                let first = &engine.layers[0];
                static_.get_or_insert_with(|| StaticJson {
                    model: glove.name().into(),
                    mean_similarity: first.mean_similarity,
                    matrix: first.matrix.clone(),
                });
                engines.push(engine);
            }
            Err(e) => log::warn!("{e}; the static comparison with {} is left out", glove.name()),
        }
    }
    let mut contextual = None;
    let mut fit_name = None;
    if args.postprocess != Postprocess::None && args.fit.fit.is_none() {
        log::warn!(
            "--postprocess {} is fitted per layer on the {} occurrences compared; with few of them it mostly measures them (centring alone pulls their mean cosine towards {:.2}): --fit CORPUS fits it on other text",
            args.postprocess,
            occurrences.len(),
            -1.0 / (occurrences.len() as f64 - 1.0)
        );
    }
    for bert in &contextuals {
        let pooling = global.pooling_for(bert);
        let mut vectors = embed_all(bert, &occurrences, pooling)?;
        if args.postprocess != Postprocess::None {
            let corpus = args.fit.vectors(bert)?;
            let fit_on = corpus.as_ref().map_or(vectors.as_slice(), |(_, v)| v.as_slice());
            vectors = args.postprocess.correct_layers(&vectors, fit_on).with_context(|| format!("--postprocess {}", args.postprocess))?;
            fit_name = corpus.map(|(name, v)| format!("{name} ({} occurrences)", v.len()));
        }
        let engine = engine_json(bert, &vectors);
        contextual.get_or_insert_with(|| ContextualJson { model: bert.name().into(), pooling, layers: engine.layers.clone() });
        engines.push(engine);
    }
    let contextual = contextual.expect("at least one contextual engine is loaded");
    let senses: Vec<Option<String>> = rows.iter().map(|r: &Row| r.sense.clone()).collect();
    let variants = global
        .variant_pairs(contextuals.len())
        .into_iter()
        .map(|(engine, base, variant)| {
            let pooling = global.pooling_for(&contextuals[base]);
            vecshift::compress::variant_drift(&contextuals[base], &contextuals[engine], &variant, &occurrences, &senses, pooling)
                .with_context(|| format!("drift of {}", contextuals[engine].name()))
        })
        .collect::<Result<Vec<_>>>()?;
    let out = CompareJson {
        word,
        sentences: occurrences.iter().map(|o| o.sentence().to_owned()).collect(),
        spans: occurrences.iter().map(|o| [o.span().start, o.span().end]).collect(),
        senses,
        static_,
        contextual,
        engines,
        postprocess: args.postprocess.to_string(),
        fit: fit_name,
        variants,
    };
    let bert = &contextuals[0];
    if global.json {
        return print_json(&out);
    }
    let shown = vecshift::LayerSelection::Layer(args.layer).range(bert.num_layers())?.start;
    print_table(&out, shown);
    Ok(())
}

fn kind_name(kind: vecshift::EngineKind) -> &'static str {
    match kind {
        vecshift::EngineKind::Static => "static",
        vecshift::EngineKind::Contextual => "contextual",
    }
}

/// Widest matrix that still fits in 80 columns (4 + 6 per column).
const MAX_MATRIX_COLUMNS: usize = 12;

fn print_table(out: &CompareJson, shown: usize) {
    let n = out.sentences.len();
    println!("{:?} in {n} sentences; BERT {} ({} pooling)", out.word, out.contextual.model, out.contextual.pooling);
    if out.postprocess != "none" {
        let on = out.fit.clone().unwrap_or_else(|| format!("the {n} occurrences compared"));
        println!("contextual vectors corrected: {}, fitted per layer on {on} (static vectors as they are)", out.postprocess);
    }
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
    let (statics, contextuals): (Vec<&EngineJson>, Vec<&EngineJson>) =
        out.engines.iter().partition(|e| e.kind == vecshift::EngineKind::Static);
    let others: Vec<&EngineJson> = statics.iter().skip(1).chain(contextuals.iter().skip(1)).copied().collect();
    if !others.is_empty() {
        println!();
        println!("other engines: mean cosine per layer (0 = embeddings output)");
        for engine in others {
            let means: Vec<String> = engine.layers.iter().map(|l| fmt_cos(l.mean_similarity)).collect();
            println!("  {} ({}, {}): {}", engine.name, engine.architecture, kind_name(engine.kind), means.join(" "));
        }
    }
    for v in &out.variants {
        println!();
        println!(
            "{} against {}: cosine of each occurrence's two vectors ({} bytes of weights, original {}; {:.0} tokens/s, original {:.0})",
            v.engine, v.base, v.bytes, v.base_bytes, v.tokens_per_second, v.base_tokens_per_second
        );
        println!("  layer   mean    min     p5  self-sim Δ  sense-sep Δ  overlap@10");
        let delta = |d: Option<f64>| d.map_or("n/a".to_owned(), |d| format!("{d:+.4}"));
        for l in &v.layers {
            println!(
                "  {:>5} {:.4} {:.4} {:.4} {:>11} {:>12} {:>11}",
                l.layer,
                l.drift_mean,
                l.drift_min,
                l.drift_p5,
                delta(l.self_similarity_delta),
                delta(l.sense_separation_delta),
                l.neighbour_overlap.map_or("n/a".to_owned(), |o| format!("{o:.2}"))
            );
        }
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
