//! Contextual engines: transformer models with per-layer word vectors.
//!
//! [`ContextualEncoder`] is the architecture-independent half: tokenize, locate the word's
//! pieces, cut a window out of a sentence longer than the model, batch, run, pool
//! (`pipeline.rs`). The architecture itself, chosen by `config.json`'s `model_type`, is one file
//! in [`models`]; the layers and CPU kernels they share are in `nn`.

pub mod models;
pub(crate) mod nn;
mod pipeline;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use tokenizers::{ModelWrapper, Tokenizer};

pub use models::bert::{BertConfig, BertEmbeddings, BertModel, HiddenAct, PositionEmbeddingType};
pub use models::{ContextualModel, ModelInfo, supported_model_types};
pub use pipeline::{TokenizedOccurrence, TokenizedSentence};

use crate::compress::{Checkpoint, Variant};
use crate::engine::{Embedder, Embedding, EngineKind, Pooling, SentenceEmbedder, SentenceVectors};
use crate::error::{Error, Result};
use crate::occurrence::Occurrence;
use crate::source::{ModelFiles, ModelSource};

/// How to load a contextual model.
///
/// The `vecshift` binary builds this from its flags and environment (`--device`,
/// `VECSHIFT_DEVICE`); the library itself reads no environment variable.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    device: Device,
    name: Option<String>,
    variant: Option<Variant>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { device: Device::Cpu, name: None, variant: None }
    }
}

impl LoadOptions {
    /// Runs the model on `device` (default: the CPU).
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Reports the engine under `name` instead of the model's directory or hub id.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Applies a compression variant to the weights before the model is built (see
    /// [`crate::compress`]).
    pub fn variant(mut self, variant: Variant) -> Self {
        self.variant = Some(variant);
        self
    }

    /// The variant applied at load, if any.
    pub fn get_variant(&self) -> Option<&Variant> {
        self.variant.as_ref()
    }

    /// The device the model will run on.
    pub fn get_device(&self) -> &Device {
        &self.device
    }
}

/// Parses a device name: `cpu`, `cuda`, `cuda:N` or `metal`.
///
/// GPUs need a build with the `cuda` (or `metal`) feature; asking for one without it is an error
/// that says so rather than a silent fall-back to the CPU.
pub fn parse_device(text: &str) -> Result<Device> {
    let wanted = text.trim().to_ascii_lowercase();
    let unavailable = |what: &str, feature: &str| {
        Error::InvalidArgument(format!(
            "device {what}: this vecshift was built without {feature} support; rebuild with `cargo build --release --features {feature}` or use the cpu"
        ))
    };
    match wanted.as_str() {
        "" | "cpu" => Ok(Device::Cpu),
        cuda if cuda.starts_with("cuda") => {
            let ordinal = cuda.strip_prefix("cuda").unwrap_or("").trim_start_matches(':');
            let ordinal: usize = if ordinal.is_empty() {
                0
            } else {
                ordinal.parse().map_err(|_| Error::InvalidArgument(format!("device {cuda}: expected cuda or cuda:N")))?
            };
            if !cfg!(feature = "cuda") {
                return Err(unavailable(cuda, "cuda"));
            }
            Device::new_cuda(ordinal).map_err(|e| {
                Error::InvalidArgument(format!(
                    "device {cuda}: no usable CUDA GPU ({}); use the cpu",
                    crate::error::candle_message(&e)
                ))
            })
        }
        "metal" if cfg!(feature = "metal") => Device::new_metal(0)
            .map_err(|e| Error::InvalidArgument(format!("device metal: {}; use the cpu", crate::error::candle_message(&e)))),
        "metal" => Err(unavailable("metal", "metal")),
        other => Err(Error::InvalidArgument(format!("device {other:?}: expected cpu, cuda, cuda:N or metal"))),
    }
}

