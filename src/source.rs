//! Where models come from: the embedded defaults in `data/`, local directories, and the
//! Hugging Face hub cache.

use std::path::{Path, PathBuf};

use hf_hub::api::Progress;
use hf_hub::api::sync::ApiError;
use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

/// The files a BERT checkpoint needs.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The index of a checkpoint sharded into several safetensors files, which stands in for
/// `model.safetensors`: its `weight_map` names the shard of every tensor.
pub const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

/// Where the embedded default BERT model lies inside a data directory.
pub const DEFAULT_BERT: &str = "all-MiniLM-L6-v2";

/// Where the embedded default static vectors lie inside a data directory.
pub const DEFAULT_VECTORS: &str = "glove-6B-50d/glove.6B.50d.100k.fifu";

/// The `data/` folder of the source tree this library was compiled from. It holds the default
/// models as long as that tree exists; an installed binary looks in other places first (see
/// `vecshift install-data`), and the library itself reads no environment variable.
pub fn source_tree_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The same as [`source_tree_data_dir`]; kept under its old name.
pub fn data_dir() -> PathBuf {
    source_tree_data_dir()
}

/// The embedded default BERT model (all-MiniLM-L6-v2, f16) in the source tree's `data/`.
pub fn default_bert_dir() -> PathBuf {
    default_bert_dir_in(&source_tree_data_dir())
}

/// The embedded default static vectors (GloVe 6B 50d, 100,000 most frequent words,
/// finalfusion) in the source tree's `data/`.
pub fn default_vectors_path() -> PathBuf {
    default_vectors_path_in(&source_tree_data_dir())
}

/// The default BERT model's directory inside the data directory `data`.
pub fn default_bert_dir_in(data: &Path) -> PathBuf {
    data.join(DEFAULT_BERT)
}

/// The default static vectors' file inside the data directory `data`.
pub fn default_vectors_path_in(data: &Path) -> PathBuf {
    data.join(DEFAULT_VECTORS)
}

/// The paths of one checkpoint's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    /// The directory (a snapshot directory for hub models).
    pub dir: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `model.safetensors`, or the [`WEIGHTS_INDEX`] of a sharded checkpoint (see
    /// [`weight_files`](Self::weight_files)).
    pub weights: PathBuf,
}

impl ModelFiles {
    /// Finds the files in a local directory; names every missing one.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let model_error = |reason: String| Error::Model { path: dir.to_owned(), reason };
        if !dir.is_dir() {
            return Err(model_error(if dir.exists() {
                "this is a file; pass the directory holding config.json, tokenizer.json and model.safetensors".into()
            } else {
                "no such directory (for a Hugging Face model id use the form org/name)".into()
            }));
        }
        let sharded = !dir.join("model.safetensors").is_file() && dir.join(WEIGHTS_INDEX).is_file();
        let present = |f: &str| dir.join(f).is_file() || (sharded && f == "model.safetensors");
        let missing: Vec<&str> = REQUIRED_FILES.into_iter().filter(|f| !present(f)).collect();
        if missing.contains(&"model.safetensors") && dir.join("pytorch_model.bin").exists() {
            return Err(model_error(
                "only pickled PyTorch weights (pytorch_model.bin) are present, and vecshift never runs pickle code; \
                 convert them once with Python: `from transformers import AutoModel; AutoModel.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`"
                    .into(),
            ));
        }
        if !missing.is_empty() {
            return Err(model_error(format!("missing {}", missing.join(", "))));
        }
        Ok(ModelFiles {
            dir: dir.to_owned(),
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join(if sharded { WEIGHTS_INDEX } else { "model.safetensors" }),
        })
    }

    /// The safetensors files that hold the weights: `model.safetensors`, or the shards a
    /// [`WEIGHTS_INDEX`] names (beside it), each once, all of which must exist.
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        weight_files(&self.weights)
    }
}

/// The safetensors files behind `weights`: the file itself, or the shards a [`WEIGHTS_INDEX`]
/// names (beside it), each once, all of which must exist.
pub fn weight_files(weights: &Path) -> Result<Vec<PathBuf>> {
    if weights.file_name().is_none_or(|name| name != WEIGHTS_INDEX) {
        return Ok(vec![weights.to_owned()]);
    }
    let dir = weights.parent().unwrap_or(Path::new("."));
    let shards = shard_names(weights)?;
    let missing: Vec<&str> = shards.iter().map(String::as_str).filter(|s| !dir.join(s).is_file()).collect();
    if !missing.is_empty() {
        return Err(Error::Model {
            path: weights.to_owned(),
            reason: format!(
                "names the shard{} {}, missing beside it; copy or download {} into {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                dir.display()
            ),
        });
    }
    Ok(shards.iter().map(|s| dir.join(s)).collect())
}

