//! `vecshift tui` (and plain `vecshift`): the options of the terminal UI.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use super::GlobalArgs;
use crate::tui::app::Start;
use super::sentences::{self, Row, SentenceInput};
use crate::tui::worker::Engines;

/// The example set the UI opens with when given nothing.
const DEFAULT_WORD: &str = "bank";

/// Arguments of `tui`. With no sentences the UI opens on the example set in data/sentences/
/// named after `--word` (default "bank"), or on an empty list when there is none.
#[derive(Debug, Default, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    input: SentenceInput,
}

impl TuiArgs {
    /// These options also stand before a subcommand (for plain `vecshift`), where a
    /// subcommand would silently ignore them: refuse that instead.
    pub fn only_without_subcommand(&self) -> Result<()> {
        if !self.input.is_empty() {
            bail!("--word, --sentences and --sentence go after the subcommand (they are the terminal UI's when they come first)");
        }
        Ok(())
    }
}

/// What the UI starts with: the target word, the sentences and where they came from.
fn first_rows(args: &TuiArgs) -> Result<(String, Vec<Row>, Option<PathBuf>)> {
    let input = &args.input;
    let (rows, source) = match (input.given_rows(), &input.word) {
        (Some(rows), _) => (rows?, input.sentences.clone()),
        (None, word) => match super::data::example_sentences(word.as_deref().unwrap_or(DEFAULT_WORD)) {
            Some(path) => (sentences::read(&path)?, Some(path)),
            None if word.is_some() => (Vec::new(), None),
            None => return Err(super::data::not_found(&format!("sentences/{DEFAULT_WORD}.tsv"), "the example sentences", "--sentences FILE or --word")),
        },
    };
    let word = match (&input.word, rows.iter().find_map(|r| r.word.clone())) {
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
    if args.input.word.is_some() {
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

        let args = TuiArgs { input: SentenceInput { word: Some("Spring".into()), ..SentenceInput::default() } };
        let (word, rows, _) = first_rows(&args).unwrap();
        assert_eq!((word.as_str(), rows.len()), ("Spring", 9), "the example set named after the word");

        let args = TuiArgs { input: SentenceInput { word: Some("zebra".into()), ..SentenceInput::default() } };
        assert!(first_rows(&args).unwrap().1.is_empty(), "no example set: start empty");

        let args = TuiArgs { input: SentenceInput { sentence: vec!["a bank".into()], ..SentenceInput::default() } };
        assert!(first_rows(&args).unwrap_err().to_string().contains("--word"));

        let args = TuiArgs { input: SentenceInput { sentences: Some("/no/such/file.tsv".into()), ..SentenceInput::default() } };
        assert!(first_rows(&args).unwrap_err().to_string().contains("/no/such/file.tsv"));
    }
}
