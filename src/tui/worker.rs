//! The background worker: it loads and owns the engines and encodes on request, so the UI
//! thread never waits for a model.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::PathBuf;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};

use vecshift::analysis::cka::CkaInput;
use vecshift::analysis::postprocess::{Fitted, Postprocess};
use vecshift::compress::Variant;
use vecshift::senses::{self, Assign, SenseGuess, SenseInventory, WordNet};
use vecshift::{ContextualEncoder, Embedder, EngineKind, LayerSelection, LayerVectors, Neighbor, Occurrence, Pooling, StaticEngine};

/// Occurrences per reply, so that long lists show progress while they encode.
const CHUNK: usize = 16;

/// The worker thread's name (the panic hook recognises it).
pub const THREAD_NAME: &str = "vecshift-worker";

/// How many vocabulary neighbours the UI shows.
pub const NEIGHBOURS: usize = 10;

/// What the UI needs to know about one loaded engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineInfo {
    /// The engine's name (its `NAME=` label, else the model's name).
    pub name: String,
    /// Static or contextual.
    pub kind: EngineKind,
    /// The architecture (`bert`, `gpt2`, ...) or file format (`finalfusion`, ...).
    pub architecture: String,
    /// Vectors per occurrence (layer 0 = embeddings output; a static engine has one).
    pub layers: usize,
    /// Vector length.
    pub dims: usize,
    /// Whether each position sees only the words to its left (a decoder).
    pub causal: bool,
    /// Whether it has a vocabulary to search for nearest neighbours.
    pub vocabulary: bool,
    /// The original it is a compression variant of (`--variant`), if it is one.
    pub variant: Option<VariantOf>,
    /// Bytes of the weights (a contextual engine's, as `vecshift compress` stores a variant's).
    pub bytes: Option<u64>,
}

/// A compression variant's original (`--variant V` adds `NAME·V` beside `NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantOf {
    /// The original engine, by its position in [`ModelInfo::engines`].
    pub base: usize,
    /// The variant (`int8`, `prune:0.3+int8`, ...).
    pub label: String,
    /// For each of the variant's layers, the original's layer it stands for (see
    /// `Variant::layer_map`: not the identity when layers were dropped).
    pub layer_map: Vec<usize>,
}

impl EngineInfo {
    /// Whether the engine gives every occurrence of a word the same vector.
    pub fn is_static(&self) -> bool {
        self.kind == EngineKind::Static
    }
}

/// What the UI needs to know about the loaded models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Every engine, in the order the UI shows them.
    pub engines: Vec<EngineInfo>,
}

/// A job for the worker.
#[derive(Clone, Debug)]
pub enum Request {
    /// Encode occurrences with one engine and pooling; `prefetch` jobs wait behind everything else.
    Encode {
        /// The engine, by its position in [`ModelInfo::engines`].
        engine: usize,
        /// The occurrences.
        occurrences: Vec<Occurrence>,
        /// The pooling to encode them with.
        pooling: Pooling,
        /// Whether nobody is looking at the result yet.
        prefetch: bool,
    },
    /// The nearest neighbours of a word in an engine's vocabulary.
    Neighbours {
        /// The engine (it has a vocabulary).
        engine: usize,
        /// The word.
        word: String,
    },
    /// The WordNet synset of an occurrence: the sense whose example sentence (or definition)
    /// is nearest in `engine` at `layer`.
    Sense {
        /// The engine.
        engine: usize,
        /// Its layer.
        layer: usize,
        /// The occurrence.
        occurrence: Occurrence,
        /// The correction applied before the cosines, fitted on the examples and the
        /// occurrence (as `vecshift senses --postprocess` does).
        postprocess: Postprocess,
    },
    /// Fit an anisotropy correction on each layer of one engine: whitening a few hundred
    /// dimensions takes seconds, and a corpus must be embedded first.
    Fit {
        /// The engine.
        engine: usize,
        /// The correction.
        postprocess: Postprocess,
        /// The pooling the vectors are (or the corpus is to be) encoded with.
        pooling: Pooling,
        /// What it is fitted on.
        on: FitOn,
    },
    /// How fast each contextual engine embeds `occurrences`: real tokens per second, timed as
    /// `report` times a variant and its original.
    Speed {
        /// The compared occurrences.
        occurrences: Vec<Occurrence>,
        /// The pooling of the words' pieces.
        pooling: Pooling,
    },
    /// Linear CKA between every two engines, each at its layer, over every word of the
    /// sentences of `occurrences` (the word and the other words of each sentence).
    Cka {
        /// The compared occurrences.
        occurrences: Vec<Occurrence>,
        /// The pooling of the words' pieces.
        pooling: Pooling,
        /// Each engine's layer.
        layers: Vec<usize>,
    },
}