/// The shard files a [`WEIGHTS_INDEX`] names, each once.
fn shard_names(index: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let invalid = |reason: String| Error::Model { path: index.to_owned(), reason };
    let parsed: Index = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("is not a safetensors index (a JSON object with a \"weight_map\" of tensor to file): {e}")))?;
    let mut shards: Vec<String> = Vec::new();
    for file in parsed.weight_map.into_values() {
        // A shard name is a file beside the index, never a path elsewhere.
        if file.is_empty() || file.contains(['/', '\\']) || file == ".." {
            return Err(invalid(format!("names {file:?} as a shard; shards must be file names beside the index")));
        }
        if !shards.contains(&file) {
            shards.push(file);
        }
    }
    if shards.is_empty() {
        return Err(invalid("has an empty \"weight_map\": it names no shard".into()));
    }
    Ok(shards)
}

/// A model named on the command line: a local directory or a Hugging Face model id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory with the model's files.
    Local(PathBuf),
    /// A Hugging Face model id, e.g. `sentence-transformers/all-MiniLM-L6-v2`, at a revision.
    Hub {
        /// `org/name` or `name`.
        id: String,
        /// Branch, tag or commit; `main` by default.
        revision: String,
    },
}

impl ModelSource {
    /// Reads `DIR`, `org/name` or `org/name@revision`: an existing path is a directory,
    /// anything else shaped like a model id is a hub model.
    pub fn parse(text: &str) -> Result<Self> {
        let path = Path::new(text);
        if path.exists() || text.starts_with('.') || text.starts_with('/') || text.starts_with('~') {
            return Ok(ModelSource::Local(path.to_owned()));
        }
        let (id, revision) = text.split_once('@').unwrap_or((text, "main"));
        let valid_part = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let parts: Vec<&str> = id.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|p| valid_part(p)) || revision.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{text:?} is neither an existing directory nor a Hugging Face model id (org/name[@revision])"
            )));
        }
        Ok(ModelSource::Hub { id: id.to_owned(), revision: revision.to_owned() })
    }

    /// Finds the model's files, looking in the Hugging Face cache for hub ids and
    /// downloading what is missing unless offline (see [`HubOptions::from_env`]).
    pub fn resolve(&self) -> Result<ModelFiles> {
        self.resolve_with(&HubOptions::from_env())
    }

    /// Like [`resolve`](Self::resolve) with explicit hub options.
    pub fn resolve_with(&self, options: &HubOptions) -> Result<ModelFiles> {
        match self {
            ModelSource::Local(dir) => ModelFiles::in_dir(dir),
            ModelSource::Hub { id, revision } => resolve_hub(id, revision, options),
        }
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Local(dir) => write!(f, "{}", dir.display()),
            ModelSource::Hub { id, revision } if revision == "main" => f.write_str(id),
            ModelSource::Hub { id, revision } => write!(f, "{id}@{revision}"),
        }
    }
}

/// How to reach the Hugging Face hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubOptions {
    /// The hub cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Never download (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Another hub endpoint (`HF_ENDPOINT`), e.g. a mirror.
    pub endpoint: Option<String>,
    /// The access token sent with downloads, for private and gated models.
    pub token: Option<HubToken>,
}

/// A Hugging Face access token and where it was found. It is sent to the hub only; its
/// `Debug` hides it, it has no `Display`, and error messages never contain it.
#[derive(Clone, PartialEq, Eq)]
pub struct HubToken {
    secret: String,
    origin: String,
}

impl HubToken {
    /// A token, and where it came from in words (e.g. "HF_TOKEN"), for messages.
    pub fn new(secret: impl Into<String>, origin: impl Into<String>) -> Self {
        HubToken { secret: secret.into(), origin: origin.into() }
    }

    /// Where the token came from, e.g. `HF_TOKEN` or `the token file ~/.cache/huggingface/token`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Reads the token as the Python tools do: `HF_TOKEN` (or the older
    /// `HUGGING_FACE_HUB_TOKEN`), else the file `$HF_TOKEN_PATH`, else `$HF_HOME/token`
    /// (default `~/.cache/huggingface/token`, where `huggingface-cli login` writes it).
    pub fn from_env() -> Option<Self> {
        for var in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
            if let Ok(value) = std::env::var(var)
                && !value.trim().is_empty()
            {
                return Some(HubToken::new(value.trim(), var));
            }
        }
        let path = token_path();
        let text = std::fs::read_to_string(&path).ok()?;
        Some(HubToken::new(text.trim(), format!("the token file {}", path.display()))).filter(|t| !t.secret.is_empty())
    }

    /// The text with every copy of the token replaced, for messages built from others' errors.
    fn scrub(&self, text: &str) -> String {
        text.replace(&self.secret, "[token]")
    }
}

