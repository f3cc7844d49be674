//! Where the binary finds the default models at run time, and `vecshift install-data`.
//!
//! The library only knows the source tree it was compiled from; the environment is read
//! here. The places, in order: `$VECSHIFT_DATA`, the user data directory
//! (`$XDG_DATA_HOME/vecshift`, default `~/.local/share/vecshift`), then the source tree's
//! `data/` if it still exists (`$VECSHIFT_BUILD_DATA` replaces that path; set empty, the
//! place is skipped, which tests use to stand in for a deleted clone).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use sha2::{Digest, Sha256};
use vecshift::source;

/// The checksum file of a data directory, `sha256sum` format.
const SUMS: &str = "SHA256SUMS";

/// Files copied beside the checksummed models: the example sentence sets the terminal UI opens.
const SENTENCES: &str = "sentences";

/// One place the default models may be.
struct Place {
    /// How the user names it, e.g. `$VECSHIFT_DATA`.
    label: &'static str,
    /// The folder, when the place is defined at all.
    dir: Option<PathBuf>,
}

/// The data directories, in the order they are searched.
fn places() -> [Place; 3] {
    let env_dir = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let build = match std::env::var_os("VECSHIFT_BUILD_DATA") {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(PathBuf::from(v)),
        None => Some(source::source_tree_data_dir()),
    };
    [
        Place { label: "$VECSHIFT_DATA", dir: env_dir("VECSHIFT_DATA") },
        Place { label: "the user data directory", dir: user_data_dir() },
        Place { label: "the source tree vecshift was built from", dir: build },
    ]
}

/// `$XDG_DATA_HOME/vecshift`, else `$HOME/.local/share/vecshift` (the XDG base directory
/// specification ignores a relative `XDG_DATA_HOME`).
pub fn user_data_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let base = xdg.or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("vecshift"))
}

/// The first data directory holding `relative` (a file or folder inside it).
pub fn find(relative: &str) -> Option<PathBuf> {
    places().into_iter().filter_map(|p| p.dir).map(|d| d.join(relative)).find(|p| p.exists())
}

/// The path of `relative` in the first data directory holding it, or [`not_found`].
pub fn require(relative: &str, what: &str, flag: &str) -> Result<PathBuf> {
    find(relative).ok_or_else(|| not_found(relative, what, flag))
}

/// The error for `relative` missing from every data directory: it names each place searched
/// and how to fill one; `what` says what is missing, `flag` the way around it.
pub fn not_found(relative: &str, what: &str, flag: &str) -> anyhow::Error {
    let searched: Vec<String> = places()
        .iter()
        .map(|p| match &p.dir {
            None => format!("{} (not set)", p.label),
            Some(dir) => format!("{} {}", p.label, dir.display()),
        })
        .collect();
    anyhow::anyhow!(
        "{what} ({relative}) was not found in any data directory: {}; run `vecshift install-data --from DIR` with the data/ folder of a vecshift clone, or pass {flag}",
        searched.join(", ")
    )
}

/// The default BERT model's directory.
pub fn default_bert_dir() -> Result<PathBuf> {
    require(source::DEFAULT_BERT, "the default BERT model", "--bert")
}

/// The default static vectors' file.
pub fn default_vectors_path() -> Result<PathBuf> {
    require(source::DEFAULT_VECTORS, "the default static vectors", "--vectors")
}

/// Arguments of `install-data`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The data/ folder of a vecshift clone (with SHA256SUMS). Default: the source tree this
    /// binary was built from.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// Where to install. Default: the user data directory ($XDG_DATA_HOME/vecshift, else
    /// ~/.local/share/vecshift).
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
}

/// How a file got into place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Installed {
    Linked,
    Copied,
    AlreadyThere,
}

/// Copies (or hard-links, on the same file system) the default models into a data directory
/// and checks each against `SHA256SUMS`.
pub fn install(args: InstallArgs) -> Result<()> {
    let from = match args.from {
        Some(dir) => dir,
        None => places()[2].dir.clone().filter(|d| d.join(SUMS).is_file()).context(
            "the source tree this binary was built from is gone; pass --from DIR with the data/ folder of a vecshift clone",
        )?,
    };
    let to = match args.to {
        Some(dir) => dir,
        None => user_data_dir().context("neither XDG_DATA_HOME nor HOME is set; pass --to DIR")?,
    };
    let sums_path = from.join(SUMS);
    let sums = read_sums(&sums_path)?;
    if same_dir(&from, &to) {
        bail!("--from and --to are the same folder {}; install into another one", to.display());
    }
    std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;

    let mut counts = [0usize; 3];
    for (expected, relative) in &sums {
        let how = install_file(&from.join(relative), &to.join(relative), Some(expected))
            .with_context(|| format!("installing {relative}"))?;
        counts[how as usize] += 1;
    }
    install_file(&sums_path, &to.join(SUMS), None)?;
    // The example sets are not checksummed: they are small text files, copied as they are.
    let sentences = from.join(SENTENCES);
    let mut examples = 0;
    if sentences.is_dir() {
        for entry in std::fs::read_dir(&sentences).with_context(|| format!("cannot list {}", sentences.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                install_file(&entry.path(), &to.join(SENTENCES).join(entry.file_name()), None)?;
                examples += 1;
            }
        }
    }
    println!(
        "installed the default models into {}: {} file(s) hard-linked, {} copied, {} already there, all {} checked against {}; {examples} example sentence file(s)",
        to.display(),
        counts[Installed::Linked as usize],
        counts[Installed::Copied as usize],
        counts[Installed::AlreadyThere as usize],
        sums.len(),
        sums_path.display(),
    );
    Ok(())
}

