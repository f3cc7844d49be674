//! `vecshift tui` (and plain `vecshift`): the options of the terminal UI.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use vecshift::analysis::postprocess::Postprocess;

use super::GlobalArgs;
use crate::tui::app::Start;
use super::sentences::{Row, SentenceInput};
use crate::tui::worker::{Engine, Engines};

/// Why `vecshift --word bank embed` is refused.
pub const MISPLACED: &str = "--word, --sentences, --sentence, --strict, --postprocess and --fit go after the subcommand (they are the terminal UI's when they come first)";

/// Whether `args` (without the program name) give a sentence option before the subcommand,
/// which clap would otherwise report as some unrelated missing argument.
pub fn misplaced(args: &[String], subcommands: &[&str]) -> bool {
    let Some(at) = args.iter().position(|a| subcommands.contains(&a.as_str())) else { return false };
    args[..at].iter().any(|a| {
        let name = a.split('=').next().unwrap_or(a);
        matches!(name, "--word" | "--sentences" | "--sentence" | "--strict" | "--postprocess" | "--fit" | "--fit-max")
            || (!a.starts_with("--") && (a.starts_with("-w") || a.starts_with("-s")))
    })
}

/// The example set the UI opens with when given nothing.
const DEFAULT_WORD: &str = "bank";

/// Arguments of `tui`. With no sentences the UI opens on the example set in data/sentences/
/// named after `--word` (default "bank"), or on an empty list when there is none.
#[derive(Debug, Default, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    input: SentenceInput,
    /// Anisotropy correction of the contextual vectors before every cosine on screen: none,
    /// center, all-but-the-top:D, whiten or standardize (the c key cycles them), fitted per
    /// layer on the compared occurrences, or on --fit.
    #[arg(long, value_name = "METHOD", default_value = "none")]
    postprocess: Postprocess,
    #[command(flatten)]
    fit: super::postprocess::FitArgs,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
}

impl TuiArgs {
    /// These options also stand before a subcommand (for plain `vecshift`), where a
    /// subcommand would silently ignore them: refuse that instead.
    pub fn only_without_subcommand(&self) -> Result<()> {
        if !self.input.is_empty() || self.postprocess != Postprocess::None || self.fit.fit.is_some() {
            bail!("{MISPLACED}");
        }
        Ok(())
    }
}

/// What the UI starts with: the target word, the sentences and where they came from.
fn first_rows(args: &TuiArgs) -> Result<(String, Vec<Row>, Option<PathBuf>)> {
    let (word, rows, source) = args.input.word_and_rows(Some(DEFAULT_WORD))?;
    if args.input.strict
        && let Some(row) = rows.iter().find(|r| vecshift::occurrence::find_all(&r.text, &word).is_empty())
    {
        bail!("{}: no whole word {word:?} in {:?} (stopped by --strict)", row.place, super::output::clip(&row.text, 80));
    }
    Ok((word, rows, source))
}

/// Opens the UI.
pub fn run(global: &GlobalArgs, args: TuiArgs) -> Result<()> {
    let (word, rows, source) = first_rows(&args)?;
    // Read before the screen opens, so that a bad file is an error line.
    let (fit, corpus) = match args.fit.occurrences()? {
        Some((name, occurrences)) => (Some(format!("{name} ({} occurrences)", occurrences.len())), Some(occurrences)),
        None => (None, None),
    };
    let start = Start {
        word,
        rows,
        source,
        pooling: global.pooling.unwrap_or_default(),
        color: crate::tui::color_wanted(),
        postprocess: args.postprocess,
        fit,
    };
    // The worker thread outlives this borrow, so it gets its own copy of the model options.
    let options = global.clone();
    // The sense guesses' WordNet: $WORDNET_DIR, else the extract beside the default models.
    let wordnet = std::env::var_os("WORDNET_DIR").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| super::data::find("wordnet"));
    crate::tui::run(
        start,
        Box::new(move || {
            // Contextual engines first, each original followed by its --variant engines, then
            // the static ones; the contextual ones kept as such for their sizes and speeds.
            let contextual = options.load_contextual_engines()?;
            let variants = options.variant_pairs(contextual.len());
            let engines = contextual.into_iter().map(Engine::from).chain(options.load_static_engines()?.into_iter().map(Engine::from)).collect();
            Ok(Engines::of(engines)?.with_wordnet(wordnet).with_fit_corpus(corpus).with_variants(variants))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_the_example_set_or_the_given_sentences() {
        let (word, rows, source) = first_rows(&TuiArgs::default()).unwrap();
        assert_eq!(word, "bank");
        assert_eq!(rows.len(), 9);
        assert!(source.unwrap().ends_with("sentences/bank.tsv"));

        let args = TuiArgs { input: SentenceInput { word: Some("Spring".into()), ..SentenceInput::default() }, ..TuiArgs::default() };
        let (word, rows, _) = first_rows(&args).unwrap();
        assert_eq!((word.as_str(), rows.len()), ("Spring", 9), "the example set named after the word");

        let args = TuiArgs { input: SentenceInput { word: Some("zebra".into()), ..SentenceInput::default() }, ..TuiArgs::default() };
        assert!(first_rows(&args).unwrap().1.is_empty(), "no example set: start empty");

        let args = TuiArgs { input: SentenceInput { sentence: vec!["a bank".into()], ..SentenceInput::default() }, ..TuiArgs::default() };
        assert!(first_rows(&args).unwrap_err().to_string().contains("--word"));

        let args = TuiArgs { input: SentenceInput { sentences: Some("/no/such/file.tsv".into()), ..SentenceInput::default() }, ..TuiArgs::default() };
        assert!(first_rows(&args).unwrap_err().to_string().contains("/no/such/file.tsv"));

        let dir = tempfile::tempdir().unwrap();
        let two = dir.path().join("two.tsv");
        std::fs::write(&two, "bank\tA bank.\nbass\tA bass.\nbass\tNo fish here.\n").unwrap();
        let input = |word: Option<&str>, strict| SentenceInput { word: word.map(Into::into), sentences: Some(two.clone()), strict, ..SentenceInput::default() };
        let err = first_rows(&TuiArgs { input: input(None, false), ..TuiArgs::default() }).unwrap_err().to_string();
        assert!(err.contains("\"bank\", \"bass\""), "several words are never mixed: {err}");
        let (_, rows, _) = first_rows(&TuiArgs { input: input(Some("bass"), false), ..TuiArgs::default() }).unwrap();
        assert_eq!(rows.len(), 2, "--word keeps its own rows");
        let err = first_rows(&TuiArgs { input: input(Some("bass"), true), ..TuiArgs::default() }).unwrap_err().to_string();
        assert!(err.contains("two.tsv line 3") && err.contains("--strict"), "{err}");

        let args = |line: &str| line.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(misplaced(&args("--word bank embed"), &["embed", "compare"]));
        assert!(misplaced(&args("-wbank compare"), &["embed", "compare"]));
        assert!(!misplaced(&args("--bert x embed -w bank"), &["embed", "compare"]));
        assert!(!misplaced(&args("--word bank"), &["embed", "compare"]), "the UI's own options");
    }
}
