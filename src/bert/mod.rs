//! The contextual engine: a BERT-architecture encoder with per-layer word vectors.

mod config;
mod half_weights;
mod kernels;
mod model;
pub mod sentence;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use tokenizers::{Encoding, Tokenizer};

pub use config::{BertConfig, HiddenAct, PositionEmbeddingType};
pub use model::{BertEmbeddings, BertModel};

use crate::engine::{Embedder, EngineKind, LayerVectors};
use crate::error::{Error, Result};
use crate::occurrence::Occurrence;
use crate::source::{ModelFiles, ModelSource};

/// How the vectors of a word's WordPieces become one word vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of all the word's pieces.
    #[default]
    Mean,
    /// The first piece.
    First,
    /// The last piece.
    Last,
}

impl FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mean" => Ok(Pooling::Mean),
            "first" => Ok(Pooling::First),
            "last" => Ok(Pooling::Last),
            _ => Err(Error::InvalidArgument(format!("unknown pooling {s:?}; expected mean, first or last"))),
        }
    }
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pooling::Mean => "mean",
            Pooling::First => "first",
            Pooling::Last => "last",
        })
    }
}

/// A sentence as token ids, with the positions of the target word's pieces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedOccurrence {
    /// Token ids, special tokens included, at most the model's maximum length.
    pub ids: Vec<u32>,
    /// Positions in `ids` of the target word's WordPieces.
    pub word_tokens: Range<usize>,
    /// Set when the sentence was longer than the model allows and a window around the target was kept.
    pub windowed_from: Option<usize>,
}

/// Sentences per forward pass: large enough to keep the matrix products efficient,
/// small enough that a batch of long sentences stays well within memory.
const BATCH_SIZE: usize = 32;

/// A BERT-architecture checkpoint behind the [`Embedder`] trait.
///
/// On the CPU, the encoder runs on rayon's global pool (`RAYON_NUM_THREADS` threads, default
/// all cores). Weights stored as f16 stay f16 in memory on CPUs with AVX-512 (computed in f32);
/// other checkpoints use candle's matrix product, which looks up its thread count again at every
/// product (reading `/proc/cpuinfo`) unless `RAYON_NUM_THREADS` is set: programs that encode
/// many short sentences should set it, as the `vecshift` binary does.
///
/// ```no_run
/// use vecshift::{BertEncoder, Embedder, Occurrence};
/// let bert = BertEncoder::load_default()?;
/// let river = bert.embed(&Occurrence::find("We sat on the river bank.", "bank")?)?;
/// let money = bert.embed(&Occurrence::find("The bank approved my loan.", "bank")?)?;
/// let last = bert.num_layers() - 1;
/// let cos = vecshift::cosine(river.layer(last).unwrap(), money.layer(last).unwrap());
/// println!("cosine at layer {last}: {cos:.3}");
/// # Ok::<(), vecshift::Error>(())
/// ```
pub struct BertEncoder {
    name: String,
    dir: PathBuf,
    config: BertConfig,
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    device: Device,
}