/// Whether two paths name one existing folder.
fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// The `(sha256, relative path)` lines of a `sha256sum` file.
fn read_sums(path: &Path) -> Result<Vec<(String, String)>> {
    let file = File::open(path).with_context(|| format!("cannot open {} (is --from the data/ folder of a vecshift clone?)", path.display()))?;
    let mut sums = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = || anyhow::anyhow!("{} line {}: expected `SHA256  PATH` as sha256sum writes it", path.display(), number + 1);
        let (hash, name) = line.split_once(' ').ok_or_else(bad)?;
        let name = name.trim_start_matches([' ', '*']);
        let safe = Path::new(name).components().all(|c| matches!(c, std::path::Component::Normal(_)));
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() || !safe {
            return Err(bad());
        }
        sums.push((hash.to_ascii_lowercase(), name.to_owned()));
    }
    if sums.is_empty() {
        bail!("{} lists no files", path.display());
    }
    Ok(sums)
}

/// The sha256 of a file, as lowercase hex.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer).with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `to` already holds what `from` would put there: the checksum when there is one,
/// else the same file (a hard link) or the same bytes.
fn already_there(from: &Path, to: &Path, expected: Option<&str>) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(to) else { return Ok(false) };
    if !target.is_file() {
        return Ok(false);
    }
    Ok(match expected {
        Some(expected) => sha256_file(to)? == expected,
        None => {
            let source = std::fs::metadata(from)?;
            (source.dev(), source.ino()) == (target.dev(), target.ino())
                || (source.len() == target.len() && std::fs::read(from)? == std::fs::read(to)?)
        }
    })
}

/// Puts `from` at `to`: a hard link where the file system allows it, else a copy, through a
/// temporary name that is renamed only once the checksum (if given) matches.
fn install_file(from: &Path, to: &Path, expected: Option<&str>) -> Result<Installed> {
    if !from.is_file() {
        bail!("{} is missing (regenerate it with `python3 data/fetch_data.py` in the clone)", from.display());
    }
    if already_there(from, to, expected)? {
        return Ok(Installed::AlreadyThere);
    }
    let dir = to.parent().context("the target has no folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.vecshift-tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let how = match std::fs::hard_link(from, &temp) {
        Ok(()) => Installed::Linked,
        Err(_) => {
            std::fs::copy(from, &temp).with_context(|| format!("cannot copy {} to {}", from.display(), dir.display()))?;
            Installed::Copied
        }
    };
    if let Some(expected) = expected {
        let found = sha256_file(&temp)?;
        if found != expected {
            let _ = std::fs::remove_file(&temp);
            bail!(
                "{} has sha256 {found}, but {SUMS} says {expected}: the source is damaged; regenerate it with `python3 data/fetch_data.py`",
                from.display()
            );
        }
    }
    std::fs::rename(&temp, to).with_context(|| format!("cannot move the new file to {}", to.display()))?;
    // rename(2) does nothing when both names are one file already.
    let _ = std::fs::remove_file(&temp);
    Ok(how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_parsed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let sums = dir.path().join(SUMS);
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; // sha256 of nothing
        std::fs::write(&sums, format!("{hash}  a/empty\n{hash} *b\n")).unwrap();
        assert_eq!(read_sums(&sums).unwrap(), [(hash.to_owned(), "a/empty".to_owned()), (hash.to_owned(), "b".to_owned())]);
        std::fs::write(dir.path().join("e"), "").unwrap();
        assert_eq!(sha256_file(&dir.path().join("e")).unwrap(), hash);
        for bad in [format!("{hash}  ../x\n"), format!("{hash}  /etc/x\n"), "abc  x\n".to_owned(), format!("{hash}\n")] {
            std::fs::write(&sums, bad).unwrap();
            assert!(read_sums(&sums).is_err());
        }
    }
}