/// What a correction is fitted on.
#[derive(Clone, Debug)]
pub enum FitOn {
    /// The compared occurrences, with the engine's vectors of each.
    Occurrences(Vec<Occurrence>, Vec<LayerVectors>),
    /// The `--fit` corpus, embedded by the engine (once per pooling).
    Corpus,
}

/// Linear CKA between the engines over the tokens of some sentences.
#[derive(Clone, Debug, PartialEq)]
pub struct Cka {
    /// How many tokens (words in sentences) every engine has a vector for: the sample.
    pub tokens: usize,
    /// `matrix[a][b]`: debiased linear CKA between engines `a` and `b` at their layers; `None`
    /// where it is undefined (an engine without the words of a sentence, too few tokens, a
    /// side that does not vary).
    pub matrix: Vec<Vec<Option<f64>>>,
}

/// One occurrence's vectors from one engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    /// One vector per layer.
    pub vectors: LayerVectors,
    /// The sentence was longer than the model's positions and a window of it was encoded.
    pub windowed: bool,
    /// The word's pieces that were pooled.
    pub pieces: Vec<String>,
    /// The pieces the tokenizer did not know.
    pub unknown: Vec<String>,
}

/// A reply from the worker.
#[derive(Clone, Debug)]
pub enum Response {
    /// The models are loaded (or failed to load: the UI shows why and exits).
    Loaded(Result<ModelInfo, String>),
    /// Some of the occurrences of an [`Request::Encode`].
    Encoded {
        /// The engine.
        engine: usize,
        /// The pooling they were encoded with.
        pooling: Pooling,
        /// Each occurrence with its vectors or the reason it has none.
        results: Vec<(Occurrence, Result<Encoded, String>)>,
    },
    /// Nearest neighbours of a word in an engine's vocabulary.
    Neighbours {
        /// The engine.
        engine: usize,
        /// The word asked about.
        word: String,
        /// Its neighbours, best first.
        result: Result<Vec<Neighbor>, String>,
    },
    /// The answer to a [`Request::Sense`].
    Sense {
        /// The engine.
        engine: usize,
        /// Its layer.
        layer: usize,
        /// The occurrence.
        occurrence: Occurrence,
        /// The correction it was guessed with.
        postprocess: Postprocess,
        /// The guess, or why there is none.
        result: Result<SenseGuess, String>,
    },
    /// The answer to a [`Request::Fit`].
    Fitted {
        /// The engine.
        engine: usize,
        /// The correction.
        postprocess: Postprocess,
        /// The pooling.
        pooling: Pooling,
        /// The occurrences it was fitted on; `None`: the `--fit` corpus.
        occurrences: Option<Vec<Occurrence>>,
        /// One fitted correction per layer, or why there is none.
        result: Result<Vec<Fitted>, String>,
    },
    /// The answer to a [`Request::Cka`].
    Cka {
        /// The occurrences it was computed over.
        occurrences: Vec<Occurrence>,
        /// Their pooling.
        pooling: Pooling,
        /// Each engine's layer.
        layers: Vec<usize>,
        /// The matrix, or why there is none.
        result: Result<Cka, String>,
    },
    /// The answer to a [`Request::Speed`].
    Speed {
        /// The occurrences it was measured on.
        occurrences: Vec<Occurrence>,
        /// Their pooling.
        pooling: Pooling,
        /// Per engine its tokens per second, or why there are none; `None` for an engine
        /// without tokens (a static one looks words up).
        result: Vec<Option<Result<f64, String>>>,
    },
    /// The worker stopped on an internal error; nothing more will come.
    Crashed(String),
}

