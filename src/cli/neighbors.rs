//! `vecshift neighbors`: nearest words in the static vectors.

use anyhow::Result;
use clap::Args;

use super::GlobalArgs;
use super::output::print_json;

/// Arguments of `neighbors`.
#[derive(Debug, Args)]
pub struct NeighborsArgs {
    /// The query word.
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    word: String,
    /// How many neighbours.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    k: u64,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

pub fn run(global: &GlobalArgs, args: NeighborsArgs) -> Result<()> {
    let glove = global.load_static()?;
    let neighbors = glove.neighbors(&args.word, args.k as usize)?;
    let subwords = super::output::from_subwords(&glove, &[&args.word]);
    if global.json {
        return print_json(&neighbors);
    }
    println!("nearest neighbours of {:?} in {}{subwords}", args.word, vecshift::Embedder::name(&glove));
    for (rank, n) in neighbors.iter().enumerate() {
        println!("{:>3}. {:<24} {:.4}", rank + 1, n.word, n.cosine);
    }
    Ok(())
}
