//! Installing: the default models found at run time (`install-data`, the data directories),
//! shell completions and the man page.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{json, vecshift};

/// The binary with the data directories under the caller's control: no `$VECSHIFT_DATA`
/// unless given, `HOME` and `XDG_DATA_HOME` as given, and the source tree hidden
/// (`VECSHIFT_BUILD_DATA` empty) unless `source_tree` is set.
fn isolated(args: &[&str], home: &Path, xdg: Option<&Path>, data: Option<&Path>, source_tree: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vecshift"));
    command.args(args).env("HOME", home).env_remove("XDG_DATA_HOME").env_remove("VECSHIFT_DATA");
    if let Some(xdg) = xdg {
        command.env("XDG_DATA_HOME", xdg);
    }
    if let Some(data) = data {
        command.env("VECSHIFT_DATA", data);
    }
    if !source_tree {
        command.env("VECSHIFT_BUILD_DATA", "");
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The subcommands as `vecshift --help` lists them.
fn subcommands() -> Vec<String> {
    let help = String::from_utf8(vecshift(&["--help"]).stdout).unwrap();
    let commands = help.split("Commands:").nth(1).expect("a Commands section").split("\n\n").next().unwrap();
    let names: Vec<String> = commands.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    assert!(names.contains(&"report".to_owned()) && names.contains(&"install-data".to_owned()), "{names:?}");
    names.into_iter().filter(|n| n != "help").collect()
}

#[test]
fn install_data_makes_the_defaults_independent_of_the_source_tree() {
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("xdg");
    let installed = xdg.join("vecshift");
    let out = isolated(&["install-data"], home.path(), Some(&xdg), None, true);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&installed.display().to_string()) && said.contains("all 7 checked"), "{said}");
    for file in ["all-MiniLM-L6-v2/model.safetensors", "glove-6B-50d/glove.6B.50d.100k.fifu", "glove-6B-50d/glove.6B.50d.100k.fifu.idx", "SHA256SUMS", "sentences/bank.tsv"] {
        let (a, b) = (std::fs::read(installed.join(file)).unwrap(), std::fs::read(Path::new("data").join(file)).unwrap());
        assert!(a == b, "{file} differs from data/");
    }
    let again = isolated(&["install-data"], home.path(), Some(&xdg), None, true);
    assert!(String::from_utf8_lossy(&again.stdout).contains("7 already there"), "{}", stderr(&again));
    let leftovers: Vec<_> = walk(&installed).into_iter().filter(|p| p.to_string_lossy().ends_with(".vecshift-tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Without the source tree the user data directory serves, and so does $VECSHIFT_DATA
    // pointing at it; both give what the source tree gives.
    let args = ["embed", "--json", "-w", "bank", "-s", "We sat on the river bank."];
    let reference = json(&args);
    for (xdg, data) in [(Some(xdg.as_path()), None), (None, Some(installed.as_path()))] {
        let out = isolated(&args, home.path(), xdg, data, false);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), reference);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(walk(&path));
        } else {
            all.push(path);
        }
    }
    all
}

#[test]
fn nothing_found_names_the_three_places_and_install_data() {
    let home = tempfile::tempdir().unwrap();
    let empty = home.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (args, flag) in [(&["neighbors", "bank"][..], "--vectors"), (&["embed", "-w", "a", "-s", "a b", "--vectors", "data/glove-6B-50d/glove.6B.50d.100k.fifu"][..], "--bert")] {
        let out = isolated(args, home.path(), Some(&empty), Some(&empty), false);
        let err = stderr(&out);
        assert!(!out.status.success() && out.stdout.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        for needle in [
            "error: ",
            &format!("$VECSHIFT_DATA {}", empty.display()),
            &format!("the user data directory {}", empty.join("vecshift").display()),
            "the source tree vecshift was built from (not set)",
            "vecshift install-data",
            flag,
        ] {
            assert!(err.contains(needle), "{needle:?} missing from {err}");
        }
    }
    // With nothing set, the user data directory is ~/.local/share/vecshift.
    let out = isolated(&["neighbors", "bank"], home.path(), None, None, false);
    assert!(stderr(&out).contains(&home.path().join(".local/share/vecshift").display().to_string()), "{}", stderr(&out));
}

#[test]
fn install_data_refuses_a_damaged_source() {
    let home = tempfile::tempdir().unwrap();
    let from = home.path().join("clone-data");
    std::fs::create_dir_all(from.join("glove-6B-50d")).unwrap();
    std::fs::create_dir_all(from.join("all-MiniLM-L6-v2")).unwrap();
    for line in std::fs::read_to_string("data/SHA256SUMS").unwrap().lines() {
        let name = line.split_whitespace().nth(1).unwrap();
        std::fs::copy(Path::new("data").join(name), from.join(name)).unwrap();
    }
    std::fs::copy("data/SHA256SUMS", from.join("SHA256SUMS")).unwrap();
    std::fs::write(from.join("all-MiniLM-L6-v2/config.json"), "{}").unwrap();
    let to = home.path().join("target");
    let out = isolated(&["install-data", "--from", from.to_str().unwrap(), "--to", to.to_str().unwrap()], home.path(), None, None, false);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("config.json") && err.contains("sha256"), "{err}");
    assert!(!to.join("all-MiniLM-L6-v2/config.json").exists(), "a damaged file is not installed");
    let out = isolated(&["install-data", "--to", to.to_str().unwrap()], home.path(), None, None, false);
    assert!(stderr(&out).contains("pass --from DIR"), "{}", stderr(&out));
}

#[test]
fn completions_parse_and_cover_every_subcommand() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = vecshift(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} completions lack {command}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vecshift.completion");
        std::fs::write(&file, &script).unwrap();
        // Each shell that is installed checks the syntax of its script; bash always is.
        let check = match shell {
            "bash" => Some(("bash", "-n")),
            "zsh" => Some(("zsh", "-n")),
            "fish" => Some(("fish", "--no-execute")),
            _ => None,
        };
        if let Some((program, flag)) = check {
            match Command::new(program).arg(flag).arg(&file).output() {
                Ok(out) => assert!(out.status.success(), "{program} rejects the script: {}", stderr(&out)),
                Err(_) => assert_ne!(program, "bash", "bash is needed to check the bash completions"),
            }
        }
    }
    let out = vecshift(&["completions", "tcsh"]);
    assert!(!out.status.success() && stderr(&out).contains("tcsh"));
}

#[test]
fn man_page_documents_every_subcommand() {
    let out = vecshift(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH vecshift 1"), "roff with a title: {}", &page[..200.min(page.len())]);
    for command in subcommands() {
        // roff escapes the hyphen.
        let escaped = command.replace('-', "\\-");
        assert!(page.contains(&escaped), "the man page lacks {command}");
    }
    // `man` itself can format it where man-db is installed.
    if let Ok(out) = Command::new("man").arg("--version").output()
        && out.status.success()
    {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vecshift.1");
        std::fs::write(&file, &page).unwrap();
        let shown = Command::new("man").arg("-l").arg(&file).env("MANPAGER", "cat").env("MANWIDTH", "100").output().unwrap();
        assert!(shown.status.success(), "{}", stderr(&shown));
        assert!(String::from_utf8_lossy(&shown.stdout).contains("install-data"));
    }
}