/// The engines the UI compares, any number of any kind, in the order the UI shows them.
///
/// The worker knows them only through the library's traits, so any engine the library
/// loads can be shown.
pub struct Engines {
    engines: Vec<Engine>,
    /// The last sentences' tokens, kept while the user moves through the layers.
    tokens: Option<Tokens>,
    /// Where WordNet is, and the database once opened (or why it cannot be).
    wordnet_dir: Option<PathBuf>,
    wordnet: Option<Result<WordNet, String>>,
    /// Each word's synsets as sentences to embed, read once.
    inventories: HashMap<String, Result<SenseInventory, String>>,
    /// The `--fit` corpus's occurrences (one word per sentence), if given.
    corpus: Option<Vec<Occurrence>>,
    /// Its vectors per engine and pooling, embedded on first use.
    corpus_vectors: HashMap<(usize, Pooling), Result<Vec<LayerVectors>, String>>,
    /// Per variant engine, its original.
    variants: HashMap<usize, VariantOf>,
}

/// Every engine's vectors of the tokens of some sentences that all engines have vectors for,
/// in one order, and their CKA summaries per layer as they are asked for.
struct Tokens {
    occurrences: Vec<Occurrence>,
    pooling: Pooling,
    /// Per engine (None: it cannot give the other words of a sentence), one entry per token.
    vectors: Vec<Option<Vec<LayerVectors>>>,
    prepared: HashMap<(usize, usize), Option<CkaInput>>,
}

/// An engine the worker owns. A contextual engine is kept as such for what only it can say:
/// its tokens (for the tokens/s) and the size of its weights.
pub enum Engine {
    /// A contextual engine.
    Contextual(Box<ContextualEncoder>),
    /// Any other engine, known only through the traits.
    Other(Box<dyn Embedder>),
}

impl std::ops::Deref for Engine {
    type Target = dyn Embedder;

    fn deref(&self) -> &Self::Target {
        match self {
            Engine::Contextual(engine) => engine.as_ref(),
            Engine::Other(engine) => engine.as_ref(),
        }
    }
}

impl From<ContextualEncoder> for Engine {
    fn from(engine: ContextualEncoder) -> Self {
        Engine::Contextual(Box::new(engine))
    }
}

impl From<StaticEngine> for Engine {
    fn from(engine: StaticEngine) -> Self {
        Engine::Other(Box::new(engine))
    }
}

impl Engines {
    /// Wraps loaded engines (at least one).
    pub fn of(engines: Vec<Engine>) -> anyhow::Result<Self> {
        anyhow::ensure!(!engines.is_empty(), "no engine to compare");
        Ok(Engines {
            engines,
            tokens: None,
            wordnet_dir: None,
            wordnet: None,
            inventories: HashMap::new(),
            corpus: None,
            corpus_vectors: HashMap::new(),
            variants: HashMap::new(),
        })
    }

    /// Names the compression variants among the engines: `(variant engine, its original, the
    /// variant)`, positions in the order given to [`Engines::of`].
    pub fn with_variants(mut self, pairs: Vec<(usize, usize, Variant)>) -> Self {
        for (engine, base, variant) in pairs {
            let Some(original) = self.engines.get(base) else { continue };
            let layer_map = variant.layer_map(original.num_layers() - 1);
            self.variants.insert(engine, VariantOf { base, label: variant.to_string(), layer_map });
        }
        self
    }

    /// The occurrences of the `--fit` corpus that corrections are fitted on instead of the
    /// compared occurrences (see `postprocess::corpus_occurrences`).
    pub fn with_fit_corpus(mut self, occurrences: Option<Vec<Occurrence>>) -> Self {
        self.corpus = occurrences;
        self
    }

