//! Downloading a model from a Hugging Face hub: a small server on 127.0.0.1 in this test
//! answers the requests hf-hub 0.4 makes (`GET {endpoint}/{repo}/resolve/{revision}/{file}`,
//! first with `Range: bytes=0-0` for the size, ETag and commit, then for the bytes) with the
//! tiny BERT fixture. The real binary downloads into a temporary HF_HOME, says from where and
//! how large, sends the token from HF_TOKEN or the token file, never prints it, and explains
//! a refused token.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_vecshift");
const REPO: &str = "acme/tiny-bert";
const COMMIT: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// The most connections one test's server answers before it stops.
const MAX_CONNECTIONS: usize = 64;

/// What the server does with a request.
#[derive(Clone, Copy)]
enum Policy {
    /// Serves the files; with `Some(token)`, only to `Authorization: Bearer <token>`, else 401.
    Serve(Option<&'static str>),
    /// Refuses everything with 403, as the hub does for a gated model whose terms were not accepted.
    Forbid,
}

/// One request the server saw.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
}

struct Hub {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hub {
    fn start(policy: Policy) -> Hub {
        Self::serving("tiny_bert/f32_noprefix", policy)
    }

    /// Serves every file of a folder of `tests/fixtures`.
    fn serving(fixture: &str, policy: Policy) -> Hub {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
        let files: HashMap<String, Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                (format!("/{REPO}/resolve/main/{}", path.file_name().unwrap().to_str().unwrap()), std::fs::read(path).unwrap())
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(stream) = stream else { continue };
                answer(stream, &files, policy, &log);
            }
        });
        Hub { endpoint, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request, logs it and answers it (`Connection: close`, so one request a connection).
/// The request is logged before the answer goes out: the client may exit, and the test read the
/// log, as soon as the answer arrives.
fn answer(stream: TcpStream, files: &HashMap<String, Vec<u8>>, policy: Policy, log: &Mutex<Vec<Seen>>) -> Option<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let authorization = headers.get("authorization").cloned();
    log.lock().unwrap().push(Seen { path: path.clone(), authorization: authorization.clone() });
    let refuse = |code: &str| -> (String, Vec<(String, String)>, Vec<u8>) {
        // Like some servers, say back what was sent: the client must not print it.
        let body = format!("{{\"error\": \"refused {}\"}}", authorization.as_deref().unwrap_or("no token"));
        (code.to_owned(), Vec::new(), body.into_bytes())
    };
    let (status, extra, body) = match policy {
        Policy::Forbid => refuse("403 Forbidden"),
        Policy::Serve(Some(token)) if authorization.as_deref() != Some(&format!("Bearer {token}")) => refuse("401 Unauthorized"),
        Policy::Serve(_) => match files.get(&path) {
            None => ("404 Not Found".to_owned(), Vec::new(), b"{\"error\": \"not found\"}".to_vec()),
            Some(content) => {
                let range = headers.get("range").and_then(|r| r.strip_prefix("bytes="));
                let (start, end) = match range.and_then(|r| r.split_once('-')) {
                    Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(content.len() - 1)),
                    None => (0, content.len() - 1),
                };
                let headers = vec![
                    ("ETag".to_owned(), format!("\"{:016x}{}\"", content.len(), path.len())),
                    ("X-Repo-Commit".to_owned(), COMMIT.to_owned()),
                    ("Content-Range".to_owned(), format!("bytes {start}-{end}/{}", content.len())),
                ];
                ("206 Partial Content".to_owned(), headers, content[start..=end].to_vec())
            }
        },
    };
    let mut stream = stream;
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(&body).ok()
}

/// Runs `vecshift embed` on the hub model with a clean environment: HF_HOME and HOME in
/// `home`, this hub as HF_ENDPOINT, no proxy, debug logging on (which must not show the token).
fn embed(hub: &Hub, home: &Path, token: Option<&str>) -> Output {
    let mut command = Command::new(BIN);
    command.args(["embed", "--bert", REPO, "--word", "bank", "--sentence", "We sat on the river bank."]);
    for var in [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        command.env_remove(var);
    }
    command.env("HF_HOME", home).env("HOME", home).env("HF_ENDPOINT", &hub.endpoint).env("VECSHIFT_LOG", "debug");
    if let Some(token) = token {
        command.env("HF_TOKEN", token);
    }
    command.output().unwrap()
}

fn snapshot(home: &Path) -> PathBuf {
    home.join("hub/models--acme--tiny-bert/snapshots").join(COMMIT)
}

/// Neither stdout nor stderr contains the token.
fn assert_never_shown(out: &Output, token: &str) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!String::from_utf8_lossy(text).contains(token), "the token is on {name}: {}", String::from_utf8_lossy(text));
    }
}

