//! Where models come from: the embedded defaults in `data/`, local directories, and the
//! Hugging Face hub cache.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

/// The files a BERT checkpoint needs.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The project's `data/` folder, or `$VECSHIFT_DATA` when set.
pub fn data_dir() -> PathBuf {
    std::env::var_os("VECSHIFT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// The embedded default BERT model (all-MiniLM-L6-v2, f16).
pub fn default_bert_dir() -> PathBuf {
    data_dir().join("all-MiniLM-L6-v2")
}

/// The embedded default static vectors (GloVe 6B 50d, 100,000 most frequent words, finalfusion).
pub fn default_vectors_path() -> PathBuf {
    data_dir().join("glove-6B-50d").join("glove.6B.50d.100k.fifu")
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
    /// `model.safetensors`.
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
        let missing: Vec<&str> = REQUIRED_FILES.into_iter().filter(|f| !dir.join(f).is_file()).collect();
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
            weights: dir.join("model.safetensors"),
        })
    }
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
}

impl HubOptions {
    /// Reads `HF_HUB_CACHE`, `HF_HOME`, `HF_HUB_OFFLINE` and `HF_ENDPOINT` as the Python tools do.
    pub fn from_env() -> Self {
        let cache_dir = std::env::var_os("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Cache::from_env().path().clone());
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"));
        HubOptions { cache_dir, offline, endpoint: std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()) }
    }
}

fn resolve_hub(id: &str, revision: &str, options: &HubOptions) -> Result<ModelFiles> {
    let repo = Repo::with_revision(id.to_owned(), RepoType::Model, revision.to_owned());
    let cached = |file: &str| cached_file(&options.cache_dir, id, revision, file);
    let mut missing: Vec<String> = REQUIRED_FILES.iter().filter(|f| cached(f).is_none()).map(|f| f.to_string()).collect();
    let mut reason = None;
    if !missing.is_empty() && !options.offline {
        let mut builder = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(options.cache_dir.clone()));
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        let endpoint = options.endpoint.as_deref().unwrap_or("https://huggingface.co");
        match builder.build() {
            Ok(api) => {
                let api = api.repo(repo);
                for file in missing.clone() {
                    log::info!("downloading {file} of {id}@{revision} from {endpoint}");
                    match api.get(&file) {
                        Ok(_) => missing.retain(|f| f != &file),
                        Err(e) => {
                            reason = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
            Err(e) => reason = Some(e.to_string()),
        }
    }
    if !missing.is_empty() {
        let model = if revision == "main" { id.to_owned() } else { format!("{id}@{revision}") };
        return Err(Error::MissingModelFiles {
            hint: format!(
                "go online once (and unset HF_HUB_OFFLINE), or fetch them with `huggingface-cli download {id} {}`{}, or pass a local directory with --bert DIR",
                missing.join(" "),
                if revision == "main" { String::new() } else { format!(" --revision {revision}") }
            ),
            model,
            missing,
            cache: options.cache_dir.clone(),
            reason: if options.offline { Some("HF_HUB_OFFLINE is set".into()) } else { reason },
        });
    }
    let file = |name: &str| cached(name).expect("checked above");
    let weights = file("model.safetensors");
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
}
