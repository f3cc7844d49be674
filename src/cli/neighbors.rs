//! `vecshift neighbors`: nearest words in the static vectors.

use anyhow::Result;
use clap::Args;

use super::GlobalArgs;
use super::output::print_json;

/// Arguments of `neighbors`.
#[derive(Debug, Args)]
pub struct NeighborsArgs {
    /// The query word.
    word: String,
    /// How many neighbours.
    #[arg(short, default_value_t = 10)]
    k: usize,
}

pub fn run(global: &GlobalArgs, args: NeighborsArgs) -> Result<()> {
    let glove = global.load_static()?;
    let neighbors = glove.neighbors(&args.word, args.k)?;
    if global.json {
        return print_json(&neighbors);
    }
    println!("nearest neighbours of {:?} in {}", args.word, vecshift::Embedder::name(&glove));
    for (rank, n) in neighbors.iter().enumerate() {
        println!("{:>3}. {:<24} {:.4}", rank + 1, n.word, n.cosine);
    }
    Ok(())
}
