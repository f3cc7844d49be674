//! `vecshift eval`: word similarity, analogies and WiC against published test sets.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::builder::RangedU64ValueParser;
use clap::{Args, Subcommand};
use vecshift::analysis::postprocess::Postprocess;
use vecshift::eval::{analogy, deltas, wic, wordsim, wsd};
use vecshift::{Embedder, LayerSelection, LayerVectors};

use super::{Before, GlobalArgs};
use super::output::print_json;

/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Pearson and Spearman correlation of cosines with human similarity scores (WordSim-353, SimLex-999, RG-65, ...).
    Wordsim(WordsimArgs),
    /// 3CosAdd accuracy on a questions-words.txt style analogy file, per section.
    Analogy(AnalogyArgs),
    /// WiC: per BERT layer, accuracy of a cosine threshold at telling same-sense from different-sense pairs.
    Wic(WicArgs),
    /// Word sense disambiguation: per layer, 1-NN and nearest-centroid accuracy and macro-F1 against training occurrences.
    Wsd(WsdArgs),
}

/// Anisotropy corrections and layer selections, shared by `eval wic` and `eval wsd`.
#[derive(Debug, Args)]
struct CorrectionArgs {
    /// Correction(s) before cosines, comma-separated: none, center, all-but-the-top:D, whiten,
    /// standardize. The first is applied to the per-layer table; with several, every one is scored.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    postprocess: Vec<Postprocess>,
    /// Also score these layer selections (repeatable): a layer, a range such as 3..=6 (mean of the
    /// layers), or all.
    #[arg(long = "layers", value_name = "SEL", allow_hyphen_values = true)]
    selections: Vec<LayerSelection>,
    #[command(flatten)]
    fit: super::postprocess::FitArgs,
}

impl CorrectionArgs {
    /// The --fit corpus embedded by `engine`, named with its size, when given.
    fn fit_vectors(&self, engine: &dyn Embedder) -> Result<Option<(String, Vec<LayerVectors>)>> {
        Ok(self.fit.vectors(engine)?.map(|(name, vectors)| (format!("{name} ({} occurrences)", vectors.len()), vectors)))
    }
}

