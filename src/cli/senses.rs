//! `vecshift senses`: name each occurrence's sense from WordNet, and group the occurrences
//! without labels.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use vecshift::analysis::postprocess::Postprocess;
use vecshift::senses::cluster::{self, Method};
use vecshift::senses::{self, Assign, SenseInventory, WordNet};
use vecshift::{LayerSelection, Occurrence};

use super::GlobalArgs;
use super::output::print_json;
use super::sentences::{Row, read};

/// Arguments of `senses`.
#[derive(Debug, Args)]
pub struct SensesArgs {
    /// The word (its base form, as WordNet lists it).
    word: String,
    /// A sentence containing the word (repeat for each one).
    #[arg(long = "sentence", short = 's', value_name = "S", required_unless_present = "sentences")]
    sentence: Vec<String>,
    /// A file with one sentence per line, or TSV `word<TAB>sentence[<TAB>sense]` (senses give an ARI).
    #[arg(long, value_name = "FILE", conflicts_with = "sentence")]
    sentences: Option<PathBuf>,
    /// Layer or layers compared: 6, -1 (last), 3..=6 (mean of a range) or all.
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    layer: LayerSelection,
    /// WordNet 3.x database folder (index.noun, data.noun, ...). Default: $WORDNET_DIR, else the
    /// extract for the example words in data/wordnet.
    #[arg(long, value_name = "DIR")]
    wordnet: Option<PathBuf>,
    /// Match each occurrence to the nearest sense example (nearest) or to the nearest synset centroid.
    #[arg(long, default_value = "nearest")]
    by: Assign,
    /// Anisotropy correction before cosines: none, center, all-but-the-top:D, whiten, standardize
    /// (fitted on the example and user occurrences together).
    #[arg(long, default_value = "none")]
    postprocess: Postprocess,
    /// Clustering used to group the occurrences without labels: average (agglomerative) or kmeans.
    #[arg(long, default_value = "average")]
    cluster: Method,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

#[derive(Serialize)]
struct GuessJson {
    sentence: String,
    synset: String,
    id: String,
    gloss: String,
    cosine: f32,
    cluster: usize,
}

pub fn run(global: &GlobalArgs, args: SensesArgs) -> Result<()> {
    let rows: Vec<Row> = match &args.sentences {
        Some(path) => read(path)?,
        None => args.sentence.iter().enumerate().map(|(i, s)| Row { word: None, text: s.clone(), sense: None, place: format!("sentence {} (-s)", i + 1) }).collect(),
    };
    let occurrences = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Occurrence::find(&args.word, &r.text).with_context(|| format!("sentence {}", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    let dir = args
        .wordnet
        .clone()
        .or_else(|| std::env::var_os("WORDNET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| vecshift::source::data_dir().join("wordnet"));
    let wordnet = WordNet::open(&dir).context("opening WordNet (--wordnet DIR or $WORDNET_DIR)")?;
    let synsets = wordnet.synsets(&args.word)?;
    if synsets.is_empty() {
        bail!(
            "WordNet in {} has no synsets for {:?}: give the base form (\"bank\", not \"banks\"), or a full WordNet with --wordnet DIR \
             (data/wordnet has only the example words)",
            dir.display(),
            args.word
        );
    }
    let inventory = SenseInventory::new(&args.word, synsets)?;
    let bert = global.load_bert()?;
    let guesses = senses::guess_senses(&bert, &args.layer, args.postprocess, &inventory, &occurrences, args.by)?;
    let mut vectors = Vec::with_capacity(occurrences.len());
    for v in vecshift::Embedder::embed_vectors(&bert, &occurrences, global.pooling_for(&bert))? {
        vectors.push(v.select(&args.layer)?);
    }
    let fitted = args.postprocess.fit(&vectors)?;
    let clustering = cluster::choose_k(&fitted.apply_all(&vectors), args.cluster, cluster::DEFAULT_MAX_K);
    if global.json {
        let items: Vec<GuessJson> = guesses
            .into_iter()
            .zip(&clustering.labels)
            .map(|(g, &c)| GuessJson { sentence: g.sentence, synset: g.synset, id: g.id, gloss: g.gloss, cosine: g.cosine, cluster: c })
            .collect();
        return print_json(&items);
    }
    let by = match args.by {
        Assign::Nearest => "nearest example",
        Assign::Centroid => "nearest synset centroid",
    };
    println!(
        "{:?}: {} WordNet synsets, {} with example sentences containing the word (the others as \"{}: definition\")",
        args.word,
        inventory.senses.len(),
        inventory.with_examples(),
        args.word,
    );
    println!("{}, layer {}, postprocess {}, by {by}", vecshift::Embedder::name(&bert), args.layer, args.postprocess);
    let silhouette = clustering.silhouette.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.3}"));
    print!("clusters ({} link, k by silhouette, k = 1 below {}): k = {}, best silhouette {silhouette}", args.cluster, cluster::MIN_SILHOUETTE, clustering.k);
    let labels: Vec<Option<&str>> = rows.iter().map(|r| r.sense.as_deref()).collect();
    if labels.iter().all(Option::is_some) && labels.len() > 1 {
        print!(", adjusted Rand index vs the file's senses {:.3}", cluster::adjusted_rand_index(&clustering.labels, &labels));
    }
    println!();
    println!();
    println!("{:>3} {:>7} {:>6}  synset (id): gloss / sentence", "#", "cluster", "cosine");
    for (i, (g, c)) in guesses.iter().zip(&clustering.labels).enumerate() {
        println!("{:>3} {:>7} {:>6.3}  {} ({}): {}", i + 1, c, g.cosine, g.synset, g.id, g.gloss);
        println!("{:>3} {:>7} {:>6}  {}", "", "", "", g.sentence);
    }
    Ok(())
}