    /// Names the WordNet database the sense guesses come from (opened on first use); without
    /// one the UI says that there is none.
    pub fn with_wordnet(mut self, dir: Option<PathBuf>) -> Self {
        self.wordnet_dir = dir;
        self
    }

    /// Names and sizes of the models.
    pub fn info(&self) -> ModelInfo {
        let engines = self
            .engines
            .iter()
            .enumerate()
            .map(|(i, e)| EngineInfo {
                variant: self.variants.get(&i).cloned(),
                name: e.name().to_owned(),
                kind: e.kind(),
                architecture: e.architecture().to_owned(),
                layers: e.num_layers(),
                dims: e.dims(),
                causal: e.is_causal(),
                vocabulary: e.vocabulary().is_some(),
                bytes: match e {
                    Engine::Contextual(e) => Some(e.weight_bytes()),
                    Engine::Other(_) => None,
                },
            })
            .collect();
        ModelInfo { engines }
    }

    /// Does one job, passing each reply to `reply` as soon as it is ready.
    pub fn handle(&mut self, request: Request, reply: &mut dyn FnMut(Response)) {
        match request {
            Request::Encode { engine, occurrences, pooling, .. } => {
                for chunk in occurrences.chunks(CHUNK) {
                    reply(Response::Encoded { engine, pooling, results: self.encode(engine, chunk, pooling) });
                }
            }
            Request::Neighbours { engine, word } => {
                let result = match self.engines.get(engine).and_then(|e| e.vocabulary()) {
                    Some(vocabulary) => vocabulary.neighbors(&word, NEIGHBOURS).map_err(|e| e.to_string()),
                    None => Err("this engine has no vocabulary to search".to_owned()),
                };
                reply(Response::Neighbours { engine, word, result });
            }
            Request::Sense { engine, layer, occurrence, postprocess } => {
                let result = self.sense(engine, layer, &occurrence, postprocess);
                reply(Response::Sense { engine, layer, occurrence, postprocess, result });
            }
            Request::Fit { engine, postprocess, pooling, on } => {
                let (occurrences, result) = match on {
                    FitOn::Occurrences(occurrences, vectors) => (Some(occurrences), fit_layers(postprocess, &vectors)),
                    FitOn::Corpus => (None, self.corpus_vectors(engine, pooling).and_then(|v| fit_layers(postprocess, v))),
                };
                reply(Response::Fitted { engine, postprocess, pooling, occurrences, result });
            }
            Request::Speed { occurrences, pooling } => {
                let result = self.engines.iter().map(|e| speed(e, &occurrences, pooling)).collect();
                reply(Response::Speed { occurrences, pooling, result });
            }
            Request::Cka { occurrences, pooling, layers } => {
                let result = self.cka(&occurrences, pooling, &layers);
                reply(Response::Cka { occurrences, pooling, layers, result });
            }
        }
    }

