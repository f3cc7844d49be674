//! The background worker: it loads and owns the engines and encodes on request, so the UI
//! thread never waits for a model.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};

use vecshift::{Embedder, LayerVectors, Neighbor, Occurrence, Pooling, StaticVector, Vocabulary};

/// Occurrences per reply, so that long lists show progress while they encode.
const CHUNK: usize = 16;

/// The worker thread's name (the panic hook recognises it).
pub const THREAD_NAME: &str = "vecshift-worker";

/// How many static nearest neighbours the UI shows.
pub const NEIGHBOURS: usize = 10;

/// What the UI needs to know about the loaded models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// The BERT model's name.
    pub bert: String,
    /// Hidden states per occurrence (layer 0 = embeddings output).
    pub layers: usize,
    /// BERT vector length.
    pub dims: usize,
    /// The static vectors' name.
    pub statics: String,
    /// Static vector length.
    pub static_dims: usize,
    /// The contextual model's architecture (`bert`, ...).
    pub bert_architecture: String,
    /// The static vectors' file format.
    pub static_architecture: String,
}

/// A job for the worker.
#[derive(Clone, Debug)]
pub enum Request {
    /// Encode occurrences with one pooling; `prefetch` jobs wait behind everything else.
    Encode {
        /// The occurrences.
        occurrences: Vec<Occurrence>,
        /// The pooling to encode them with.
        pooling: Pooling,
        /// Whether nobody is looking at the result yet.
        prefetch: bool,
    },
    /// Static vectors of word forms as they are written in the sentences.
    Static(Vec<String>),
    /// The static nearest neighbours of a word.
    Neighbours(String),
}

/// One occurrence's contextual vectors.
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
        /// The pooling they were encoded with.
        pooling: Pooling,
        /// Each occurrence with its vectors or the reason it has none.
        results: Vec<(Occurrence, Result<Encoded, String>)>,
    },
    /// Static vectors, by word form.
    Static(Vec<(String, Result<StaticVector, String>)>),
    /// Static nearest neighbours of a word.
    Neighbours {
        /// The word asked about.
        word: String,
        /// Its neighbours, best first.
        result: Result<Vec<Neighbor>, String>,
    },
    /// The worker stopped on an internal error; nothing more will come.
    Crashed(String),
}

/// The engines the UI compares: a contextual one and a static one with a vocabulary.
///
/// The worker knows them only through the library's traits, so any engine the library
/// loads can be shown.
pub struct Engines {
    contextual: Box<dyn Embedder>,
    statics: Box<dyn Embedder>,
}

impl Engines {
    /// Wraps loaded engines; the static one must have a [`Vocabulary`] (neighbour search).
    pub fn new(contextual: Box<dyn Embedder>, statics: Box<dyn Embedder>) -> anyhow::Result<Self> {
        anyhow::ensure!(statics.vocabulary().is_some(), "{} has no vocabulary to search", statics.name());
        Ok(Engines { contextual, statics })
    }

    fn vocabulary(&self) -> &dyn Vocabulary {
        self.statics.vocabulary().expect("checked in Engines::new")
    }

    /// Names and sizes of the models.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            bert: self.contextual.name().to_owned(),
            layers: self.contextual.num_layers(),
            dims: self.contextual.dims(),
            statics: self.statics.name().to_owned(),
            static_dims: self.statics.dims(),
            bert_architecture: self.contextual.architecture().to_owned(),
            static_architecture: self.statics.architecture().to_owned(),
        }
    }

    /// Does one job, passing each reply to `reply` as soon as it is ready.
    pub fn handle(&mut self, request: Request, reply: &mut dyn FnMut(Response)) {
        match request {
            Request::Encode { occurrences, pooling, .. } => {
                for chunk in occurrences.chunks(CHUNK) {
                    reply(Response::Encoded { pooling, results: self.encode(chunk, pooling) });
                }
            }
            Request::Static(forms) => {
                let found = forms
                    .into_iter()
                    .map(|form| {
                        let result = self.vocabulary().lookup(&form).map_err(|e| e.to_string());
                        (form, result)
                    })
                    .collect();
                reply(Response::Static(found));
            }
            Request::Neighbours(word) => {
                let result = self.vocabulary().neighbors(&word, NEIGHBOURS).map_err(|e| e.to_string());
                reply(Response::Neighbours { word, result });
            }
        }
    }

    /// Encodes a batch; an occurrence that cannot be embedded gets its own error and does not
    /// take the others down with it.
    fn encode(&self, chunk: &[Occurrence], pooling: Pooling) -> Vec<(Occurrence, Result<Encoded, String>)> {
        let results = match self.contextual.embed_batch(chunk, pooling) {
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
            Request::Encode { mut occurrences, pooling, prefetch } if occurrences.len() > CHUNK => {
                let rest = occurrences.split_off(CHUNK);
                queue.insert(next, Request::Encode { occurrences: rest, pooling, prefetch });
                Request::Encode { occurrences, pooling, prefetch }
            }
            request => request,
        };
        engines.handle(request, &mut |response| reply(response));
    }
}