impl std::fmt::Debug for HubToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HubToken(hidden, from {})", self.origin)
    }
}

/// Where the token file is read from: `$HF_TOKEN_PATH`, else `$HF_HOME/token`.
fn token_path() -> PathBuf {
    std::env::var_os("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| Cache::from_env().token_path())
}

impl HubOptions {
    /// Reads `HF_HUB_CACHE`, `HF_HOME`, `HF_HUB_OFFLINE`, `HF_ENDPOINT` and the token
    /// (see [`HubToken::from_env`]) as the Python tools do.
    pub fn from_env() -> Self {
        let cache_dir = std::env::var_os("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Cache::from_env().path().clone());
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"));
        HubOptions {
            cache_dir,
            offline,
            endpoint: std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()),
            token: HubToken::from_env(),
        }
    }
}

/// Says where a download comes from and how large it is, once its size is known (hf-hub
/// asks the hub for it before the transfer starts).
struct Announce<'a> {
    url: &'a str,
    model: &'a str,
    file: &'a str,
    cache: &'a Path,
    said: bool,
}

impl Progress for Announce<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        if !self.said {
            self.said = true;
            let size = match size {
                0..1024 => format!("{size} bytes"),
                _ => format!("{:.1} MiB, {size} bytes", size as f64 / (1024.0 * 1024.0)),
            };
            log::info!("downloading {} of {} from {} ({size}) into {}", self.file, self.model, self.url, self.cache.display());
        }
    }

    fn update(&mut self, _size: usize) {}

    fn finish(&mut self) {}
}

/// Why a download failed, in words that say what to do; never with the token in them.
fn download_failure(error: &ApiError, url: &str, id: &str, options: &HubOptions) -> (String, bool) {
    let (text, denied) = match error {
        ApiError::RequestError(request) => match request.as_ref() {
            ureq::Error::Status(code @ (401 | 403), _) => {
                let token = match &options.token {
                    Some(token) => format!(
                        "the one from {} was sent and refused: it may be wrong or expired, or your account may lack access to {id} (a gated model needs its terms accepted on its hub page)",
                        token.origin()
                    ),
                    None => format!(
                        "none was sent: {id} may be private or gated (or may not exist); set HF_TOKEN or log in with `huggingface-cli login` (the token file is {})",
                        token_path().display()
                    ),
                };
                (format!("access denied (HTTP {code}) for {url}; check your token: {token}"), true)
            }
            ureq::Error::Status(404, _) => {
                (format!("not found (HTTP 404): {url}; check the model id, the revision and that the model has this file"), false)
            }
            ureq::Error::Status(code, _) => (format!("the hub answered HTTP {code} for {url}"), false),
            ureq::Error::Transport(transport) => (format!("cannot reach {url}: {transport}"), false),
        },
        other => (format!("{other} (downloading {url})"), false),
    };
    let text = match &options.token {
        Some(token) => token.scrub(&text),
        None => text,
    };
    (text, denied)
}

/// Whether the hub answered that the file does not exist.
fn is_not_found(error: &ApiError) -> bool {
    matches!(error, ApiError::RequestError(request) if matches!(request.as_ref(), ureq::Error::Status(404, _)))
}

