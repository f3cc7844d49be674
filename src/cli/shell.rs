//! `vecshift completions SHELL` and `vecshift man`: generated from the clap definitions, as
//! Rust command-line tools ship them.

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, powershell or elvish.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// Writes the completion script for one shell to stdout.
pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "vecshift", &mut out);
    out.flush().context("writing the completion script to stdout")
}

/// Writes the man page (roff, section 1) to stdout.
pub fn man() -> Result<()> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out).and_then(|()| out.flush()).context("writing the man page to stdout")
}