/// A transformer checkpoint (any architecture of [`models::ARCHITECTURES`]) behind the
/// [`Embedder`] trait.
///
/// On the CPU, the model runs on the current rayon pool (the global one has `RAYON_NUM_THREADS`
/// threads, default all cores). A batch of enough tokens is cut into parts, each its own forward
/// pass on one of the pool's threads (the same vectors as one pass). A single sentence or a
/// small batch is one pass shared by the pool: while it runs, the pool's other workers spin
/// rather than sleep between its steps, as ONNX Runtime's do, and it holds all of the pool's
/// cores until it returns. Weights stored as f16 stay f16 in memory on CPUs with AVX2 and F16C,
/// or AVX-512 (computed in f32);
/// other checkpoints use candle's matrix product, which looks up its thread count again at every
/// product (reading `/proc/cpuinfo`) unless `RAYON_NUM_THREADS` is set: programs that encode
/// many short sentences should set it, as the `vecshift` binary does.
///
/// ```no_run
/// use vecshift::{ContextualEncoder, Embedder, Occurrence, Pooling};
/// let bert = ContextualEncoder::load_default()?;
/// let river = bert.embed(&Occurrence::find("bank", "We sat on the river bank.")?, Pooling::Mean)?;
/// let money = bert.embed(&Occurrence::find("bank", "The bank approved my loan.")?, Pooling::Mean)?;
/// let last = bert.num_layers() - 1;
/// let cos = vecshift::cosine(river.vectors.layer(last).unwrap(), money.vectors.layer(last).unwrap());
/// println!("cosine at layer {last}: {cos:.3}");
/// # Ok::<(), vecshift::Error>(())
/// ```
pub struct ContextualEncoder {
    name: String,
    dir: PathBuf,
    info: ModelInfo,
    model: Box<dyn ContextualModel>,
    tokenizer: Tokenizer,
    /// Ids of the tokens that stand for text the tokenizer does not know (`[UNK]`, `<unk>`).
    unknown_ids: Vec<u32>,
    device: Device,
    variant: Option<Variant>,
    weight_bytes: u64,
}

/// The name [`ContextualEncoder`] had when BERT was its only architecture.
pub type BertEncoder = ContextualEncoder;

impl ContextualEncoder {
    /// Loads a checkpoint directory holding `config.json`, `tokenizer.json` and
    /// `model.safetensors` (or sharded weights), on the CPU.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(dir, &LoadOptions::default())
    }

    /// Loads a checkpoint directory with the given options.
    pub fn load_with(dir: impl AsRef<Path>, options: &LoadOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let files = ModelFiles::in_dir(dir)?;
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        Self::load_files(&files, name, options)
    }

    /// Loads from a local directory or a Hugging Face model id (see [`ModelSource`]).
    pub fn load_source(source: &ModelSource, options: &LoadOptions) -> Result<Self> {
        let files = source.resolve()?;
        Self::load_files(&files, source.to_string(), options)
    }

    /// Loads the embedded default model (all-MiniLM-L6-v2, f16 weights) on the CPU.
    pub fn load_default() -> Result<Self> {
        Self::load(crate::source::default_bert_dir())
    }

    /// Loads the default model from a data directory laid out like the source tree's `data/`
    /// (for instance the one `vecshift install-data` fills), on the CPU.
    pub fn load_default_from(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::load(crate::source::default_bert_dir_in(data_dir.as_ref()))
    }

    /// Loads from resolved files; `name` is what [`Embedder::name`] reports unless the options
    /// name the engine.
    pub fn load_files(files: &ModelFiles, name: String, options: &LoadOptions) -> Result<Self> {
        let dir = files.dir.clone();
        let model_error = |reason: String| Error::Model { path: dir.clone(), reason };

        let mut config_json = std::fs::read_to_string(&files.config).map_err(|e| Error::io(&files.config, e))?;
        let mut tokenizer = Tokenizer::from_file(&files.tokenizer)
            .map_err(|e| model_error(format!("cannot read tokenizer.json: {e}")))?;
        // tokenizer.json may pad or truncate (MiniLM's pads to 128); vecshift pads and windows itself.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| model_error(format!("cannot disable truncation: {e}")))?;

        // Checked before the weights are read: a mismatch there would be reported as a shape
        // error of the embeddings, hiding the real cause.
        #[derive(serde::Deserialize)]
        struct VocabSize {
            vocab_size: Option<usize>,
        }
        let declared = serde_json::from_str::<VocabSize>(&config_json).ok().and_then(|c| c.vocab_size);
        let tokenizer_vocab = tokenizer.get_vocab_size(true);
        let check_vocab = |vocab_size: usize| match tokenizer_vocab > vocab_size {
            true => Err(model_error(format!(
                "tokenizer.json has {tokenizer_vocab} tokens but the model only {vocab_size} embeddings: the tokenizer belongs to another model"
            ))),
            false => Ok(()),
        };
        if let Some(vocab_size) = declared {
            check_vocab(vocab_size)?;
        }

        let device = options.device.clone();
        // A variant, or a checkpoint `vecshift compress` stored packed, goes through the
        // compression lab's tensors; anything else is memory-mapped as it is.
        let weights = files.weight_files()?;
        let (vb, variant, weight_bytes) = if options.variant.is_some() || crate::compress::stored_variant(&files.weights)?.is_some() {
            let mut checkpoint = Checkpoint::read(&files.config, &files.weights)?;
            if let Some(variant) = &options.variant {
                checkpoint.apply(variant)?;
            }
            let (variant, bytes) = (checkpoint.variant().cloned(), checkpoint.bytes());
            let (config, vb) = checkpoint.into_var_builder(&device)?;
            config_json = config;
            (vb, variant, bytes)
        } else {
            let bytes = weights.iter().map(|w| std::fs::metadata(w).map(|m| m.len()).map_err(|e| Error::io(w, e))).sum::<Result<u64>>()?;
            // Weights may be stored as f16 or bf16; they are widened once to f32 at load.
            let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, &device) }.map_err(|e| {
                model_error(format!("cannot read {}: {}", files.weights.display(), crate::error::candle_message(&e)))
            })?;
            (vb, None, bytes)
        };
        let (model, info) = models::load(&config_json, vb).map_err(model_error)?;
        // A config that names its vocabulary otherwise: the size the architecture loaded.
        if declared.is_none() {
            check_vocab(info.vocab_size)?;
        }
        let unknown_ids = unknown_token_ids(&tokenizer);
        Ok(ContextualEncoder {
            name: options.name.clone().unwrap_or(name),
            dir: files.dir.clone(),
            info,
            model,
            tokenizer,
            unknown_ids,
            device,
            variant,
            weight_bytes,
        })
    }

    /// The compression variant the weights went through, if any.
    pub fn variant(&self) -> Option<&Variant> {
        self.variant.as_ref()
    }

    /// Bytes of the weights: the file's size, or for a variant, the size `vecshift compress`
    /// stores it in.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// What the model is: architecture, sizes, positions.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The directory the files were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tokenizer, with padding and truncation switched off.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// The ids of the tokens a tokenizer puts where it does not know the text.
