//! The background worker: it loads and owns the engines and encodes on request, so the UI
//! thread never waits for a model.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};

use vecshift::{Embedder, EngineKind, LayerVectors, Neighbor, Occurrence, Pooling};

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
    /// The worker stopped on an internal error; nothing more will come.
    Crashed(String),
}

/// The engines the UI compares, any number of any kind, in the order the UI shows them.
///
/// The worker knows them only through the library's traits, so any engine the library
/// loads can be shown.
pub struct Engines {
    engines: Vec<Box<dyn Embedder>>,
}

impl Engines {
    /// Wraps loaded engines (at least one).
    pub fn new(engines: Vec<Box<dyn Embedder>>) -> anyhow::Result<Self> {
        anyhow::ensure!(!engines.is_empty(), "no engine to compare");
        Ok(Engines { engines })
    }

    /// Names and sizes of the models.
    pub fn info(&self) -> ModelInfo {
        let engines = self
            .engines
            .iter()
            .map(|e| EngineInfo {
                name: e.name().to_owned(),
                kind: e.kind(),
                architecture: e.architecture().to_owned(),
                layers: e.num_layers(),
                dims: e.dims(),
                causal: e.is_causal(),
                vocabulary: e.vocabulary().is_some(),
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
        }
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