fn resolve_hub(id: &str, revision: &str, options: &HubOptions) -> Result<ModelFiles> {
    let repo = Repo::with_revision(id.to_owned(), RepoType::Model, revision.to_owned());
    let model = if revision == "main" { id.to_owned() } else { format!("{id}@{revision}") };
    let cached = |file: &str| cached_file(&options.cache_dir, id, revision, file);
    // A sharded checkpoint has an index in place of model.safetensors, and its shards.
    let mut weights_name = match cached("model.safetensors").is_none() && cached(WEIGHTS_INDEX).is_some() {
        true => WEIGHTS_INDEX,
        false => "model.safetensors",
    };
    let uncached_shards = |index: &Path| -> Result<Vec<String>> {
        Ok(shard_names(index)?.into_iter().filter(|shard| cached(shard).is_none()).collect())
    };
    // Only a file missing from the cache is asked for: a warm cache means no network at all.
    let mut missing: Vec<String> =
        ["config.json", "tokenizer.json", weights_name].iter().filter(|f| cached(f).is_none()).map(|f| f.to_string()).collect();
    if let Some(index) = cached(WEIGHTS_INDEX).filter(|_| weights_name == WEIGHTS_INDEX) {
        missing.extend(uncached_shards(&index)?);
    }
    let mut reason = None;
    let mut denied = false;
    if !missing.is_empty() && !options.offline {
        // The token is ours to choose (hf-hub would read only `$HF_HOME/token`).
        let mut builder = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(options.cache_dir.clone()))
            .with_progress(false)
            .with_token(options.token.as_ref().map(|t| t.secret.clone()));
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        match builder.build() {
            Ok(api) => {
                let api = api.repo(repo);
                // Each pass takes the first missing file off the list (or replaces it).
                while let Some(file) = missing.first().cloned() {
                    let url = api.url(&file);
                    let announce = Announce { url: &url, model: &model, file: &file, cache: &options.cache_dir, said: false };
                    match api.download_with_progress(&file, announce) {
                        Ok(path) if file == WEIGHTS_INDEX => {
                            missing.remove(0);
                            missing.extend(uncached_shards(&path)?);
                        }
                        Ok(_) => {
                            missing.remove(0);
                        }
                        // No single weights file: the checkpoint may be sharded.
                        Err(e) if file == "model.safetensors" && is_not_found(&e) => {
                            weights_name = WEIGHTS_INDEX;
                            missing[0] = WEIGHTS_INDEX.to_owned();
                        }
                        Err(e) => {
                            let (text, refused) = download_failure(&e, &url, id, options);
                            (reason, denied) = (Some(text), refused);
                            break;
                        }
                    }
                }
            }
            Err(e) => reason = Some(e.to_string()),
        }
    }
    if !missing.is_empty() {
        let files = missing.join(" ");
        let revision_flag = if revision == "main" { String::new() } else { format!(" --revision {revision}") };
        let hint = if denied {
            format!("set or fix the token and run again, or fetch them with `huggingface-cli download {id} {files}`{revision_flag}, or pass a local directory with --bert DIR")
        } else {
            format!("go online once (and unset HF_HUB_OFFLINE), or fetch them with `huggingface-cli download {id} {files}`{revision_flag}, or pass a local directory with --bert DIR")
        };
        return Err(Error::MissingModelFiles {
            hint,
            model,
            missing,
            cache: options.cache_dir.clone(),
            reason: if options.offline { Some("HF_HUB_OFFLINE is set".into()) } else { reason },
        });
    }
    let file = |name: &str| cached(name).expect("checked above");
    let weights = file(weights_name);
    Ok(ModelFiles {
        dir: weights.parent().map(Path::to_owned).unwrap_or_default(),
        config: file("config.json"),
        tokenizer: file("tokenizer.json"),
        weights,
    })
}

/// A file in the hub cache layout: `models--org--name/snapshots/<commit>/<file>`, where the
/// commit is read from `refs/<revision>` or is the revision itself.
fn cached_file(cache_dir: &Path, id: &str, revision: &str, file: &str) -> Option<PathBuf> {
    let repo_dir = cache_dir.join(format!("models--{}", id.replace('/', "--")));
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|_| revision.to_owned());
    let path = repo_dir.join("snapshots").join(commit).join(file);
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            ModelSource::parse("bert-base-uncased").unwrap(),
            ModelSource::Hub { id: "bert-base-uncased".into(), revision: "main".into() }
        );
        assert_eq!(
            ModelSource::parse("sentence-transformers/all-MiniLM-L6-v2@v1.0").unwrap(),
            ModelSource::Hub { id: "sentence-transformers/all-MiniLM-L6-v2".into(), revision: "v1.0".into() }
        );
        assert_eq!(ModelSource::parse("./no/such/dir").unwrap(), ModelSource::Local("./no/such/dir".into()));
        assert!(ModelSource::parse("a/b/c").is_err());
        assert!(ModelSource::parse("bad name").is_err());
    }

    #[test]
    fn tokens_are_never_shown() {
        let token = HubToken::new("hf_SecretValue123", "HF_TOKEN");
        let options = HubOptions { cache_dir: "/c".into(), offline: false, endpoint: None, token: Some(token.clone()) };
        let shown = format!("{options:?} {token:?}");
        assert!(!shown.contains("hf_SecretValue123") && shown.contains("HF_TOKEN"), "{shown}");
        assert_eq!(token.scrub("a hf_SecretValue123 b"), "a [token] b");
    }
}