/// Arguments of `eval wordsim`.
#[derive(Debug, Args)]
struct WordsimArgs {
    /// Word-pair files: `word1 word2 score` per line (tab or spaces; `#` comments and a header line are skipped).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Search only the N most frequent words, as gensim's evaluate_word_pairs does by default.
    #[arg(long, value_name = "N", default_value_t = analogy::DEFAULT_RESTRICT_VOCAB, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    restrict_vocab: usize,
    /// Also list every pair: its human score and static cosine (JSON: "pairs"), and the
    /// out-of-vocabulary pairs.
    #[arg(long)]
    per_pair: bool,
    /// Skip the BERT model (static vectors only).
    #[arg(long)]
    static_only: bool,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

/// Arguments of `eval analogy`.
#[derive(Debug, Args)]
struct AnalogyArgs {
    /// Analogy questions: `: section` lines, then `a b c d` (a is to b as c is to d).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Search only the N most frequent words, as gensim does.
    #[arg(long, value_name = "N", default_value_t = analogy::DEFAULT_RESTRICT_VOCAB, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    restrict_vocab: usize,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

/// Arguments of `eval wic`.
#[derive(Debug, Args)]
struct WicArgs {
    /// WiC data file (target, POS, i-j, sentence1, sentence2; tab-separated).
    data: PathBuf,
    /// The matching gold file (T or F per line).
    gold: PathBuf,
    /// Training split to choose the thresholds on (else cross-validation on DATA).
    #[arg(long, num_args = 2, value_names = ["DATA", "GOLD"])]
    train: Option<Vec<PathBuf>>,
    /// Folds of the cross-validation used without --train.
    #[arg(long, default_value_t = wic::DEFAULT_FOLDS, value_parser = RangedU64ValueParser::<usize>::new().range(2..))]
    folds: usize,
    #[command(flatten)]
    corrections: CorrectionArgs,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

/// Arguments of `eval wsd`.
#[derive(Debug, Args)]
struct WsdArgs {
    /// TRAIN_DATA TRAIN_GOLD TEST_DATA TEST_GOLD (`<token index>TAB<sentence>` per data line, one
    /// sense id per gold line), or one folder of `<word>/{train,test}.{data,gold}.txt`.
    #[arg(required = true, num_args = 1..=4, value_name = "FILES")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    corrections: CorrectionArgs,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

pub fn run(before: &Before, args: EvalArgs) -> Result<()> {
    match args.command {
        EvalCommand::Wordsim(a) => run_wordsim(&before.options("eval wordsim", Some(&a.bert), Some(&a.vectors), Some(&a.json))?, a),
        EvalCommand::Analogy(a) => run_analogy(&before.options("eval analogy", None, Some(&a.vectors), Some(&a.json))?, a),
        EvalCommand::Wic(a) => run_wic(&before.options("eval wic", Some(&a.bert), None, Some(&a.json))?, a),
        EvalCommand::Wsd(a) => run_wsd(&before.options("eval wsd", Some(&a.bert), None, Some(&a.json))?, a),
    }
}

fn run_wordsim(global: &GlobalArgs, args: WordsimArgs) -> Result<()> {
    // Read every file first, so a broken one fails before minutes of model loading.
    let sets = args
        .files
        .iter()
        .map(|f| wordsim::WordPairSet::read(f).context("reading a word-pair file for `eval wordsim`"))
        .collect::<Result<Vec<_>>>()?;
    let statics = global.load_static_engines()?;
    let contextual = if args.static_only { Vec::new() } else { global.load_contextual_engines()? };
    let glove = &statics[0];
    let restrict = Some(args.restrict_vocab);
    let static_refs: Vec<&vecshift::StaticEngine> = statics.iter().collect();
    let models: Vec<(&dyn Embedder, vecshift::Pooling)> = contextual.iter().map(|b| (b as &dyn Embedder, global.pooling_for(b))).collect();
    let mut results = sets
        .iter()
        .map(|set| wordsim::evaluate_engines(&static_refs, &models, set, restrict).with_context(|| format!("evaluating {}", set.file)))
        .collect::<Result<Vec<_>>>()?;
    let variant_pairs = global.variant_pairs(contextual.len());
    for r in &mut results {
        r.variants = variant_pairs
            .iter()
            .map(|(v, b, variant)| {
                let spearman = |e: usize| -> Vec<Option<f64>> { r.engines[statics.len() + e].layers.iter().map(|l| l.spearman).collect() };
                let layers = deltas::layer_deltas(&spearman(*b), &spearman(*v), &variant.layer_map(contextual[*b].num_layers() - 1))
                    .into_iter()
                    .map(|(layer, spearman_delta)| deltas::SpearmanDelta { layer, spearman_delta })
                    .collect();
                deltas::VariantDeltas { engine: contextual[*v].name().to_owned(), base: contextual[*b].name().to_owned(), variant: variant.to_string(), layers }
            })
            .collect();
    }
    let pairs: Vec<Vec<PairJson>> = sets
        .iter()
        .map(|set| {
            let scores = wordsim::static_scores(glove, set, restrict);
            scores
                .used
                .iter()
                .zip(&scores.cosines)
                .map(|(&i, &cosine)| {
                    let p = &set.pairs[i];
                    PairJson { word1: p.first.clone(), word2: p.second.clone(), line: p.line, score: p.score, cosine }
                })
                .collect()
        })
        .collect();
    if global.json {
        if args.per_pair {
            let with_pairs: Vec<WordsimJson> =
                results.into_iter().zip(pairs).map(|(result, pairs)| WordsimJson { result, pairs }).collect();
            return print_json(&with_pairs);
        }
        return print_json(&results);
    }
    for (e, engine) in statics.iter().enumerate() {
        if e > 0 {
            println!();
        }
        let searched = args.restrict_vocab.min(engine.vocab_len());
        println!("word similarity: cosine vs human scores; static {} ({searched} words searched, case-insensitive)", engine.name());
        println!("{:<28} {:>6} {:>6} {:>5} {:>8} {:>8}", "file", "pairs", "used", "oov", "pearson", "spearman");
        for r in &results {
            let c = &r.engines[e];
            let layer = &c.layers[0];
            println!("{:<28} {:>6} {:>6} {:>5} {:>8} {:>8}", r.file, r.pairs_total, c.pairs_used, c.oov, fmt_corr(layer.pearson), fmt_corr(layer.spearman));
        }
    }
    if args.per_pair {
        for (r, pairs) in results.iter().zip(&pairs) {
            println!();
            println!("{}: {} pairs used (human score, static cosine{})", r.file, pairs.len(), if statics.len() > 1 { format!(" of {}", glove.name()) } else { String::new() });
            for p in pairs {
                println!("  {:<20} {:<20} {:>8.3} {:>8.4}", p.word1, p.word2, p.score, p.cosine);
            }
            if !r.oov_pairs.is_empty() {
                let listed: Vec<String> = r.oov_pairs.iter().map(|[a, b]| format!("{a}-{b}")).collect();
                println!("  out of vocabulary ({}): {}", r.oov_pairs.len(), listed.join(", "));
            }
        }
    }
    for (c, bert) in contextual.iter().enumerate() {
        let e = statics.len() + c;
        println!();
        println!("{} per layer, each word alone ([CLS] word [SEP]), same pairs; Spearman (Pearson)", bert.name());
        print!("{:>5}", "layer");
        for r in &results {
            print!("  {:>22}", truncate(&r.file, 22));
        }
        println!();
        for layer in 0..bert.num_layers() {
            print!("{layer:>5}");
            for r in &results {
                let c = &r.engines[e].layers[layer];
                print!("  {:>22}", format!("{} ({})", fmt_corr(c.spearman), fmt_corr(c.pearson)));
            }
            println!();
        }
    }
    print_wordsim_deltas(&results);
    Ok(())
}

/// Each variant's change in Spearman against its original, per layer and file.
fn print_wordsim_deltas(results: &[wordsim::WordSimResult]) {
    let Some(first) = results.first() else { return };
    for (i, v) in first.variants.iter().enumerate() {
        println!();
        println!("{} against {}: change in Spearman per layer", v.engine, v.base);
        print!("{:>5}", "layer");
        for r in results {
            print!("  {:>22}", truncate(&r.file, 22));
        }
        println!();
        for (j, l) in v.layers.iter().enumerate() {
            print!("{:>5}", l.layer);
            for r in results {
                print!("  {:>22}", fmt_delta(r.variants[i].layers[j].spearman_delta));
            }
            println!();
        }
    }
}

fn run_analogy(global: &GlobalArgs, args: AnalogyArgs) -> Result<()> {
    let set = analogy::AnalogySet::read(&args.file).context("reading the analogy file for `eval analogy`")?;
    let statics = global.load_static_engines()?;
    let results: Vec<analogy::AnalogyResult> = statics.iter().map(|engine| analogy::evaluate(engine, &set, args.restrict_vocab)).collect();
    if global.json {
        let engines = statics.iter().zip(&results).map(|(e, result)| Named::of(e, result)).collect();
        return print_json(&PerEngine { first: &results[0], engines });
    }
    for (e, (glove, result)) in statics.iter().zip(&results).enumerate() {
        if e > 0 {
            println!();
        }
        println!(
            "analogy (3CosAdd) on {}: {} questions, {} skipped (a word outside the {} words searched in {})",
            result.file, result.questions, result.oov, result.restrict_vocab, glove.name()
        );
        println!("{:<32} {:>8} {:>9} {:>9}", "section", "correct", "attempted", "accuracy");
        let row = |name: &str, a: &analogy::Accuracy| println!("{name:<32} {:>8} {:>9} {:>9}", a.correct, a.attempted, fmt_pct(a.accuracy));
        for s in &result.sections {
            row(&s.name, &s.score);
        }
        println!("{}", "-".repeat(61));
        row("semantic", &result.semantic);
        row("syntactic (gram*)", &result.syntactic);
        row("total", &result.total);
    }
    Ok(())
}

/// The JSON of a result per engine: the first engine's result as before, and every engine's
/// under `engines`.
#[derive(serde::Serialize)]
struct PerEngine<'a, T: serde::Serialize> {
    #[serde(flatten)]
    first: &'a T,
    engines: Vec<Named<'a, T>>,
}

/// One engine's result, with the engine's name.
#[derive(serde::Serialize)]
struct Named<'a, T: serde::Serialize> {
    name: &'a str,
    kind: vecshift::EngineKind,
    architecture: &'a str,
    #[serde(flatten)]
    result: &'a T,
}

impl<'a, T: serde::Serialize> Named<'a, T> {
    fn of(engine: &'a dyn Embedder, result: &'a T) -> Self {
        Named { name: engine.name(), kind: engine.kind(), architecture: engine.architecture(), result }
    }
}

fn run_wic(global: &GlobalArgs, args: WicArgs) -> Result<()> {
    let test = wic::WicSet::read(&args.data, &args.gold).context("reading the WiC data for `eval wic`")?;
    let train = match args.train.as_deref() {
        Some([data, gold]) => Some(wic::WicSet::read(data, gold).context("reading the WiC training data (--train)")?),
        _ => None,
    };
    let models = global.load_contextual_engines()?;
    let c = &args.corrections;
    let results = models
        .iter()
        .map(|bert| {
            let options =
                wic::WicOptions { postprocess: c.postprocess.clone(), selections: c.selections.clone(), fit: c.fit_vectors(bert)?, pooling: global.pooling };
            wic::evaluate_with(bert, &test, train.as_ref(), args.folds, &options).with_context(|| format!("embedding the WiC sentences with {}", bert.name()))
        })
        .collect::<Result<Vec<_>>>()?;
    let variant_deltas: Vec<deltas::VariantDeltas<deltas::AccuracyDelta>> = global
        .variant_pairs(models.len())
        .into_iter()
        .map(|(v, b, variant)| {
            let accuracy = |e: usize| -> Vec<Option<f64>> { results[e].layers.iter().map(|l| Some(l.accuracy)).collect() };
            let layers = deltas::layer_deltas(&accuracy(b), &accuracy(v), &variant.layer_map(models[b].num_layers() - 1))
                .into_iter()
                .map(|(layer, accuracy_delta)| deltas::AccuracyDelta { layer, accuracy_delta })
                .collect();
            deltas::VariantDeltas { engine: models[v].name().to_owned(), base: models[b].name().to_owned(), variant: variant.to_string(), layers }
        })
        .collect();
    if global.json {
        let engines = models.iter().zip(&results).map(|(e, result)| Named::of(e, result)).collect();
        // `variants` is taken by the layer selections x corrections of the first engine.
        return print_json(&WicJson { per_engine: PerEngine { first: &results[0], engines }, variant_deltas });
    }
    for (e, result) in results.iter().enumerate() {
        if e > 0 {
            println!();
        }
        print_wic(result);
    }
    for v in &variant_deltas {
        println!();
        println!("{} against {}: change in WiC accuracy per layer", v.engine, v.base);
        println!("{:>7} {:>9}", "layer", "accuracy");
        for l in &v.layers {
            println!("{:>7} {:>9}", l.layer, fmt_delta(l.accuracy_delta.map(|d| d * 100.0)));
        }
    }
    Ok(())
}

/// `eval wic --json`: the per-engine results and, with `--variant`, each variant's change.
#[derive(serde::Serialize)]
struct WicJson<'a> {
    #[serde(flatten)]
    per_engine: PerEngine<'a, wic::WicResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    variant_deltas: Vec<deltas::VariantDeltas<deltas::AccuracyDelta>>,
}

/// One engine's WiC table.
fn print_wic(result: &wic::WicResult) {
    let how = match (&result.train_file, result.train_n) {
        (Some(file), Some(n)) => format!("thresholds chosen on {file} ({n} pairs)"),
        _ => format!("accuracy by {}", result.threshold_selection),
    };
    println!("WiC on {} ({} pairs); {}; {how}", result.file, result.n, result.model);
    println!("{:>7} {:>10} {:>9}", "layer", "threshold", "accuracy");
    for l in &result.layers {
        println!("{:>7} {:>10.4} {:>9}", l.layer, l.threshold, fmt_pct(Some(l.accuracy)));
    }
    println!("{:>7} {:>10} {:>9}", "static", "-", fmt_pct(Some(result.static_accuracy)));
    println!();
    println!("static: {}", result.static_note);
    if !result.variants.is_empty() {
        println!();
        println!("{:>7} {:<20} {:>10} {:>9}", "layers", "postprocess", "threshold", "accuracy");
        for v in &result.variants {
            println!("{:>7} {:<20} {:>10.4} {:>9}", v.layers, v.postprocess, v.threshold, fmt_pct(Some(v.accuracy)));
        }
    }
}

fn run_wsd(global: &GlobalArgs, args: WsdArgs) -> Result<()> {
    let set = match args.paths.as_slice() {
        [dir] => wsd::WsdSet::read_dir(dir),
        [train_data, train_gold, test_data, test_gold] => wsd::WsdSet::read_files(train_data, train_gold, test_data, test_gold),
        _ => anyhow::bail!("eval wsd takes TRAIN_DATA TRAIN_GOLD TEST_DATA TEST_GOLD, or one folder of <word>/{{train,test}}.{{data,gold}}.txt"),
    }
    .context("reading the WSD data for `eval wsd`")?;
    let bert = global.load_bert()?;
    let c = &args.corrections;
    let options = wsd::WsdOptions { postprocess: c.postprocess.clone(), selections: c.selections.clone(), fit: c.fit_vectors(&bert)?, pooling: global.pooling };
    let result = wsd::evaluate(&bert, &set, &options).context("embedding the WSD sentences")?;
    if global.json {
        return print_json(&result);
    }
    let n_test: usize = result.words.iter().map(|w| w.n_test).sum();
    println!(
        "WSD on {} ({} words, {n_test} test occurrences); {}; postprocess {} (fitted on {})",
        result.source, result.words.len(), result.model, result.postprocess, result.fit
    );
    println!("{:>7} {:>9} {:>9} {:>12} {:>12}", "layer", "1-NN acc", "1-NN F1", "centroid acc", "centroid F1");
    for l in &result.layers {
        println!("{:>7} {:>9} {:>9.4} {:>12} {:>12.4}", l.layer, fmt_pct(Some(l.accuracy)), l.macro_f1, fmt_pct(Some(l.centroid_accuracy)), l.centroid_macro_f1);
    }
    println!("{:>7} {:>9}  (majority training sense; also what a static model scores: {})", "static", fmt_pct(Some(result.majority_baseline)), result.static_note);
    if !result.variants.is_empty() {
        println!();
        println!("{:>7} {:<20} {:>9} {:>9} {:>12} {:>12}", "layers", "postprocess", "1-NN acc", "1-NN F1", "centroid acc", "centroid F1");
        for v in &result.variants {
            println!(
                "{:>7} {:<20} {:>9} {:>9.4} {:>12} {:>12.4}",
                v.layers, v.postprocess, fmt_pct(Some(v.nearest.accuracy)), v.nearest.macro_f1, fmt_pct(Some(v.centroid.accuracy)), v.centroid.macro_f1
            );
        }
    }
    Ok(())
}

/// One used pair, for `--per-pair`.
#[derive(serde::Serialize)]
struct PairJson {
    word1: String,
    word2: String,
    line: usize,
    score: f64,
    cosine: f64,
}

/// A file's result with its pairs, for `--json --per-pair`.
#[derive(serde::Serialize)]
struct WordsimJson {
    #[serde(flatten)]
    result: wordsim::WordSimResult,
    pairs: Vec<PairJson>,
}

fn fmt_corr(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"))
}

/// A signed change, `-` when undefined.
fn fmt_delta(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:+.4}"))
}

fn fmt_pct(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{:.2}%", v * 100.0))
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width { text.to_owned() } else { text.chars().take(width - 1).chain(['…']).collect() }
}
