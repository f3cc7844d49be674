//! `vecshift analogy`: A is to B as C is to ?

use anyhow::Result;
use clap::Args;

use super::GlobalArgs;
use super::output::print_json;

/// Arguments of `analogy`.
#[derive(Debug, Args)]
pub struct AnalogyArgs {
    /// A (e.g. man).
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    a: String,
    /// B (e.g. king).
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    b: String,
    /// C (e.g. woman).
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    c: String,
    /// How many answers.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    k: u64,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

pub fn run(global: &GlobalArgs, args: AnalogyArgs) -> Result<()> {
    let glove = global.load_static()?;
    let answers = glove.analogy(&args.a, &args.b, &args.c, args.k as usize)?;
    let subwords = super::output::from_subwords(&glove, &[&args.a, &args.b, &args.c]);
    if global.json {
        return print_json(&answers);
    }
    println!("{} is to {} as {} is to ...{subwords}", args.a, args.b, args.c);
    for (rank, n) in answers.iter().enumerate() {
        println!("{:>3}. {:<24} {:.4}", rank + 1, n.word, n.cosine);
    }
    Ok(())
}
