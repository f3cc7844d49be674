//! `vecshift analogy`: A is to B as C is to ?

use anyhow::Result;
use clap::Args;

use super::GlobalArgs;
use super::output::print_json;

/// Arguments of `analogy`.
#[derive(Debug, Args)]
pub struct AnalogyArgs {
    /// A (e.g. man).
    a: String,
    /// B (e.g. king).
    b: String,
    /// C (e.g. woman).
    c: String,
    /// How many answers.
    #[arg(short, default_value_t = 5)]
    k: usize,
}

pub fn run(global: &GlobalArgs, args: AnalogyArgs) -> Result<()> {
    let glove = global.load_static()?;
    let answers = glove.analogy(&args.a, &args.b, &args.c, args.k)?;
    if global.json {
        return print_json(&answers);
    }
    println!("{} is to {} as {} is to ...", args.a, args.b, args.c);
    for (rank, n) in answers.iter().enumerate() {
        println!("{:>3}. {:<24} {:.4}", rank + 1, n.word, n.cosine);
    }
    Ok(())
}