fn unknown_token_ids(tokenizer: &Tokenizer) -> Vec<u32> {
    let declared = match tokenizer.get_model() {
        ModelWrapper::WordPiece(model) => Some(model.unk_token.clone()),
        ModelWrapper::BPE(model) => model.unk_token.clone(),
        _ => None,
    };
    // Unigram (SentencePiece) models keep their unknown id private; they name it `<unk>`.
    let mut ids: Vec<u32> = declared
        .into_iter()
        .chain(["<unk>".to_owned(), "[UNK]".to_owned()])
        .filter_map(|token| tokenizer.token_to_id(&token))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl Embedder for ContextualEncoder {
    fn name(&self) -> &str {
        &self.name
    }

    fn architecture(&self) -> &str {
        self.info.architecture
    }

    fn dims(&self) -> usize {
        self.info.hidden_size
    }

    fn num_layers(&self) -> usize {
        self.info.num_hidden_layers + 1
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Contextual
    }

    fn default_pooling(&self) -> Pooling {
        if self.info.causal { Pooling::Last } else { Pooling::Mean }
    }

    fn is_causal(&self) -> bool {
        self.info.causal
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.info.max_positions)
    }

    fn embed_batch(&self, occurrences: &[Occurrence], pooling: Pooling) -> Result<Vec<Result<Embedding>>> {
        let tokenized: Vec<Result<TokenizedSentence>> =
            occurrences.iter().map(|o| self.tokenize(o).map(TokenizedSentence::alone)).collect();
        Ok(self.encode(tokenized, pooling)?.into_iter().map(|r| r.map(|s| s.target)).collect())
    }

    fn sentence_embedder(&self) -> Option<&dyn SentenceEmbedder> {
        Some(self)
    }
}

impl SentenceEmbedder for ContextualEncoder {
    fn embed_in_context(&self, occurrences: &[Occurrence], pooling: Pooling) -> Result<Vec<Result<SentenceVectors>>> {
        let tokenized = occurrences
            .iter()
            .map(|o| self.tokenize_with_words(o, &crate::engine::context_words(o)))
            .collect();
        self.encode(tokenized, pooling)
    }
}
