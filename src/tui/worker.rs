//! The background worker: it loads and owns the engines and encodes on request, so the UI
//! thread never waits for a model.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};

use vecshift::{BertEncoder, Embedder, LayerVectors, Neighbor, Occurrence, Pooling, StaticEngine, StaticVector};

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

/// The two engines the UI compares.
pub struct Engines {
    // In an Option only so that `with_pooling`, which takes the encoder by value, can switch
    // the pooling in place: one set of weights serves all three poolings.
    bert: Option<BertEncoder>,
    statics: StaticEngine,
}

impl Engines {
    /// Wraps loaded engines.
    pub fn new(bert: BertEncoder, statics: StaticEngine) -> Self {
        Engines { bert: Some(bert), statics }
    }

    fn bert(&self) -> &BertEncoder {
        self.bert.as_ref().expect("the encoder is only taken out for the moment of a pooling switch")
    }

    /// Names and sizes of the models.
    pub fn info(&self) -> ModelInfo {
        let bert = self.bert();
        ModelInfo {
            bert: bert.name().to_owned(),
            layers: bert.num_layers(),
            dims: bert.dims(),
            statics: self.statics.name().to_owned(),
            static_dims: self.statics.dims(),
        }
    }

    fn set_pooling(&mut self, pooling: Pooling) {
        if self.bert().pooling() != pooling {
            self.bert = self.bert.take().map(|b| b.with_pooling(pooling));
        }
    }

    /// Does one job, passing each reply to `reply` as soon as it is ready.
    pub fn handle(&mut self, request: Request, reply: &mut dyn FnMut(Response)) {
        match request {
            Request::Encode { occurrences, pooling, .. } => {
                self.set_pooling(pooling);
                for chunk in occurrences.chunks(CHUNK) {
                    reply(Response::Encoded { pooling, results: self.encode(chunk) });
                }
            }
            Request::Static(forms) => {
                let found = forms
                    .into_iter()
                    .map(|form| {
                        let result = self.statics.lookup(&form).map_err(|e| e.to_string());
                        (form, result)
                    })
                    .collect();
                reply(Response::Static(found));
            }
            Request::Neighbours(word) => {
                let result = self.statics.neighbors(&word, NEIGHBOURS).map_err(|e| e.to_string());
                reply(Response::Neighbours { word, result });
            }
        }
    }

    /// Encodes a batch; an occurrence that cannot be tokenized gets its own error and does not
    /// take the others down with it.
    fn encode(&self, chunk: &[Occurrence]) -> Vec<(Occurrence, Result<Encoded, String>)> {
        let bert = self.bert();
        let windowed: Vec<Result<bool, String>> =
            chunk.iter().map(|o| bert.tokenize(o).map(|t| t.windowed_from.is_some()).map_err(|e| e.to_string())).collect();
        let good: Vec<Occurrence> =
            chunk.iter().zip(&windowed).filter(|(_, w)| w.is_ok()).map(|(o, _)| o.clone()).collect();
        let mut vectors = match bert.embed_batch(&good) {
            Ok(vectors) => vectors.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e.to_string()); good.len()],
        }
        .into_iter();
        chunk
            .iter()
            .zip(windowed)
            .map(|(occurrence, windowed)| {
                let result = windowed.and_then(|windowed| {
                    vectors.next().expect("one result per tokenized occurrence").map(|vectors| Encoded { vectors, windowed })
                });
                (occurrence.clone(), result)
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
