//! `vecshift tui` (and plain `vecshift`): the options of the terminal UI.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use super::GlobalArgs;
use crate::tui::app::Start;
use super::sentences::{self, Row};
use crate::tui::worker::Engines;

/// The example set the UI opens with when given nothing.
const DEFAULT_WORD: &str = "bank";

/// Arguments of `tui`.
#[derive(Debug, Default, Args)]
pub struct TuiArgs {
    /// The target word (default: the word of the sentences file; with no file, "bank" and
    /// its example set, or the set in data/sentences/ named after the word).
    #[arg(long, short)]
    word: Option<String>,
    /// A file with one sentence per line, or TSV `word<TAB>sentence[<TAB>sense]`.
    #[arg(long, value_name = "FILE", conflicts_with = "sentence")]
    sentences: Option<PathBuf>,
    /// A sentence (repeat for each one).
    #[arg(long = "sentence", short = 's', value_name = "S")]
    sentence: Vec<String>,
}

impl TuiArgs {
    /// These options also stand before a subcommand (for plain `vecshift`), where a
    /// subcommand would silently ignore them: refuse that instead.
    pub fn only_without_subcommand(&self) -> Result<()> {
        if self.word.is_some() || self.sentences.is_some() || !self.sentence.is_empty() {
            bail!("--word, --sentences and --sentence go after the subcommand (they are the terminal UI's when they come first)");
        }
        Ok(())
    }
}

/// What the UI starts with: the target word, the sentences and where they came from.
fn first_rows(args: &TuiArgs) -> Result<(String, Vec<Row>, Option<PathBuf>)> {
    let example = |word: &str| vecshift::source::data_dir().join("sentences").join(format!("{}.tsv", word.to_lowercase()));
    let (rows, source) = match (&args.sentences, args.sentence.is_empty(), &args.word) {
        (Some(path), _, _) => (sentences::read(path)?, Some(path.clone())),
        (None, false, _) => {
            (args.sentence.iter().map(|s| Row { word: None, text: s.clone(), sense: None }).collect(), None)
        }
        (None, true, Some(word)) if !example(word).is_file() => (Vec::new(), None),
        (None, true, word) => {
            let path = example(word.as_deref().unwrap_or(DEFAULT_WORD));
            (sentences::read(&path)?, Some(path))
        }
    };
    let word = match (&args.word, rows.iter().find_map(|r| r.word.clone())) {
        (Some(word), _) => word.clone(),
        (None, Some(word)) => word,
        (None, None) => bail!("name the target word with --word (the sentences give none)"),
    };
    if word.trim().is_empty() {
        bail!("--word is empty; name the target word");
    }
    Ok((word, rows, source))
}

/// Opens the UI.
pub fn run(global: &GlobalArgs, args: TuiArgs) -> Result<()> {
    let (word, mut rows, source) = first_rows(&args)?;
    if args.word.is_some() {
        // An explicit --word wins over the file's word column.
        rows.iter_mut().for_each(|r| r.word = None);
    }
    let start = Start { word, rows, source, pooling: global.pooling, color: crate::tui::color_wanted() };
    // The worker thread outlives this borrow, so it gets its own copy of the model options.
    let options = GlobalArgs {
        bert: global.bert.clone(),
        vectors: global.vectors.clone(),
        vectors_format: global.vectors_format,
        pooling: global.pooling,
        json: false,
    };
    crate::tui::run(start, Box::new(move || Ok(Engines::new(options.load_bert()?, options.load_static()?))))
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

        let args = TuiArgs { word: Some("Spring".into()), ..TuiArgs::default() };
        let (word, rows, _) = first_rows(&args).unwrap();
        assert_eq!((word.as_str(), rows.len()), ("Spring", 9), "the example set named after the word");

        let args = TuiArgs { word: Some("zebra".into()), ..TuiArgs::default() };
        assert!(first_rows(&args).unwrap().1.is_empty(), "no example set: start empty");

        let args = TuiArgs { sentence: vec!["a bank".into()], ..TuiArgs::default() };
        assert!(first_rows(&args).unwrap_err().to_string().contains("--word"));

        let args = TuiArgs { sentences: Some("/no/such/file.tsv".into()), ..TuiArgs::default() };
        assert!(first_rows(&args).unwrap_err().to_string().contains("/no/such/file.tsv"));
    }
}