    /// The synset nearest to the occurrence, as `vecshift senses` guesses it.
    fn sense(&mut self, engine: usize, layer: usize, occurrence: &Occurrence, postprocess: Postprocess) -> Result<SenseGuess, String> {
        let dir = self.wordnet_dir.clone();
        let wordnet = self.wordnet.get_or_insert_with(|| {
            let dir = dir.ok_or("no WordNet found (set $WORDNET_DIR, or run `vecshift install-data`)")?;
            WordNet::open(dir).map_err(|e| e.to_string())
        });
        let wordnet = wordnet.as_ref().map_err(Clone::clone)?;
        let word = occurrence.word().to_lowercase();
        let inventory = self
            .inventories
            .entry(word.clone())
            .or_insert_with(|| match wordnet.synsets(&word) {
                Ok(synsets) if synsets.is_empty() => Err(format!("WordNet has no synsets for {word:?}")),
                Ok(synsets) => SenseInventory::new(&word, synsets).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let engine = self.engines.get(engine).ok_or("no such engine")?;
        let selection = LayerSelection::Layer(layer as isize);
        let mut guesses = senses::guess_senses(&**engine, &selection, postprocess, inventory, std::slice::from_ref(occurrence), Assign::Nearest)
            .map_err(|e| e.to_string())?;
        guesses.pop().ok_or_else(|| "no guess".to_owned())
    }

    /// The `--fit` corpus embedded by `engine` with `pooling`, embedded once.
    fn corpus_vectors(&mut self, engine: usize, pooling: Pooling) -> Result<&[LayerVectors], String> {
        let corpus = self.corpus.as_ref().ok_or("no --fit corpus was given")?;
        let embedder = self.engines.get(engine).ok_or("no such engine")?;
        self.corpus_vectors
            .entry((engine, pooling))
            .or_insert_with(|| embedder.embed_vectors(corpus, pooling).map_err(|e| format!("embedding the --fit corpus: {e}")))
            .as_deref()
            .map_err(Clone::clone)
    }

    /// CKA between every two engines at `layers`, over the tokens of the sentences.
    fn cka(&mut self, occurrences: &[Occurrence], pooling: Pooling, layers: &[usize]) -> Result<Cka, String> {
        let fresh = self.tokens.as_ref().is_none_or(|t| t.occurrences != occurrences || t.pooling != pooling);
        if fresh {
            self.tokens = Some(self.embed_tokens(occurrences, pooling)?);
        }
        let tokens = self.tokens.as_mut().expect("just embedded");
        let n = self.engines.len();
        let count = tokens.vectors.iter().flatten().map(Vec::len).next().unwrap_or(0);
        for (engine, &layer) in layers.iter().enumerate().take(n) {
            let vectors = &tokens.vectors[engine];
            tokens.prepared.entry((engine, layer)).or_insert_with(|| {
                let rows: Vec<&[f32]> = vectors.as_ref()?.iter().filter_map(|v| v.layer(layer)).collect();
                CkaInput::new(&rows)
            });
        }
        let input = |engine: usize| layers.get(engine).and_then(|&l| tokens.prepared.get(&(engine, l))?.as_ref());
        // Symmetric: each pair once.
        let mut matrix: Vec<Vec<Option<f64>>> = vec![vec![None; n]; n];
        for (a, b) in (0..n).flat_map(|a| (a..n).map(move |b| (a, b))) {
            let value = match (input(a), input(b)) {
                (Some(x), Some(y)) => x.cka(y, true),
                _ => None,
            };
            matrix[a][b] = value;
            matrix[b][a] = value;
        }
        Ok(Cka { tokens: count, matrix })
    }

    /// The vectors of every word of the sentences (the target and the other words) that every
    /// engine able to give them has: the tokens are matched by sentence and byte span.
    fn embed_tokens(&self, occurrences: &[Occurrence], pooling: Pooling) -> Result<Tokens, String> {
        type Words = HashMap<(usize, Range<usize>), LayerVectors>;
        let mut per_engine: Vec<Option<Words>> = Vec::new();
        for engine in &self.engines {
            let Some(sentences) = engine.sentence_embedder() else {
                per_engine.push(None);
                continue;
            };
            let pooling = if engine.kind() == EngineKind::Static { Pooling::ALL[0] } else { pooling };
            let found = sentences.embed_in_context(occurrences, pooling).map_err(|e| e.to_string())?;
            let mut words = Words::new();
            for (i, (occurrence, result)) in occurrences.iter().zip(found).enumerate() {
                // A sentence an engine cannot embed leaves its tokens out of the sample.
                let Ok(sentence) = result else { continue };
                words.insert((i, occurrence.span()), sentence.target.vectors);
                for (span, vectors) in sentence.words {
                    words.insert((i, span), vectors);
                }
            }
            per_engine.push(Some(words));
        }
        let Some(first) = per_engine.iter().flatten().next() else {
            return Err("no engine can give the vectors of the other words of a sentence".into());
        };
        let mut common: Vec<(usize, Range<usize>)> =
            first.keys().filter(|k| per_engine.iter().flatten().all(|w| w.contains_key(*k))).cloned().collect();
        common.sort_by_key(|(i, span)| (*i, span.start, span.end));
        let vectors = per_engine
            .into_iter()
            .map(|words| words.map(|mut words| common.iter().filter_map(|k| words.remove(k)).collect()))
            .collect();
        Ok(Tokens { occurrences: occurrences.to_vec(), pooling, vectors, prepared: HashMap::new() })
    }

    /// Encodes a batch; an occurrence that cannot be embedded gets its own error and does not
    /// take the others down with it.
    fn encode(&self, engine: usize, chunk: &[Occurrence], pooling: Pooling) -> Vec<(Occurrence, Result<Encoded, String>)> {
        let results = match self.engines[engine].embed_batch(chunk, pooling) {
            Ok(results) => results.into_iter().map(|r| r.map_err(|e| e.to_string())).collect(),
            Err(e) => vec![Err(e.to_string()); chunk.len()],
        };
        chunk
            .iter()
            .cloned()
            .zip(results)
            .map(|(occurrence, result)| {
                let encoded = result.map(|e| Encoded { windowed: e.windowed_from.is_some(), pieces: e.pieces, unknown: e.unknown, vectors: e.vectors });
                (occurrence, encoded)
            })
            .collect()
    }
}

/// Real tokens per second of a contextual engine embedding `occurrences`, as `report` measures
/// a variant against its original; `None` for other engines.
fn speed(engine: &Engine, occurrences: &[Occurrence], pooling: Pooling) -> Option<Result<f64, String>> {
    let Engine::Contextual(engine) = engine else { return None };
    Some(vecshift::compress::drift::timed_embed(engine, occurrences, pooling).map(|(_, speed)| speed).map_err(|e| e.to_string()))
}

/// The correction fitted on each layer of `vectors` (all with the same layers).
fn fit_layers(postprocess: Postprocess, vectors: &[LayerVectors]) -> Result<Vec<Fitted>, String> {
    let layers = vectors.first().map_or(0, LayerVectors::num_layers);
    (0..layers)
        .map(|l| postprocess.fit(&vectors.iter().filter_map(|v| v.layer(l)).collect::<Vec<_>>()).map_err(|e| e.to_string()))
        .collect()
}

/// Loads the engines; runs on the worker thread.
pub type Loader = Box<dyn FnOnce() -> anyhow::Result<Engines> + Send>;

/// Starts the worker thread; replies go to `reply`, jobs come through the returned sender.
/// The thread ends when the sender is dropped.
pub fn spawn(load: Loader, reply: impl Fn(Response) + Send + 'static) -> Sender<Request> {
    let (jobs, inbox) = mpsc::channel();
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            // A panic here is a bug; the UI must still hear of it, restore the terminal and exit.
            let outcome = catch_unwind(AssertUnwindSafe(|| serve(load, inbox, &reply)));
            if let Err(payload) = outcome {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "unknown panic".into());
                reply(Response::Crashed(message));
            }
        })
        .expect("cannot start the worker thread");
    jobs
}

fn serve(load: Loader, inbox: Receiver<Request>, reply: &dyn Fn(Response)) {
    let mut engines = match load() {
        Ok(engines) => engines,
        Err(e) => return reply(Response::Loaded(Err(format!("{e:#}")))),
    };
    reply(Response::Loaded(Ok(engines.info())));
    let mut queue = VecDeque::new();
    loop {
        if queue.is_empty() {
            match inbox.recv() {
                Ok(request) => queue.push_back(request),
                Err(_) => return,
            }
        }
        queue.extend(inbox.try_iter());
        let next = queue.iter().position(|r| !matches!(r, Request::Encode { prefetch: true, .. })).unwrap_or(0);
        let request = match queue.remove(next).expect("the queue is not empty") {
            // One chunk at a time, so that a job the user is waiting for overtakes a long
            // background one between two chunks.
            Request::Encode { engine, mut occurrences, pooling, prefetch } if occurrences.len() > CHUNK => {
                let rest = occurrences.split_off(CHUNK);
                queue.insert(next, Request::Encode { engine, occurrences: rest, pooling, prefetch });
                Request::Encode { engine, occurrences, pooling, prefetch }
            }
            request => request,
        };
        engines.handle(request, &mut |response| reply(response));
    }
}