impl BertEncoder {
    /// Loads a checkpoint directory holding `config.json`, `model.safetensors` and `tokenizer.json`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let files = ModelFiles::in_dir(dir)?;
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        Self::load_files(&files, name)
    }

    /// Loads from a local directory or a Hugging Face model id (see [`ModelSource`]).
    pub fn load_source(source: &ModelSource) -> Result<Self> {
        let files = source.resolve()?;
        Self::load_files(&files, source.to_string())
    }

    /// Loads the embedded default model (all-MiniLM-L6-v2, f16 weights) from the source
    /// tree's `data/` (see [`crate::source::source_tree_data_dir`]).
    pub fn load_default() -> Result<Self> {
        Self::load(crate::source::default_bert_dir())
    }

    /// Loads the default model from a data directory laid out like the source tree's `data/`
    /// (for instance the one `vecshift install-data` fills).
    pub fn load_default_from(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::load(crate::source::default_bert_dir_in(data_dir.as_ref()))
    }

    /// Loads from resolved files onto the device `VECSHIFT_DEVICE` names (default: the CPU);
    /// `name` is what [`Embedder::name`] reports.
    pub fn load_files(files: &ModelFiles, name: String) -> Result<Self> {
        Self::load_files_on(files, name, &device_from_env()?)
    }

    /// Loads from resolved files onto the given device.
    pub fn load_files_on(files: &ModelFiles, name: String, device: &Device) -> Result<Self> {
        let dir = files.dir.clone();
        let model_error = |reason: String| Error::Model { path: dir.clone(), reason };

        let config_text = std::fs::read_to_string(&files.config).map_err(|e| Error::io(&files.config, e))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| model_error(format!("config.json is not a supported BERT config: {e}")))?;
        config.validate().map_err(|e| model_error(format!("config.json: {e}")))?;

        let mut tokenizer = Tokenizer::from_file(&files.tokenizer)
            .map_err(|e| model_error(format!("cannot read tokenizer.json: {e}")))?;
        // tokenizer.json may pad or truncate (MiniLM's pads to 128); vecshift pads and windows itself.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| model_error(format!("cannot disable truncation: {e}")))?;
        let tokenizer_vocab = tokenizer.get_vocab_size(true);
        if tokenizer_vocab > config.vocab_size {
            return Err(model_error(format!(
                "tokenizer.json has {tokenizer_vocab} tokens but the model only {} embeddings: the tokenizer belongs to another model",
                config.vocab_size
            )));
        }

        let device = device.clone();
        // Weights may be stored as f16 or bf16; they are widened once to f32 at load.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&files.weights], DType::F32, &device) }
            .map_err(|e| model_error(format!("cannot read {}: {}", files.weights.display(), crate::error::candle_message(&e))))?;
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let model = BertModel::load(vb, &config).map_err(|e| model_error(format!("weights do not match config.json: {}", crate::error::candle_message(&e))))?;

        Ok(BertEncoder { name, dir: files.dir.clone(), config, model, tokenizer, pooling: Pooling::default(), device })
    }

    /// Returns the encoder with another pooling of WordPieces.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// The current pooling.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The model's configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The directory the files were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tokenizer, with padding and truncation switched off.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokenizes a sentence and finds the target word's WordPieces.
    ///
    /// A sentence longer than the model's positions is cut to a window centred on the
    /// target (`windowed_from` says so); the target itself is never cut.
    pub fn tokenize(&self, occurrence: &Occurrence) -> Result<TokenizedOccurrence> {
        let encoding = self.encode_text(&occurrence.sentence)?;
        self.tokenize_encoding(&encoding, occurrence)
    }

    /// The tokenizer's encoding of a sentence, special tokens included.
    fn encode_text(&self, sentence: &str) -> Result<Encoding> {
        self.tokenizer
            .encode(sentence, true)
            .map_err(|e| Error::Tokenizer { sentence: sentence.to_owned(), reason: e.to_string() })
    }

    /// [`tokenize`](Self::tokenize) on an encoding already made by [`encode_text`](Self::encode_text).
    fn tokenize_encoding(&self, encoding: &Encoding, occurrence: &Occurrence) -> Result<TokenizedOccurrence> {
        let sentence = &occurrence.sentence;
        let special = encoding.get_special_tokens_mask();
        let Some(Range { start: first, end }) = word_pieces(encoding, &occurrence.span) else {
            return Err(Error::Tokenizer {
                sentence: sentence.clone(),
                reason: format!("the word {:?} produced no WordPieces (is it only punctuation or invisible characters?)", occurrence.word()),
            });
        };
        let last = end - 1;
        let ids = encoding.get_ids();
        let max = self.config.max_position_embeddings;
        if ids.len() <= max {
            return Ok(TokenizedOccurrence { ids: ids.to_vec(), word_tokens: first..last + 1, windowed_from: None });
        }

        // Keep the special tokens at both ends and the window of content tokens around the word.
        let lead = special.iter().take_while(|&&s| s == 1).count();
        let trail = special.iter().rev().take_while(|&&s| s == 1).count();
        let budget = max - lead - trail;
        let word_len = last + 1 - first;
        if word_len > budget {
            return Err(Error::Tokenizer {
                sentence: sentence.chars().take(80).collect(),
                reason: format!("the word alone has {word_len} WordPieces, more than the model's {max} positions"),
            });
        }
        let content_end = ids.len() - trail;
        let start = (first + word_len / 2).saturating_sub(budget / 2).clamp(lead, content_end - budget);
        let mut windowed = ids[..lead].to_vec();
        windowed.extend_from_slice(&ids[start..start + budget]);
        windowed.extend_from_slice(&ids[content_end..]);
        let shift = start - lead;
        Ok(TokenizedOccurrence { ids: windowed, word_tokens: first - shift..last + 1 - shift, windowed_from: Some(ids.len()) })
    }

    /// Runs the encoder on tokenized sentences (padded and masked into one batch) and pools
    /// each target word per layer.
    pub fn encode_tokenized(&self, batch: &[TokenizedOccurrence]) -> Result<Vec<LayerVectors>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let sentences: Vec<sentence::TokenizedSentence> =
            batch.iter().map(|t| sentence::TokenizedSentence { target: t.clone(), words: Vec::new() }).collect();
        let refs: Vec<&sentence::TokenizedSentence> = sentences.iter().collect();
        Ok(self.encode_sentences(&refs)?.into_iter().map(|s| s.target).collect())
    }
}