/// The one `error:` line of a failed run.
fn error_line(out: &Output) -> String {
    assert!(!out.status.success(), "it succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_owned()
}

#[test]
fn a_model_missing_from_the_cache_is_downloaded_with_the_token_and_said_where_from() {
    const TOKEN: &str = "hf_EnvToken0123456789abcdef";
    let hub = Hub::start(Policy::Serve(Some(TOKEN)));
    let home = tempfile::tempdir().unwrap();
    let out = embed(&hub, home.path(), Some(TOKEN));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_never_shown(&out, TOKEN);

    // One line per file before it downloads: from where (endpoint, repo, file) and how large.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_bert/f32_noprefix");
    for file in FILES {
        let url = format!("{}/{REPO}/resolve/main/{file}", hub.endpoint);
        let size = std::fs::metadata(fixture.join(file)).unwrap().len();
        let line = stderr.lines().find(|l| l.contains("downloading") && l.contains(&url)).unwrap_or_else(|| panic!("no line for {url}: {stderr}"));
        assert!(line.contains(&format!("{file} of {REPO}")) && line.contains(&format!("{size} bytes")), "{line}");
        // Into the cache under HF_HOME, as the Python tools lay it out.
        assert_eq!(std::fs::read(snapshot(home.path()).join(file)).unwrap(), std::fs::read(fixture.join(file)).unwrap(), "{file}");
    }
    assert_eq!(std::fs::read_to_string(home.path().join("hub/models--acme--tiny-bert/refs/main")).unwrap().trim(), COMMIT);
    let seen = hub.seen();
    for file in FILES {
        assert!(seen.iter().any(|r| r.path == format!("/{REPO}/resolve/main/{file}")), "{file} never asked for: {seen:?}");
    }
    for request in &seen {
        assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()), "{request:?}");
    }

    // Now in the cache: no request at all, and nothing said about downloading.
    let again = embed(&hub, home.path(), Some(TOKEN));
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("downloading"));
    assert_eq!(hub.seen().len(), seen.len(), "a cached model went to the network");
}

#[test]
fn the_token_file_under_hf_home_is_used_when_hf_token_is_unset() {
    const TOKEN: &str = "hf_FileToken9876543210zyxwv";
    let hub = Hub::start(Policy::Serve(Some(TOKEN)));
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let out = embed(&hub, home.path(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_never_shown(&out, TOKEN);
    assert!(snapshot(home.path()).join("model.safetensors").is_file());
    let seen = hub.seen();
    assert!(!seen.is_empty() && seen.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))), "{seen:?}");
}

#[test]
fn a_refused_token_is_a_clear_error_that_never_shows_it() {
    const WRONG: &str = "hf_WrongToken55555aaaaabbbbb";
    let hub = Hub::start(Policy::Serve(Some("hf_the_right_one")));
    let home = tempfile::tempdir().unwrap();
    let out = embed(&hub, home.path(), Some(WRONG));
    assert_never_shown(&out, WRONG);
    let error = error_line(&out);
    for needle in ["access denied (HTTP 401)", "check your token", "from HF_TOKEN", REPO, &hub.endpoint, "set or fix the token"] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
    assert!(!snapshot(home.path()).join("config.json").exists());

    // Without any token the message says none was sent and where one would be read from.
    let out = embed(&hub, home.path(), None);
    let error = error_line(&out);
    assert!(error.contains("access denied (HTTP 401)") && error.contains("none was sent") && error.contains("HF_TOKEN"), "{error}");
    assert!(hub.seen().iter().any(|r| r.authorization.is_none()), "the second run sent a token");
}

#[test]
fn a_gated_model_refused_with_403_names_the_token_file() {
    const TOKEN: &str = "hf_GatedToken777777cccccddddd";
    let hub = Hub::start(Policy::Forbid);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), TOKEN).unwrap();
    let out = embed(&hub, home.path(), None);
    assert_never_shown(&out, TOKEN);
    let error = error_line(&out);
    let token_file = home.path().join("token").display().to_string();
    for needle in ["access denied (HTTP 403)", "check your token", &token_file, "terms"] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
}

#[test]
fn a_sharded_model_is_downloaded_through_its_index() {
    let hub = Hub::serving("encoders/xlm-roberta", Policy::Serve(None));
    let home = tempfile::tempdir().unwrap();
    let out = embed(&hub, home.path(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // model.safetensors is asked for first (404), then the index and every shard it names.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoders/xlm-roberta");
    let seen = hub.seen();
    assert!(seen.iter().any(|r| r.path.ends_with("/model.safetensors")), "{seen:?}");
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert_eq!(std::fs::read(snapshot(home.path()).join(&name)).unwrap(), std::fs::read(fixture.join(&name)).unwrap(), "{name}");
    }
    // Cached: no request at all the second time.
    let again = embed(&hub, home.path(), None);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(hub.seen().len(), seen.len(), "a cached sharded model went to the network");
}