/// Positions of the (non-special) WordPieces that overlap a byte span, if any.
fn word_pieces(encoding: &Encoding, span: &Range<usize>) -> Option<Range<usize>> {
    let special = encoding.get_special_tokens_mask();
    let mut pieces = encoding
        .get_offsets()
        .iter()
        .enumerate()
        .filter(|&(i, &(start, end))| special[i] == 0 && start < span.end && end > span.start)
        .map(|(i, _)| i);
    let first = pieces.next()?;
    Some(first..pieces.next_back().unwrap_or(first) + 1)
}

/// The device named by `VECSHIFT_DEVICE`: `cpu` (default), `cuda`, `cuda:N` or `metal`.
///
/// GPUs need a build with `--features cuda` (or `metal`); asking for one without it is an error
/// that says so rather than a silent fall-back to the CPU.
pub fn device_from_env() -> Result<Device> {
    let wanted = std::env::var("VECSHIFT_DEVICE").unwrap_or_default();
    let wanted = wanted.trim().to_ascii_lowercase();
    let unavailable = |what: &str, feature: &str| {
        Error::InvalidArgument(format!(
            "VECSHIFT_DEVICE={what}: this vecshift was built without {feature} support; rebuild with `cargo build --release --features {feature}` or use VECSHIFT_DEVICE=cpu"
        ))
    };
    match wanted.as_str() {
        "" | "cpu" => Ok(Device::Cpu),
        cuda if cuda.starts_with("cuda") => {
            let ordinal = cuda.strip_prefix("cuda").unwrap_or("").trim_start_matches(':');
            let ordinal: usize = if ordinal.is_empty() { 0 } else {
                ordinal.parse().map_err(|_| Error::InvalidArgument(format!("VECSHIFT_DEVICE={cuda}: expected cuda or cuda:N")))?
            };
            if cfg!(feature = "cuda") { Ok(Device::new_cuda(ordinal)?) } else { Err(unavailable(cuda, "cuda")) }
        }
        "metal" => if cfg!(feature = "metal") { Ok(Device::new_metal(0)?) } else { Err(unavailable("metal", "metal")) },
        other => Err(Error::InvalidArgument(format!("VECSHIFT_DEVICE={other}: expected cpu, cuda, cuda:N or metal"))),
    }
}

impl Embedder for BertEncoder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> usize {
        self.config.hidden_size
    }

    fn num_layers(&self) -> usize {
        self.model.num_layers() + 1
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Contextual
    }

    /// Tokenizes, sorts by length so each padded batch wastes little, encodes in batches,
    /// and returns the results in the input order.
    fn embed_batch(&self, occurrences: &[Occurrence]) -> Result<Vec<LayerVectors>> {
        let tokenized = occurrences.iter().map(|o| self.tokenize(o)).collect::<Result<Vec<_>>>()?;
        for (occ, t) in occurrences.iter().zip(&tokenized) {
            if let Some(total) = t.windowed_from {
                log::warn!(
                    "sentence of {total} tokens is longer than {}'s {} positions: encoded a window of it around {:?}",
                    self.name, self.config.max_position_embeddings, occ.word()
                );
            }
        }
        let mut order: Vec<usize> = (0..tokenized.len()).collect();
        order.sort_by_key(|&i| tokenized[i].ids.len());
        let mut results: Vec<Option<LayerVectors>> = vec![None; tokenized.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<TokenizedOccurrence> = chunk.iter().map(|&i| tokenized[i].clone()).collect();
            for (&i, vectors) in chunk.iter().zip(self.encode_tokenized(&batch)?) {
                results[i] = Some(vectors);
            }
        }
        Ok(results.into_iter().map(|r| r.expect("every occurrence is in one batch")).collect())
    }
}
