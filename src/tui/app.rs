//! The UI state and its one way to change, [`App::update`] (The Elm Architecture): messages
//! come in, the state changes, and effects (jobs for the worker, files to read or write) go
//! out for the runtime to perform. Drawing only reads the state.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use vecshift::analysis::postprocess::{Fitted, Postprocess};
use vecshift::{Error, LayerVectors, Locator, Neighbor, Occurrence, Pooling};

use super::analysis::{self, Analysis, Drift, LayerStats, Side};
use super::commands::{self, Action};
use super::layout::{self, Areas, PANES, Pane};
use super::report::{Report, ReportFormat};
use super::sentences::{self, Row};
use super::worker::{Cka, Encoded, EngineInfo, FitOn, ModelInfo, Request, Response};
use vecshift::senses::SenseGuess;
use vecshift::senses::cluster::{self, Clustering};
use super::panes;

/// Everything that can happen to the UI.
#[derive(Debug)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// A mouse click or wheel turn.
    Mouse(MouseEvent),
    /// The terminal was resized to (columns, rows).
    Resize(u16, u16),
    /// Time passed while something is running (animates the progress indicator).
    Tick,
    /// The worker replied.
    Worker(Response),
    /// A sentences file was read (see [`Effect::ReadFile`]).
    FileRead {
        /// The file.
        path: PathBuf,
        /// Its rows, or why it could not be read.
        result: Result<Vec<Row>, String>,
    },
    /// A report was written (see [`Effect::Save`]), or why not.
    Saved(Result<PathBuf, String>),
}

/// What `update` asks the outside world to do.
#[derive(Debug)]
pub enum Effect {
    /// Send a job to the worker.
    Send(Request),
    /// Read a sentences file and reply with [`Msg::FileRead`].
    ReadFile(PathBuf),
    /// Write a report and reply with [`Msg::Saved`].
    Save(Box<Report>, ReportFormat),
}

/// How the UI starts.
#[derive(Clone, Debug)]
pub struct Start {
    /// The target word.
    pub word: String,
    /// The first sentences.
    pub rows: Vec<Row>,
    /// The file they came from.
    pub source: Option<PathBuf>,
    /// The first pooling.
    pub pooling: Pooling,
    /// False with `NO_COLOR`.
    pub color: bool,
    /// The anisotropy correction applied before cosines (`--postprocess`).
    pub postprocess: Postprocess,
    /// The `--fit` corpus the corrections are fitted on, named by its path and size; `None`:
    /// fitted on the compared occurrences.
    pub fit: Option<String>,
}

/// The corrections the correction key cycles through, in order; `all-but-the-top` removes
/// `d` principal components.
pub fn corrections(d: usize) -> [Postprocess; 5] {
    [Postprocess::None, Postprocess::Center, Postprocess::AllButTheTop(d), Postprocess::Whiten, Postprocess::Standardize]
}

/// Where the models are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Models {
    /// The worker is loading them.
    Loading,
    /// Ready to encode.
    Ready(ModelInfo),
}

/// What a sentence is waiting for or why it is left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowState<'a> {
    /// The target word is not in it (the reason says so).
    NoWord(&'a str),
    /// Its vectors are being computed.
    Encoding,
    /// The encoder rejected it.
    Failed(&'a str),
    /// Compared; `windowed` when only a window of a long sentence was encoded.
    Ready {
        /// A window of the sentence was encoded.
        windowed: bool,
    },
}

/// One sentence in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The sentence.
    pub text: String,
    /// Its sense label, when the file gave one.
    pub sense: Option<String>,
    /// A TSV row's own word, when it differs from the target word.
    pub word: Option<String>,
    /// The occurrence of the word, or why there is none.
    pub located: Result<Occurrence, String>,
    /// Where it came from (`FILE line N`), for messages.
    pub place: String,
}

/// The modal state: what keys do right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keys are commands.
    Normal,
    /// The help overlay is open.
    Help,
    /// A line of text is being typed.
    Input(Input),
    /// A yes/no question is asked.
    Confirm(Confirm),
}

/// A line being typed in the status bar, with the usual readline keys (tui-input).
#[derive(Clone, Debug)]
pub struct Input {
    /// What the text is for.
    pub purpose: Purpose,
    /// The text and cursor.
    pub field: tui_input::Input,
}

impl Input {
    fn new(purpose: Purpose, text: String) -> Self {
        Input { purpose, field: tui_input::Input::new(text) }
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        self.field.value()
    }

    /// Cursor position, in characters.
    pub fn cursor(&self) -> usize {
        self.field.cursor()
    }
}

impl PartialEq for Input {
    fn eq(&self, other: &Self) -> bool {
        self.purpose == other.purpose && self.text() == other.text() && self.cursor() == other.cursor()
    }
}

impl Eq for Input {}

/// A question that `y` (or Enter) answers yes; any other key, no.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// The question, shown in the status bar.
    pub question: String,
    /// The file to open on yes.
    pub open: PathBuf,
}

/// What `u` restores.
#[derive(Clone, Debug)]
enum Undo {
    /// A sentence was added at this index.
    Added(usize),
    /// The sentence at this index was edited; this was it before.
    Edited(usize, Entry),
    /// This sentence was deleted from this index.
    Deleted(usize, Entry),
}

/// What typed text is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A new sentence.
    Add,
    /// A new text for the sentence at this index.
    Edit(usize),
    /// A new target word.
    Word,
    /// A sentences file to open.
    Open,
}

impl Purpose {
    /// The prompt shown before the text.
    pub fn prompt(self) -> &'static str {
        match self {
            Purpose::Add => "add sentence",
            Purpose::Edit(_) => "edit sentence",
            Purpose::Word => "target word",
            Purpose::Open => "open file",
        }
    }
}

/// A message in the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Something worked.
    Info(String),
    /// Something did not.
    Error(String),
}

/// The cache key of one occurrence's vectors in one engine: sentence, span and pooling.
type Key = (String, usize, usize, u8);

fn key(occurrence: &Occurrence, pooling: Pooling) -> Key {
    (occurrence.sentence().to_owned(), occurrence.span().start, occurrence.span().end, pooling_index(pooling))
}

/// The pooling an engine's vectors are cached under: a static engine ignores it, so its
/// vectors are encoded once, under the first pooling.
fn pooling_for(engine: &EngineInfo, pooling: Pooling) -> Pooling {
    if engine.is_static() { Pooling::ALL[0] } else { pooling }
}

fn pooling_index(pooling: Pooling) -> u8 {
    match pooling {
        Pooling::Mean => 0,
        Pooling::First => 1,
        Pooling::Last => 2,
    }
}

/// The whole UI state.
#[derive(Debug)]
pub struct App {
    /// The target word.
    pub word: String,
    /// The sentences, in list order.
    pub entries: Vec<Entry>,
    /// The file the sentences came from.
    pub source: Option<PathBuf>,
    /// Index of the selected entry.
    pub selected: usize,
    /// The selected engine (its position in [`ModelInfo::engines`]): the projection, the
    /// neighbours, the vector and a narrow similarity pane follow it.
    pub engine: usize,
    /// The chosen relative depth, 0 = embeddings output, 1 = last layer; each engine shows
    /// its layer nearest to it.
    pub depth: f64,
    /// The chosen pooling.
    pub pooling: Pooling,
    /// Model loading state.
    pub models: Models,
    /// What keys do.
    pub mode: Mode,
    /// The tab shown on small terminals.
    pub tab: Pane,
    /// The terminal size.
    pub size: Rect,
    /// False with `NO_COLOR`.
    pub color: bool,
    /// The status-bar message.
    pub notice: Option<Notice>,
    /// Animation frame of the progress indicator.
    pub tick: usize,
    /// Derived numbers for the panes.
    pub analysis: Analysis,
    /// The anisotropy correction applied to the contextual engines' vectors before cosines.
    pub postprocess: Postprocess,
    /// The `--fit` corpus the correction is fitted on (its path and size), if any.
    pub fit: Option<String>,
    /// Components `all-but-the-top` removes when the key cycles to it.
    abtt: usize,
    fits: HashMap<FitKey, Result<Vec<Fitted>, String>>,
    fits_pending: HashSet<FitKey>,
    encoded: HashMap<(usize, Key), Result<Encoded, String>>,
    pending: HashSet<(usize, Key)>,
    neighbours: HashMap<(usize, String), Result<Vec<Neighbor>, String>>,
    neighbours_pending: HashSet<(usize, String)>,
    cka: HashMap<CkaKey, Result<Cka, String>>,
    cka_pending: HashSet<CkaKey>,
    speeds: HashMap<Vec<Key>, Speeds>,
    speeds_pending: HashSet<Vec<Key>>,
    senses: HashMap<SenseKey, Result<SenseGuess, String>>,
    senses_pending: HashSet<SenseKey>,
    basis: Option<Basis>,
    undo: Vec<Undo>,
    /// Adds, edits and deletes since the sentences were opened or saved.
    unsaved: usize,
    quit: bool,
    fatal: Option<String>,
}

/// What a CKA matrix is computed over: the compared occurrences (with their pooling) and each
/// engine's layer.
type CkaKey = (Vec<Key>, Vec<usize>);

/// Per engine its measured tokens per second (`None`: an engine without tokens).
pub type Speeds = Vec<Option<Result<f64, String>>>;

/// What a WordNet guess is for: the engine, its layer, the occurrence and the correction.
type SenseKey = (usize, usize, Key, String);

/// What a fitted correction is for: the engine, the correction, the pooling and the compared
/// occurrences it was fitted on (`None`: the `--fit` corpus).
type FitKey = (usize, String, Pooling, Option<Vec<Key>>);

/// What the analysis was computed from; when it is unchanged nothing is recomputed.
#[derive(Debug, PartialEq, Eq)]
struct Basis {
    /// The compared occurrences.
    keys: Vec<Key>,
    /// Per engine: 0 pending, 1 missing, 2 ready (over the compared occurrences), 3 its
    /// correction being fitted, 4 its correction failed.
    sides: Vec<u8>,
    /// The correction.
    correction: String,
    /// The selected engine and its layer (the projection's).
    shown: (usize, usize),
}

/// Finds the word in a sentence, or says in a few words why it is not there.
fn locate(text: &str, word: &str) -> Result<Occurrence, String> {
    Occurrence::locate(word, text, &Locator::Search { nth: 1 }).map_err(|e| match e {
        Error::WordNotInSentence { .. } => format!("no whole word {word:?} in it"),
        other => other.to_string(),
    })
}

impl App {
    /// A UI in its first state: models loading, nothing encoded.
    pub fn new(start: Start, size: Rect) -> Self {
        let mut app = App {
            word: start.word,
            entries: Vec::new(),
            source: start.source,
            selected: 0,
            engine: 0,
            depth: 1.0,
            pooling: start.pooling,
            postprocess: start.postprocess,
            fit: start.fit,
            abtt: match start.postprocess {
                Postprocess::AllButTheTop(d) => d,
                _ => 1,
            },
            fits: HashMap::new(),
            fits_pending: HashSet::new(),
            models: Models::Loading,
            mode: Mode::Normal,
            tab: Pane::Similarity,
            size,
            color: start.color,
            notice: None,
            tick: 0,
            analysis: Analysis::default(),
            encoded: HashMap::new(),
            pending: HashSet::new(),
            neighbours: HashMap::new(),
            neighbours_pending: HashSet::new(),
            cka: HashMap::new(),
            cka_pending: HashSet::new(),
            speeds: HashMap::new(),
            speeds_pending: HashSet::new(),
            senses: HashMap::new(),
            senses_pending: HashSet::new(),
            basis: None,
            undo: Vec::new(),
            unsaved: 0,
            quit: false,
            fatal: None,
        };
        app.set_rows(start.rows);
        let missing = app.without_word();
        if !missing.is_empty() {
            app.notice = Some(Notice::Info(format!("{} sentences{missing}", app.entries.len())));
        }
        app
    }

    /// Whether the user asked to quit (or a fatal error ended the UI).
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// The error that ended the UI, to print once the terminal is restored.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Whether something is running that the progress indicator should show.
    pub fn busy(&self) -> bool {
        self.models == Models::Loading || self.encoding() > 0 || self.fitting()
    }

    /// Whether a correction is being fitted for the numbers on screen.
    pub fn fitting(&self) -> bool {
        (0..self.engines().len()).filter_map(|e| self.fit_key(e, &self.analysis.rows)).any(|k| self.fits_pending.contains(&k))
    }

    /// What the correction of `engine` over `rows` is fitted on; `None` when none applies:
    /// no correction, a static engine (one vector per word, nothing to correct), or fewer than
    /// two rows to fit on.
    fn fit_key(&self, engine: usize, rows: &[usize]) -> Option<FitKey> {
        let info = self.engines().get(engine)?;
        if self.postprocess == Postprocess::None || info.is_static() || rows.len() < 2 {
            return None;
        }
        let pooling = pooling_for(info, self.pooling);
        let on = match self.fit {
            Some(_) => None,
            None => Some(rows.iter().filter_map(|&i| self.entries[i].located.as_ref().ok()).map(|o| key(o, pooling)).collect()),
        };
        Some((engine, self.postprocess.to_string(), pooling, on))
    }

    /// The correction of `engine` over `rows`, once fitted (`None`: none applies, `Some(Err)`:
    /// still fitting or failed).
    fn fitted(&self, engine: usize, rows: &[usize]) -> Option<Result<&[Fitted], Option<&str>>> {
        let k = self.fit_key(engine, rows)?;
        Some(match self.fits.get(&k) {
            Some(Ok(fitted)) => Ok(fitted),
            Some(Err(e)) => Err(Some(e)),
            None => Err(None),
        })
    }

    /// What the correction is fitted on, in words.
    pub fn fitted_on(&self) -> String {
        match &self.fit {
            Some(corpus) => corpus.clone(),
            None => format!("the {} compared occurrences", self.analysis.rows.len()),
        }
    }

    /// How many occurrences are waiting for the current pooling (in any engine).
    pub fn encoding(&self) -> usize {
        let Some(info) = self.info() else { return 0 };
        let waiting: HashSet<(&str, usize, usize)> = self
            .pending
            .iter()
            .filter(|(e, k)| info.engines.get(*e).is_some_and(|engine| k.3 == pooling_index(pooling_for(engine, self.pooling))))
            .map(|(_, k)| (k.0.as_str(), k.1, k.2))
            .collect();
        waiting.len()
    }

    /// The loaded models, once they are.
    pub fn info(&self) -> Option<&ModelInfo> {
        match &self.models {
            Models::Ready(info) => Some(info),
            Models::Loading => None,
        }
    }

    /// The loaded engines (none while loading).
    pub fn engines(&self) -> &[EngineInfo] {
        self.info().map_or(&[], |i| &i.engines)
    }

    /// The selected engine, once loaded.
    pub fn selected_engine(&self) -> Option<&EngineInfo> {
        self.engines().get(self.engine)
    }

    /// The layer of `engine` nearest to the chosen depth.
    pub fn layer_of(&self, engine: usize) -> usize {
        let layers = self.engines().get(engine).map_or(1, |e| e.layers);
        (self.depth * (layers - 1) as f64).round() as usize
    }

    /// The selected engine's layer at the chosen depth (0 = embeddings output).
    pub fn layer(&self) -> usize {
        self.layer_of(self.engine)
    }

    /// The screen layout for the current size.
    pub fn areas(&self) -> Areas {
        self.areas_in(self.size)
    }

    /// The layout for a screen of `size`.
    pub fn areas_in(&self, size: Rect) -> Areas {
        layout::areas(size, self.entries.len(), self.tab, panes::similarity::maps(self) as u16, self.engines().len() as u16)
    }

    /// The vectors of an entry from one engine for the current pooling, once encoded.
    pub fn vectors(&self, engine: usize, entry: usize) -> Option<&Encoded> {
        self.encoded_in(engine, entry)?.as_ref().ok()
    }

    /// An entry's result from one engine for the current pooling, once it came back.
    fn encoded_in(&self, engine: usize, entry: usize) -> Option<&Result<Encoded, String>> {
        let occurrence = self.entries.get(entry)?.located.as_ref().ok()?;
        let pooling = pooling_for(self.engines().get(engine)?, self.pooling);
        self.encoded.get(&(engine, key(occurrence, pooling)))
    }

    /// The engines whose vectors decide which sentences are compared: the contextual ones
    /// (a static engine's missing word leaves out that engine, not the sentence), or every
    /// engine when there is none.
    fn deciding(&self) -> Vec<usize> {
        let engines = self.engines();
        let contextual: Vec<usize> = (0..engines.len()).filter(|&e| !engines[e].is_static()).collect();
        if contextual.is_empty() { (0..engines.len()).collect() } else { contextual }
    }

    /// Why an entry is or is not compared.
    pub fn row_state(&self, entry: usize) -> RowState<'_> {
        let Some(e) = self.entries.get(entry) else { return RowState::Encoding };
        if let Err(reason) = &e.located {
            return RowState::NoWord(reason);
        }
        let mut windowed = false;
        let mut waiting = false;
        for engine in self.deciding() {
            match self.encoded_in(engine, entry) {
                Some(Ok(encoded)) => windowed |= encoded.windowed,
                Some(Err(reason)) => return RowState::Failed(reason),
                None => waiting = true,
            }
        }
        if waiting || self.info().is_none() { RowState::Encoding } else { RowState::Ready { windowed } }
    }

    /// The engine whose vocabulary the neighbours pane searches: the selected one when it has
    /// a vocabulary, else the first that has one.
    pub fn vocabulary_engine(&self) -> Option<usize> {
        let engines = self.engines();
        if engines.get(self.engine).is_some_and(|e| e.vocabulary) {
            return Some(self.engine);
        }
        engines.iter().position(|e| e.vocabulary)
    }

    /// The vocabulary neighbours of the target word, once looked up.
    pub fn static_neighbours(&self) -> Option<&Result<Vec<Neighbor>, String>> {
        self.neighbours.get(&(self.vocabulary_engine()?, self.word.clone()))
    }

    /// What the CKA matrix on screen is computed over.
    fn cka_key(&self) -> CkaKey {
        let keys = self.analysis.rows.iter().filter_map(|&i| self.entries[i].located.as_ref().ok()).map(|o| key(o, self.pooling)).collect();
        (keys, (0..self.engines().len()).map(|e| self.layer_of(e)).collect())
    }

    /// Linear CKA between the engines at their layers over the tokens of the compared
    /// sentences, once the worker has it.
    pub fn cka(&self) -> Option<&Result<Cka, String>> {
        self.cka.get(&self.cka_key())
    }

    /// Each engine's tokens per second over the compared sentences, once the worker has
    /// measured them.
    pub fn speeds(&self) -> Option<&Speeds> {
        self.speeds.get(&self.cka_key().0)
    }

    /// What the WordNet guess of the selected occurrence is asked for with, if it is compared.
    fn sense_key(&self) -> Option<(SenseKey, Occurrence)> {
        self.analysis.position(self.selected)?;
        let occurrence = self.entries.get(self.selected)?.located.clone().ok()?;
        Some(((self.engine, self.layer(), key(&occurrence, Pooling::Mean), self.postprocess.to_string()), occurrence))
    }

    /// The WordNet synset guessed for the selected occurrence by the selected engine at its
    /// layer (nearest example sentence), once the worker has it.
    pub fn sense_guess(&self) -> Option<&Result<SenseGuess, String>> {
        self.senses.get(&self.sense_key()?.0)
    }

    /// One engine's statistics at its layer at the chosen depth.
    pub fn stats_of(&self, engine: usize) -> Option<&LayerStats> {
        match self.analysis.engines.get(engine)? {
            Side::Ready(layers) => layers.get(self.layer_of(engine).min(layers.len().saturating_sub(1))),
            _ => None,
        }
    }

    /// The selected engine's statistics at the chosen layer.
    pub fn layer_stats(&self) -> Option<&LayerStats> {
        self.stats_of(self.engine)
    }

    /// Handles one message; returns what the runtime must do next.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = Vec::new();
        match msg {
            Msg::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key, &mut effects),
            Msg::Key(_) => {}
            Msg::Mouse(mouse) => self.on_mouse(mouse),
            Msg::Resize(width, height) => self.size = Rect::new(0, 0, width, height),
            Msg::Tick => self.tick = self.tick.wrapping_add(1),
            Msg::Worker(response) => self.on_response(response),
            Msg::FileRead { path, result } => match result.and_then(|rows| self.rows_about_one_word(&path, rows)) {
                Ok(rows) => {
                    self.source = Some(path.clone());
                    self.set_rows(rows);
                    self.undo.clear();
                    self.unsaved = 0;
                    let missing = self.without_word();
                    self.notice = Some(Notice::Info(format!("opened {} ({} sentences{missing})", path.display(), self.entries.len())));
                }
                Err(e) => self.notice = Some(Notice::Error(e)),
            },
            Msg::Saved(result) => {
                self.notice = Some(match result {
                    Ok(path) => {
                        self.unsaved = 0;
                        Notice::Info(format!("saved {}{}", path.display(), renamed(&path)))
                    }
                    Err(e) => Notice::Error(e),
                })
            }
        }
        if !self.quit {
            self.refresh();
            effects.extend(self.requests());
        }
        effects
    }

    fn on_response(&mut self, response: Response) {
        match response {
            Response::Loaded(Ok(info)) => {
                self.depth = 1.0;
                // The first contextual engine is what the UI opens on.
                self.engine = info.engines.iter().position(|e| !e.is_static()).unwrap_or(0);
                self.models = Models::Ready(info);
            }
            Response::Loaded(Err(e)) => {
                self.fatal = Some(e);
                self.quit = true;
            }
            Response::Crashed(e) => {
                self.fatal = Some(format!("internal error in the encoding worker: {e} (please report this)"));
                self.quit = true;
            }
            Response::Encoded { engine, pooling, results } => {
                let Some(info) = self.engines().get(engine) else { return };
                let pooling = pooling_for(info, pooling);
                for (occurrence, result) in results {
                    let k = (engine, key(&occurrence, pooling));
                    self.pending.remove(&k);
                    self.encoded.insert(k, result);
                }
            }
            Response::Sense { engine, layer, occurrence, postprocess, result } => {
                let k = (engine, layer, key(&occurrence, Pooling::Mean), postprocess.to_string());
                self.senses_pending.remove(&k);
                self.senses.insert(k, result);
            }
            Response::Cka { occurrences, pooling, layers, result } => {
                let k = (occurrences.iter().map(|o| key(o, pooling)).collect(), layers);
                self.cka_pending.remove(&k);
                self.cka.insert(k, result);
            }
            Response::Speed { occurrences, pooling, result } => {
                let k: Vec<Key> = occurrences.iter().map(|o| key(o, pooling)).collect();
                self.speeds_pending.remove(&k);
                self.speeds.insert(k, result);
            }
            Response::Fitted { engine, postprocess, pooling, occurrences, result } => {
                let on = occurrences.map(|o| o.iter().map(|o| key(o, pooling)).collect());
                let k = (engine, postprocess.to_string(), pooling, on);
                self.fits_pending.remove(&k);
                self.fits.insert(k, result);
            }
            Response::Neighbours { engine, word, result } => {
                let k = (engine, word);
                self.neighbours_pending.remove(&k);
                self.neighbours.insert(k, result);
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent, effects: &mut Vec<Effect>) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        match &mut self.mode {
            Mode::Help => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::Enter) {
                    self.mode = Mode::Normal;
                }
            }
            Mode::Confirm(confirm) => {
                if matches!(key.code, KeyCode::Char('y' | 'Y') | KeyCode::Enter) {
                    effects.push(Effect::ReadFile(confirm.open.clone()));
                } else {
                    self.notice = Some(Notice::Info("nothing changed".into()));
                }
                self.mode = Mode::Normal;
            }
            Mode::Input(input) => match key.code {
                KeyCode::Esc => self.mode = Mode::Normal,
                KeyCode::Enter => {
                    let input = input.clone();
                    self.mode = Mode::Normal;
                    self.commit(input, effects);
                }
                // A terminal sends Esc and a key typed quickly after it as Alt+key: that
                // is a cancel, never a letter in the field.
                KeyCode::Char(_) if key.modifiers == KeyModifiers::ALT => self.mode = Mode::Normal,
                _ => {
                    if let Some(request) = tui_input::backend::crossterm::to_input_request(&crossterm::event::Event::Key(key)) {
                        input.field.handle(request);
                    }
                }
            },
            Mode::Normal => {
                if let Some(command) = commands::find(key.code) {
                    self.run(command.action, key.code, effects);
                }
            }
        }
    }

    fn run(&mut self, action: Action, code: KeyCode, effects: &mut Vec<Effect>) {
        let last = self.entries.len().saturating_sub(1);
        match action {
            Action::Quit => self.quit = true,
            Action::ClearNotice => self.notice = None,
            Action::Help => self.mode = Mode::Help,
            Action::LayerDown => self.step_layer(-1),
            Action::LayerUp => self.step_layer(1),
            Action::FirstLayer => self.depth = 0.0,
            Action::LastLayer => self.depth = 1.0,
            Action::NextEngine | Action::PreviousEngine => {
                let n = self.engines().len().max(1);
                let step = if action == Action::NextEngine { 1 } else { n - 1 };
                self.engine = (self.engine + step) % n;
                if let Some(e) = self.selected_engine() {
                    let note = if e.causal { ": a decoder, each word sees only the words to its left (p: last pooling suits it)" } else { "" };
                    self.notice = Some(Notice::Info(format!("engine {} of {n}: {} ({}){note}", self.engine + 1, e.name, e.architecture)));
                }
            }
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(5),
            Action::PageDown => self.selected = (self.selected + 5).min(last),
            Action::NextTab => self.tab = PANES[(self.tab.index() + 1) % PANES.len()],
            Action::PreviousTab => self.tab = PANES[(self.tab.index() + PANES.len() - 1) % PANES.len()],
            Action::TabNumber => {
                if let KeyCode::Char(c @ '1'..='9') = code
                    && let Some(&pane) = PANES.get(c as usize - '1' as usize)
                {
                    self.tab = pane;
                }
            }
            Action::Pooling => {
                let next = Pooling::ALL.iter().position(|&p| p == self.pooling).map_or(0, |i| (i + 1) % Pooling::ALL.len());
                self.pooling = Pooling::ALL[next];
                self.notice = Some(Notice::Info(format!("pooling: {} of the word's WordPieces", self.pooling)));
            }
            Action::Correction => {
                let cycle = corrections(self.abtt);
                let next = cycle.iter().position(|&p| p == self.postprocess).map_or(0, |i| (i + 1) % cycle.len());
                self.postprocess = cycle[next];
                let what = match self.postprocess {
                    Postprocess::None => "raw cosines".to_owned(),
                    p => format!("cosines after {p} of the contextual vectors, fitted per layer on {}", self.fitted_on()),
                };
                self.notice = Some(Notice::Info(format!("correction: {what}")));
            }
            Action::Add => self.prompt(Purpose::Add, String::new()),
            Action::Edit if !self.entries.is_empty() => {
                self.prompt(Purpose::Edit(self.selected), self.entries[self.selected].text.clone())
            }
            Action::Delete if !self.entries.is_empty() => {
                let removed = self.entries.remove(self.selected);
                self.notice = Some(Notice::Info(format!("deleted: {} (u undoes)", removed.text)));
                self.undo.push(Undo::Deleted(self.selected, removed));
                self.unsaved += 1;
                self.selected = self.selected.min(self.entries.len().saturating_sub(1));
            }
            Action::Undo => self.undo_last(),
            // The prompt starts empty: typing replaces the word rather than appending to it.
            Action::Word => self.prompt(Purpose::Word, String::new()),
            Action::Open => {
                let current = self.source.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                self.prompt(Purpose::Open, current)
            }
            Action::SaveJson => self.save(ReportFormat::Json, effects),
            Action::SaveMarkdown => self.save(ReportFormat::Markdown, effects),
            Action::Edit | Action::Delete => {}
        }
    }

    fn undo_last(&mut self) {
        let Some(step) = self.undo.pop() else {
            self.notice = Some(Notice::Info("nothing to undo".into()));
            return;
        };
        let (index, what) = match step {
            Undo::Added(index) if index < self.entries.len() => {
                self.entries.remove(index);
                (index.min(self.entries.len().saturating_sub(1)), "add")
            }
            Undo::Edited(index, entry) if index < self.entries.len() => {
                self.entries[index] = self.relocated(entry);
                (index, "edit")
            }
            Undo::Deleted(index, entry) => {
                let index = index.min(self.entries.len());
                let entry = self.relocated(entry);
                self.entries.insert(index, entry);
                (index, "delete")
            }
            Undo::Added(_) | Undo::Edited(..) => return,
        };
        self.selected = index;
        self.unsaved = self.unsaved.saturating_sub(1);
        self.notice = Some(Notice::Info(format!("undid the {what}")));
    }

    /// An entry found again with the current target word (which may have changed since).
    fn relocated(&self, mut entry: Entry) -> Entry {
        entry.located = locate(&entry.text, entry.word.as_deref().unwrap_or(&self.word));
        entry
    }

    fn prompt(&mut self, purpose: Purpose, text: String) {
        self.mode = Mode::Input(Input::new(purpose, text));
    }

    /// Opens `path`, asking `question` first when `ask` is set or when sentences were added,
    /// edited or deleted since the last save (they would be lost).
    fn open(&mut self, path: PathBuf, question: String, ask: bool, effects: &mut Vec<Effect>) {
        if self.unsaved == 0 && !ask {
            effects.push(Effect::ReadFile(path));
            return;
        }
        let unsaved = if self.unsaved > 0 { format!("{} unsaved change(s) to the sentences will be lost; ", self.unsaved) } else { String::new() };
        self.mode = Mode::Confirm(Confirm { question: format!("{unsaved}{question} (y/n)"), open: path });
    }

    fn commit(&mut self, input: Input, effects: &mut Vec<Effect>) {
        let text = input.text().trim().to_owned();
        if text.is_empty() {
            self.notice = Some(Notice::Error(format!("{}: nothing typed, nothing changed", input.purpose.prompt())));
            return;
        }
        match input.purpose {
            Purpose::Add => {
                let located = locate(&text, &self.word);
                self.entries.push(Entry { text, sense: None, word: None, located, place: "added".into() });
                self.selected = self.entries.len() - 1;
                self.undo.push(Undo::Added(self.selected));
                self.unsaved += 1;
            }
            Purpose::Edit(index) => {
                let word = self.word.clone();
                if let Some(entry) = self.entries.get_mut(index) {
                    let before = entry.clone();
                    entry.located = locate(&text, entry.word.as_deref().unwrap_or(&word));
                    entry.text = text;
                    self.undo.push(Undo::Edited(index, before));
                    self.unsaved += 1;
                }
            }
            Purpose::Word => {
                self.word = text;
                for entry in &mut self.entries {
                    entry.word = None;
                    entry.located = locate(&entry.text, &self.word);
                }
                let found = self.entries.iter().filter(|e| e.located.is_ok()).count();
                let notice = format!("target word {:?}: in {found} of {} sentences", self.word, self.entries.len());
                self.notice = Some(Notice::Info(notice.clone()));
                if let Some(example) = sentences::example(&self.word).filter(|p| self.source.as_ref() != Some(p)) {
                    let question = format!("{notice}; open its example set {}?", example.display());
                    self.open(example, question, true, effects);
                }
            }
            Purpose::Open => self.open(PathBuf::from(&text), format!("open {text}?"), false, effects),
        }
    }

    fn save(&mut self, format: ReportFormat, effects: &mut Vec<Effect>) {
        match Report::build(self) {
            Ok(report) => effects.push(Effect::Save(Box::new(report), format)),
            Err(e) => self.notice = Some(Notice::Error(e)),
        }
    }

    fn on_mouse(&mut self, mouse: MouseEvent) {
        if self.mode != Mode::Normal {
            return;
        }
        let (x, y) = (mouse.column, mouse.row);
        let areas = self.areas();
        let over = |area: Rect| layout::contains(area, x, y);
        let last = self.entries.len().saturating_sub(1);
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(tab) = areas.tabs.filter(|&bar| over(bar)).and_then(|bar| layout::tab_at(bar, x)) {
                    self.tab = tab;
                } else if over(areas.sentences) {
                    if let Some(entry) = panes::sentences::entry_at(self, areas.sentences, y) {
                        self.selected = entry;
                    }
                } else if let Some(area) = areas.pane(Pane::Similarity).filter(|&a| over(a)) {
                    let (engine, entry) = panes::similarity::hit(self, area, x, y);
                    if let Some(engine) = engine {
                        self.engine = engine;
                    }
                    if let Some(entry) = entry {
                        self.selected = entry;
                    }
                } else if let Some(area) = areas.pane(Pane::Layers).filter(|&a| over(a))
                    && let Some(depth) = panes::layers::depth_at(area, x)
                {
                    self.set_depth(depth);
                }
            }
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let up = mouse.kind == MouseEventKind::ScrollUp;
                if areas.pane(Pane::Layers).is_some_and(over) {
                    self.step_layer(if up { 1 } else { -1 });
                } else {
                    self.selected = if up { self.selected.saturating_sub(1) } else { (self.selected + 1).min(last) };
                }
            }
            _ => {}
        }
    }

    /// The engine whose layers the layer keys step through: the selected one, else (a static
    /// engine has one layer) the deepest.
    fn stepping_engine(&self) -> Option<usize> {
        let engines = self.engines();
        if engines.get(self.engine).is_some_and(|e| e.layers > 1) {
            return Some(self.engine);
        }
        (0..engines.len()).filter(|&e| engines[e].layers > 1).max_by_key(|&e| engines[e].layers)
    }

    /// One layer deeper (+1) or shallower (-1) in the stepping engine; the others follow to
    /// their nearest layer.
    fn step_layer(&mut self, step: isize) {
        let Some(engine) = self.stepping_engine() else { return };
        let last = self.engines()[engine].layers - 1;
        let layer = self.layer_of(engine).saturating_add_signed(step).min(last);
        self.depth = layer as f64 / last as f64;
    }

    /// The depth nearest to `depth` that is a layer of the stepping engine.
    fn set_depth(&mut self, depth: f64) {
        let depth = depth.clamp(0.0, 1.0);
        self.depth = match self.stepping_engine() {
            Some(engine) => {
                let last = (self.engines()[engine].layers - 1) as f64;
                (depth * last).round() / last
            }
            None => depth,
        };
    }

    /// The rows of an opened file about one word, never several mixed: the file's only word,
    /// else the current word's rows; a file about several other words is refused.
    fn rows_about_one_word(&self, path: &std::path::Path, rows: Vec<Row>) -> Result<Vec<Row>, String> {
        if rows.iter().all(|r| r.word.is_none()) {
            return Ok(rows);
        }
        let name = path.display().to_string();
        sentences::rows_for(None, rows.clone(), &name)
            .or_else(|several| sentences::rows_for(Some(&self.word), rows, &name).map_err(|_| several))
            .map(|(_, rows)| rows)
            .map_err(|e| e.to_string())
    }

    /// "; 2 without "bank" (lines 3, 7), left out" for the notice, or nothing.
    fn without_word(&self) -> String {
        let lines: Vec<&str> = self.entries.iter().filter(|e| e.located.is_err()).map(|e| e.place.as_str()).collect();
        if lines.is_empty() {
            return String::new();
        }
        format!("; {} without {:?}, marked ✗ and left out: {}", lines.len(), self.word, lines.join(", "))
    }

    /// Replaces the sentence list; a TSV file's word becomes the target word.
    fn set_rows(&mut self, rows: Vec<Row>) {
        if let Some(word) = rows.iter().find_map(|r| r.word.clone()) {
            self.word = word;
        }
        let word = self.word.clone();
        self.entries = rows
            .into_iter()
            .map(|row| {
                let own = row.word.filter(|w| w.to_lowercase() != word.to_lowercase());
                let located = locate(&row.text, own.as_deref().unwrap_or(&word));
                Entry { text: row.text, sense: row.sense, word: own, located, place: row.place }
            })
            .collect();
        self.selected = 0;
    }

    /// Recomputes the derived numbers when their inputs changed: the pairwise matrices of
    /// every layer only when the compared set does, the projection when the layer or the
    /// selected engine does.
    fn refresh(&mut self) {
        let Some(info) = self.info() else { return };
        let engines = info.engines.len();
        let deciding = self.deciding();
        let rows: Vec<usize> =
            (0..self.entries.len()).filter(|&i| deciding.iter().all(|&e| self.vectors(e, i).is_some())).collect();
        let keys: Vec<Key> =
            rows.iter().filter_map(|&i| self.entries[i].located.as_ref().ok()).map(|o| key(o, self.pooling)).collect();
        let sides: Vec<u8> = (0..engines)
            .map(|e| {
                let results: Vec<_> = rows.iter().map(|&i| self.encoded_in(e, i)).collect();
                if results.iter().any(|r| r.is_none()) {
                    0
                } else if results.iter().any(|r| matches!(r, Some(Err(_)))) {
                    1
                } else {
                    match self.fitted(e, &rows) {
                        None | Some(Ok(_)) => 2,
                        Some(Err(None)) => 3,
                        Some(Err(Some(_))) => 4,
                    }
                }
            })
            .collect();
        let shown = (self.engine, self.layer());
        let basis = Basis { keys, sides, correction: self.postprocess.to_string(), shown };
        if self.basis.as_ref() == Some(&basis) {
            return;
        }
        let same_set = self
            .basis
            .as_ref()
            .is_some_and(|b| b.keys == basis.keys && b.sides == basis.sides && b.correction == basis.correction);
        let previous = std::mem::take(&mut self.analysis.engines);
        let previous_corrected = std::mem::take(&mut self.analysis.corrected);
        let previous_drift = std::mem::take(&mut self.analysis.drift);
        let (sides, corrected, drift): (Vec<Side>, Vec<Option<Vec<LayerVectors>>>, Vec<Drift>) = if same_set {
            (previous, previous_corrected, previous_drift)
        } else {
            let corrected: Vec<_> = (0..engines).map(|e| self.corrected(e, &rows, basis.sides[e])).collect();
            let sides = (0..engines).map(|e| self.side(e, &rows, basis.sides[e], corrected[e].as_deref())).collect();
            (sides, corrected, self.drift(&rows))
        };
        let (projection, clusters) = match sides.get(self.engine) {
            Some(Side::Ready(_)) => {
                let layer = self.layer();
                let vectors: Vec<&[f32]> = match corrected.get(self.engine) {
                    Some(Some(corrected)) => corrected.iter().filter_map(|v| v.layer(layer)).collect(),
                    _ => rows.iter().filter_map(|&i| self.vectors(self.engine, i)).map(|e| &e.vectors.layers()[layer][..]).collect(),
                };
                // Senses found without labels: average-link clusters, k by silhouette.
                let clusters = (vectors.len() >= 3).then(|| cluster::choose_k(&vectors, cluster::Method::Average, cluster::DEFAULT_MAX_K));
                (analysis::project(&vectors), clusters)
            }
            _ => (None, None),
        };
        let senses: Vec<Option<&str>> = rows.iter().map(|&i| self.entries[i].sense.as_deref()).collect();
        let ari = clusters
            .as_ref()
            .filter(|_| senses.iter().all(Option::is_some))
            .map(|c: &Clustering| cluster::adjusted_rand_index(&c.labels, &senses));
        self.analysis = Analysis { rows, engines: sides, corrected, projection, clusters, ari, drift };
        self.basis = Some(basis);
    }

    /// Each variant engine's drift from its original over `rows`, once both have every vector.
    fn drift(&self, rows: &[usize]) -> Vec<Drift> {
        use vecshift::compress::drift::{Labels, drift};
        let engines = self.engines();
        let raw = |engine: usize| -> Option<Vec<LayerVectors>> { rows.iter().map(|&i| self.vectors(engine, i).map(|e| e.vectors.clone())).collect() };
        let words: Vec<String> = rows.iter().filter_map(|&i| self.entries[i].located.as_ref().ok()).map(|o| o.word().to_lowercase()).collect();
        let senses: Vec<Option<String>> = rows.iter().map(|&i| self.entries[i].sense.clone()).collect();
        (0..engines.len())
            .filter_map(|engine| {
                let of = engines[engine].variant.as_ref()?;
                let (base, variant) = (raw(of.base)?, raw(engine)?);
                let layers = drift(&base, &variant, &of.layer_map, &Labels { words: &words, senses: &senses }).map_err(|e| e.to_string());
                Some(Drift { engine, base: of.base, layers })
            })
            .collect()
    }

    /// The compared rows' vectors from one engine after the correction, when one applies and
    /// is fitted (`state` 2).
    fn corrected(&self, engine: usize, rows: &[usize], state: u8) -> Option<Vec<LayerVectors>> {
        let Some(Ok(fitted)) = self.fitted(engine, rows).filter(|_| state == 2) else { return None };
        let corrected = rows
            .iter()
            .filter_map(|&i| self.vectors(engine, i))
            .map(|e| LayerVectors::new(e.vectors.layers().iter().zip(fitted).map(|(v, f)| f.apply(v)).collect()))
            .collect();
        Some(corrected)
    }

    /// One engine's statistics per layer over the compared rows (from `corrected` when given).
    fn side(&self, engine: usize, rows: &[usize], state: u8, corrected: Option<&[LayerVectors]>) -> Side {
        match state {
            0 | 3 => Side::Pending,
            1 => {
                let reason = rows.iter().find_map(|&i| self.encoded_in(engine, i)?.as_ref().err()).cloned().unwrap_or_default();
                Side::Missing(reason)
            }
            4 => {
                let reason = match self.fitted(engine, rows) {
                    Some(Err(Some(e))) => e.to_owned(),
                    _ => String::new(),
                };
                Side::Missing(format!("--postprocess {}: {reason}", self.postprocess))
            }
            _ => {
                let vectors: Vec<&LayerVectors> = match corrected {
                    Some(corrected) => corrected.iter().collect(),
                    None => rows.iter().filter_map(|&i| self.vectors(engine, i)).map(|e| &e.vectors).collect(),
                };
                let layers = self.engines()[engine].layers;
                Side::Ready((0..layers).map(|l| LayerStats::of(&vectors.iter().filter_map(|v| v.layer(l)).collect::<Vec<_>>())).collect())
            }
        }
    }

    /// The vectors of the compared rows from one engine at one layer, after the correction
    /// where one applies.
    pub fn layer_vectors(&self, engine: usize, layer: usize) -> Vec<&[f32]> {
        if let Some(Some(corrected)) = self.analysis.corrected.get(engine) {
            return corrected.iter().filter_map(|v| v.layer(layer)).collect();
        }
        self.analysis
            .rows
            .iter()
            .filter_map(|&i| self.vectors(engine, i))
            .filter_map(|e| e.vectors.layer(layer))
            .collect()
    }

    /// Jobs for whatever is missing: the current pooling first (every engine), then the other
    /// poolings in the background so that switching later is instant.
    fn requests(&mut self) -> Vec<Effect> {
        let Some(info) = self.info().cloned() else { return Vec::new() };
        let mut effects = Vec::new();
        let located: Vec<Occurrence> = self.entries.iter().filter_map(|e| e.located.clone().ok()).collect();
        let order = std::iter::once(self.pooling).chain(Pooling::ALL.into_iter().filter(|&p| p != self.pooling));
        for (n, pooling) in order.enumerate() {
            for (engine, e) in info.engines.iter().enumerate() {
                if n > 0 && e.is_static() {
                    continue;
                }
                let mut missing = Vec::new();
                for occurrence in &located {
                    let k = (engine, key(occurrence, pooling_for(e, pooling)));
                    if !self.encoded.contains_key(&k) && self.pending.insert(k) {
                        missing.push(occurrence.clone());
                    }
                }
                if !missing.is_empty() {
                    effects.push(Effect::Send(Request::Encode { engine, occurrences: missing, pooling, prefetch: n > 0 }));
                }
            }
            if n == 0 && self.encoding() > 0 {
                break;
            }
        }
        // The correction of each engine, once its vectors of the compared rows are all in.
        let rows = self.analysis.rows.clone();
        for (engine, _) in info.engines.iter().enumerate() {
            let Some(k) = self.fit_key(engine, &rows) else { continue };
            let vectors: Vec<LayerVectors> = rows.iter().filter_map(|&i| self.vectors(engine, i)).map(|e| e.vectors.clone()).collect();
            if vectors.len() < rows.len() || self.fits.contains_key(&k) || !self.fits_pending.insert(k.clone()) {
                continue;
            }
            let on = match k.3 {
                None => FitOn::Corpus,
                Some(_) => FitOn::Occurrences(rows.iter().filter_map(|&i| self.entries[i].located.clone().ok()).collect(), vectors),
            };
            effects.push(Effect::Send(Request::Fit { engine, postprocess: self.postprocess, pooling: k.2, on }));
        }
        // The WordNet guess only while the vector pane is on screen: it embeds the examples.
        if self.encoding() == 0
            && self.areas().pane(Pane::Vector).is_some()
            && let Some((k, occurrence)) = self.sense_key()
            && !self.senses.contains_key(&k)
            && self.senses_pending.insert(k.clone())
        {
            effects.push(Effect::Send(Request::Sense { engine: k.0, layer: k.1, occurrence, postprocess: self.postprocess }));
        }
        // CKA only while the models pane is on screen: it costs a pass over every word.
        if self.encoding() == 0 && self.analysis.comparable() && info.engines.len() > 1 && self.areas().pane(Pane::Models).is_some() {
            let k = self.cka_key();
            if !self.cka.contains_key(&k) && self.cka_pending.insert(k.clone()) {
                let occurrences = self.analysis.rows.iter().filter_map(|&i| self.entries[i].located.clone().ok()).collect();
                effects.push(Effect::Send(Request::Cka { occurrences, pooling: self.pooling, layers: k.1 }));
            }
        }
        // The speeds too: timing embeds every compared sentence once more per contextual engine.
        if self.encoding() == 0
            && self.analysis.comparable()
            && info.engines.iter().any(|e| e.bytes.is_some())
            && self.areas().pane(Pane::Models).is_some()
        {
            let k = self.cka_key().0;
            if !self.speeds.contains_key(&k) && self.speeds_pending.insert(k) {
                let occurrences = self.analysis.rows.iter().filter_map(|&i| self.entries[i].located.clone().ok()).collect();
                effects.push(Effect::Send(Request::Speed { occurrences, pooling: self.pooling }));
            }
        }
        if let Some(engine) = self.vocabulary_engine() {
            let k = (engine, self.word.clone());
            if !self.neighbours.contains_key(&k) && self.neighbours_pending.insert(k) {
                effects.push(Effect::Send(Request::Neighbours { engine, word: self.word.clone() }));
            }
        }
        effects
    }
}

/// " (the name without -N was taken)" when a save had to number its file name, else nothing.
fn renamed(path: &std::path::Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((base, n)) if n.parse::<u32>().is_ok_and(|n| n >= 2) && base.starts_with("vecshift-") => {
            let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
            format!(" (named -{n}: {base}{ext} exists)")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vecshift::LayerVectors;

    fn engine(name: &str, kind: vecshift::EngineKind, layers: usize) -> EngineInfo {
        let fixed = kind == vecshift::EngineKind::Static;
        EngineInfo { name: name.into(), kind, architecture: if fixed { "finalfusion" } else { "bert" }.into(), layers, dims: 2, causal: false, vocabulary: fixed, variant: None, bytes: None }
    }

    const INFO: fn() -> ModelInfo = || ModelInfo {
        engines: vec![engine("bert", vecshift::EngineKind::Contextual, 3), engine("glove", vecshift::EngineKind::Static, 1)],
    };

    fn row(text: &str, sense: &str) -> Row {
        Row { word: Some("bank".into()), text: text.into(), sense: Some(sense.into()), place: "t.tsv".into() }
    }

    fn app() -> App {
        let rows = vec![row("The bank approved it.", "finance"), row("A grassy bank.", "river"), row("Bank of monitors.", "row")];
        let start = Start { word: "bank".into(), rows, source: None, pooling: Pooling::Mean, color: true, postprocess: Postprocess::None, fit: None };
        App::new(start, Rect::new(0, 0, 80, 24))
    }

    fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            press(app, KeyCode::Char(c));
        }
    }

    /// Answers encode requests with made-up vectors (sentence length, pooling, layer) so that
    /// the state logic can be followed without a model.
    fn answer(app: &mut App, effects: Vec<Effect>) -> Vec<Request> {
        let mut seen = Vec::new();
        let mut effects = effects;
        while !effects.is_empty() {
            let mut replies = Vec::new();
            for effect in effects {
                let Effect::Send(request) = effect else { panic!("{effect:?}") };
                seen.push(request.clone());
                replies.push(match request {
                    Request::Encode { engine, occurrences, pooling, .. } => Response::Encoded {
                        engine,
                        pooling,
                        results: occurrences
                            .into_iter()
                            .map(|o| {
                                let base = o.sentence().len() as f32;
                                let shift = (l_of(&o) + 1.0) * (1.0 + f32::from(pooling_index(pooling)));
                                let layers = match app.engines()[engine].layers {
                                    1 => vec![vec![1.0, 2.0]],
                                    n => (0..n).map(|l| vec![base, (base * (l as f32 + 1.0)).sin() + shift]).collect(),
                                };
                                (o, Ok(Encoded { vectors: LayerVectors::new(layers), windowed: false, pieces: Vec::new(), unknown: Vec::new() }))
                            })
                            .collect(),
                    },
                    Request::Neighbours { engine, word } => Response::Neighbours { engine, word, result: Ok(Vec::new()) },
                    Request::Speed { occurrences, pooling } => {
                        let result = app.engines().iter().map(|e| e.bytes.map(|_| Ok(1000.0))).collect();
                        Response::Speed { occurrences, pooling, result }
                    }
                    Request::Cka { occurrences, pooling, layers } => {
                        let n = layers.len();
                        let matrix = (0..n).map(|a| (0..n).map(|b| Some(if a == b { 1.0 } else { 0.5 })).collect()).collect();
                        Response::Cka { occurrences, pooling, layers, result: Ok(Cka { tokens: 9, matrix }) }
                    }
                    Request::Sense { engine, layer, occurrence, postprocess } => {
                        Response::Sense { engine, layer, occurrence, postprocess, result: Err("no WordNet in this test".into()) }
                    }
                    Request::Fit { engine, postprocess, pooling, on } => {
                        let FitOn::Occurrences(occurrences, vectors) = on else { panic!("no --fit corpus in these tests") };
                        let result = (0..vectors[0].num_layers())
                            .map(|l| postprocess.fit(&vectors.iter().map(|v| &v.layers()[l]).collect::<Vec<_>>()).map_err(|e| e.to_string()))
                            .collect();
                        Response::Fitted { engine, postprocess, pooling, occurrences: Some(occurrences), result }
                    }
                });
            }
            effects = replies.into_iter().flat_map(|r| app.update(Msg::Worker(r))).collect();
        }
        seen
    }

    fn l_of(o: &Occurrence) -> f32 {
        o.span().start as f32
    }

    fn encodes(requests: &[Request]) -> Vec<(usize, usize, Pooling, bool)> {
        requests
            .iter()
            .filter_map(|r| match r {
                Request::Encode { engine, occurrences, pooling, prefetch } => Some((*engine, occurrences.len(), *pooling, *prefetch)),
                _ => None,
            })
            .collect()
    }

    fn loaded() -> App {
        let mut app = app();
        let effects = app.update(Msg::Worker(Response::Loaded(Ok(INFO()))));
        let requests = answer(&mut app, effects);
        assert_eq!(
            encodes(&requests),
            [(0, 3, Pooling::Mean, false), (1, 3, Pooling::Mean, false), (0, 3, Pooling::First, true), (0, 3, Pooling::Last, true)],
            "the pooling on screen first, every engine, then the others in the background (a static engine ignores pooling)"
        );
        app
    }

    #[test]
    fn nothing_is_encoded_twice() {
        let mut app = loaded();
        assert!(!app.busy());
        assert_eq!(app.layer(), 2, "starts on the last layer");
        assert_eq!(app.analysis.rows, [0, 1, 2]);
        // Layer, selection, pooling, tabs: all from the cache.
        for code in [KeyCode::Left, KeyCode::Down, KeyCode::Char('p'), KeyCode::Char('p'), KeyCode::Tab, KeyCode::Right] {
            assert!(press(&mut app, code).is_empty(), "{code:?} asked the worker for something");
        }
        assert_eq!(app.pooling, Pooling::Last);
        assert_eq!(app.selected, 1);
        assert!(matches!(&app.analysis.engines[..], [Side::Ready(bert), Side::Ready(glove)] if bert.len() == 3 && glove.len() == 1));
        // The projection follows the layer.
        let before = app.analysis.projection.clone();
        press(&mut app, KeyCode::Home);
        assert_eq!(app.layer(), 0);
        assert_ne!(app.analysis.projection, before);
    }

    #[test]
    fn engines_share_one_depth_and_a_static_engine_steps_the_deepest() {
        use vecshift::EngineKind::{Contextual, Static};
        let mut app = app();
        let info = ModelInfo { engines: vec![engine("bert", Contextual, 3), engine("deep", Contextual, 5), engine("glove", Static, 1)] };
        let effects = app.update(Msg::Worker(Response::Loaded(Ok(info))));
        answer(&mut app, effects);
        assert_eq!((app.engine, app.layer(), app.layer_of(1), app.layer_of(2)), (0, 2, 4, 0));
        press(&mut app, KeyCode::Left);
        assert_eq!((app.layer(), app.layer_of(1)), (1, 2), "half way down both");
        press(&mut app, KeyCode::Char('n'));
        assert_eq!(app.engine, 1);
        press(&mut app, KeyCode::Left);
        assert_eq!((app.layer(), app.layer_of(0)), (1, 1), "the selected engine steps one of its own layers");
        press(&mut app, KeyCode::Char('n'));
        assert_eq!((app.engine, app.layer()), (2, 0));
        press(&mut app, KeyCode::Right);
        assert_eq!(app.layer_of(1), 2, "with the static engine selected, the deepest engine's layers are stepped");
        assert!(app.analysis.projection.is_some(), "the static engine's projection: every point in one place");
        press(&mut app, KeyCode::Char('n'));
        assert_eq!(app.engine, 0, "n wraps around");
        press(&mut app, KeyCode::Char('N'));
        assert_eq!(app.engine, 2, "N goes back");
        assert!(matches!(&app.analysis.engines[..], [Side::Ready(a), Side::Ready(b), Side::Ready(c)] if a.len() == 3 && b.len() == 5 && c.len() == 1));
        assert!(app.analysis.flat(2) && !app.analysis.flat(0));
    }

    #[test]
    fn a_decoder_is_said_to_see_only_the_left_context() {
        use vecshift::EngineKind::{Contextual, Static};
        let mut app = app();
        let mut gpt = engine("gpt2", Contextual, 3);
        gpt.causal = true;
        let effects = app.update(Msg::Worker(Response::Loaded(Ok(ModelInfo { engines: vec![gpt, engine("glove", Static, 1)] }))));
        answer(&mut app, effects);
        let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| app.render(frame)).unwrap();
        let text = terminal.backend().to_string();
        assert!(text.contains("gpt2 · mean") && text.contains("sees only the left context"), "{text}");
        press(&mut app, KeyCode::Char('n'));
        press(&mut app, KeyCode::Char('n'));
        assert!(matches!(&app.notice, Some(Notice::Info(n)) if n.contains("gpt2 (bert): a decoder")), "{:?}", app.notice);
    }

    #[test]
    fn layer_and_selection_stay_in_range() {
        let mut app = loaded();
        for _ in 0..5 {
            press(&mut app, KeyCode::Right);
        }
        assert_eq!(app.layer(), 2);
        for _ in 0..5 {
            press(&mut app, KeyCode::Char('h'));
        }
        assert_eq!(app.layer(), 0);
        press(&mut app, KeyCode::End);
        assert_eq!(app.layer(), 2);
        press(&mut app, KeyCode::PageDown);
        assert_eq!(app.selected, 2);
        press(&mut app, KeyCode::Char('k'));
        assert_eq!(app.selected, 1);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.selected, 0);
    }

    #[test]
    fn add_edit_delete_and_a_sentence_without_the_word() {
        let mut app = loaded();
        press(&mut app, KeyCode::Char('a'));
        type_text(&mut app, "The river was calm.");
        let effects = press(&mut app, KeyCode::Enter);
        assert!(effects.is_empty(), "no word, nothing to encode");
        assert_eq!(app.selected, 3);
        assert_eq!(app.row_state(3), RowState::NoWord("no whole word \"bank\" in it"));
        assert_eq!(app.analysis.rows, [0, 1, 2], "left out of the comparison");

        press(&mut app, KeyCode::Char('e'));
        press(&mut app, KeyCode::End);
        for _ in 0..".".len() + "calm".len() {
            press(&mut app, KeyCode::Backspace);
        }
        type_text(&mut app, "bank.");
        let effects = press(&mut app, KeyCode::Enter);
        let requests = answer(&mut app, effects);
        assert_eq!(app.entries[3].text, "The river was bank.");
        assert_eq!(encodes(&requests)[0], (0, 1, Pooling::Mean, false), "only the edited sentence is encoded");
        assert_eq!(app.analysis.rows, [0, 1, 2, 3]);

        press(&mut app, KeyCode::Up);
        press(&mut app, KeyCode::Char('d'));
        assert_eq!(app.entries.len(), 3);
        assert_eq!(app.selected, 2);
        assert_eq!(app.analysis.rows, [0, 1, 2]);
        assert!(press(&mut app, KeyCode::Delete).is_empty(), "the others are still cached");
        assert_eq!(app.analysis.rows, [0, 1]);
    }

    #[test]
    fn changing_the_word_relocates_every_sentence() {
        let mut app = loaded();
        press(&mut app, KeyCode::Char('w'));
        press(&mut app, KeyCode::Char('u'));
        assert!(matches!(&app.mode, Mode::Input(i) if i.text() == "u"), "the word prompt starts empty");
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
        type_text(&mut app, "grassy");
        let effects = press(&mut app, KeyCode::Enter);
        let requests = answer(&mut app, effects);
        assert_eq!(app.word, "grassy");
        assert_eq!(app.analysis.rows, [1]);
        assert!(matches!(app.row_state(0), RowState::NoWord(_)));
        assert!(requests.iter().any(|r| matches!(r, Request::Neighbours { word, .. } if word == "grassy")));
        assert!(!app.analysis.comparable());
        let Some(Notice::Info(text)) = &app.notice else { panic!() };
        assert!(text.contains("in 1 of 3"), "{text}");
    }

    fn ctrl(app: &mut App, c: char) {
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)));
    }

    fn typed(app: &App) -> (String, usize) {
        let Mode::Input(input) = &app.mode else { panic!("{:?}", app.mode) };
        (input.text().to_owned(), input.cursor())
    }

    #[test]
    fn line_editing_has_readline_keys_and_handles_multibyte_text() {
        let mut app = app();
        press(&mut app, KeyCode::Char('a'));
        type_text(&mut app, "café bank");
        for _ in 0..5 {
            press(&mut app, KeyCode::Left);
        }
        press(&mut app, KeyCode::Backspace);
        assert_eq!(typed(&app), ("caf bank".into(), 3));
        press(&mut app, KeyCode::Char('é'));
        ctrl(&mut app, 'a');
        assert_eq!(typed(&app).1, 0, "Ctrl-A goes to the start, it does not type an a");
        press(&mut app, KeyCode::Delete);
        ctrl(&mut app, 'e');
        assert_eq!(typed(&app), ("afé bank".into(), 8));
        ctrl(&mut app, 'w');
        assert_eq!(typed(&app), ("afé ".into(), 4), "Ctrl-W deletes the word before the cursor");
        // Esc then a quick d arrives as Alt-d: it cancels, and nothing is typed or deleted.
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char('d'), KeyModifiers::ALT)));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.entries.len(), 3);
    }

    #[test]
    fn undo_restores_deleted_added_and_edited_sentences() {
        let mut app = loaded();
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Char('d'));
        assert_eq!(app.entries.len(), 2);
        press(&mut app, KeyCode::Char('a'));
        type_text(&mut app, "One more bank.");
        press(&mut app, KeyCode::Enter);
        press(&mut app, KeyCode::Char('e'));
        type_text(&mut app, "!");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.entries[2].text, "One more bank.!");
        press(&mut app, KeyCode::Char('u'));
        assert_eq!(app.entries[2].text, "One more bank.", "the edit is undone");
        press(&mut app, KeyCode::Char('u'));
        assert_eq!(app.entries.len(), 2, "the add is undone");
        press(&mut app, KeyCode::Char('u'));
        assert_eq!(app.entries.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["The bank approved it.", "A grassy bank.", "Bank of monitors."]);
        assert_eq!((app.selected, app.analysis.rows.clone()), (1, vec![0, 1, 2]), "back in place, and compared again");
        press(&mut app, KeyCode::Char('u'));
        assert_eq!(app.notice, Some(Notice::Info("nothing to undo".into())));
    }

    #[test]
    fn opening_asks_before_dropping_unsaved_sentences_and_a_new_word_offers_its_example_set() {
        let mut app = loaded();
        press(&mut app, KeyCode::Char('a'));
        type_text(&mut app, "My bank.");
        press(&mut app, KeyCode::Enter);
        press(&mut app, KeyCode::Char('o'));
        ctrl(&mut app, 'u');
        type_text(&mut app, "x.tsv");
        assert!(press(&mut app, KeyCode::Enter).is_empty(), "not opened yet");
        let Mode::Confirm(confirm) = &app.mode else { panic!("{:?}", app.mode) };
        assert!(confirm.question.contains("1 unsaved change"), "{}", confirm.question);
        assert!(press(&mut app, KeyCode::Char('n')).is_empty());
        assert_eq!((app.entries.len(), &app.mode), (4, &Mode::Normal));
        app.update(Msg::Saved(Ok(PathBuf::from("/tmp/vecshift-bank-mean.json"))));
        press(&mut app, KeyCode::Char('o'));
        type_text(&mut app, "x.tsv");
        let effects = press(&mut app, KeyCode::Enter);
        assert!(matches!(&effects[..], [Effect::ReadFile(_)]), "saved: opens at once");

        press(&mut app, KeyCode::Char('w'));
        type_text(&mut app, "spring");
        press(&mut app, KeyCode::Enter);
        let Mode::Confirm(confirm) = &app.mode else { panic!("{:?}", app.mode) };
        assert!(confirm.question.contains("sentences/spring.tsv"), "{}", confirm.question);
        let effects = press(&mut app, KeyCode::Char('y'));
        assert!(matches!(&effects[..], [Effect::ReadFile(p)] if p.ends_with("sentences/spring.tsv")), "{effects:?}");
    }

    #[test]
    fn a_numbered_save_says_so() {
        assert_eq!(renamed(std::path::Path::new("/d/vecshift-bank-mean.json")), "");
        assert_eq!(renamed(std::path::Path::new("/d/vecshift-bank-mean-2.md")), " (named -2: vecshift-bank-mean.md exists)");
    }

    #[test]
    fn modes_help_quit_and_escape() {
        let mut app = app();
        press(&mut app, KeyCode::Char('?'));
        assert_eq!(app.mode, Mode::Help);
        press(&mut app, KeyCode::Char('q'));
        assert_eq!(app.mode, Mode::Normal, "q closes the help first");
        assert!(!app.should_quit());
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::Char('q'));
        assert!(!app.should_quit(), "q is a letter while typing");
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.entries.len(), 3, "Esc cancels");
        press(&mut app, KeyCode::Char('a'));
        press(&mut app, KeyCode::Enter);
        assert!(matches!(app.notice, Some(Notice::Error(_))), "empty input is refused");
        press(&mut app, KeyCode::Char('q'));
        assert!(app.should_quit());

        let mut app = self::app();
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(app.should_quit());
    }

    #[test]
    fn a_failed_load_ends_the_ui_with_the_error() {
        let mut app = app();
        assert!(app.busy());
        let effects = app.update(Msg::Worker(Response::Loaded(Err("cannot use the BERT model at x: gone".into()))));
        assert!(effects.is_empty());
        assert!(app.should_quit());
        assert_eq!(app.fatal(), Some("cannot use the BERT model at x: gone"));
    }

    #[test]
    fn saving_waits_for_the_numbers() {
        let mut app = app();
        assert!(press(&mut app, KeyCode::Char('s')).is_empty());
        assert!(matches!(&app.notice, Some(Notice::Error(e)) if e.contains("loading")));
        app.update(Msg::Worker(Response::Loaded(Ok(INFO()))));
        assert!(press(&mut app, KeyCode::Char('s')).is_empty(), "still encoding");
        let mut app = loaded();
        let effects = press(&mut app, KeyCode::Char('S'));
        let [Effect::Save(report, format)] = &effects[..] else { panic!("{effects:?}") };
        assert_eq!(*format, ReportFormat::Markdown);
        assert_eq!(report.sentences.len(), 3);
        assert_eq!(report.senses[1].as_deref(), Some("river"));
        assert_eq!(report.contextual.layers.len(), 3);
        app.update(Msg::Saved(Ok(PathBuf::from("/tmp/vecshift-bank-mean.md"))));
        assert_eq!(app.notice, Some(Notice::Info("saved /tmp/vecshift-bank-mean.md".into())));
    }

    #[test]
    fn opening_a_file_replaces_the_sentences() {
        let mut app = loaded();
        press(&mut app, KeyCode::Char('o'));
        type_text(&mut app, "x.tsv");
        let effects = press(&mut app, KeyCode::Enter);
        assert!(matches!(&effects[..], [Effect::ReadFile(p)] if p == &PathBuf::from("x.tsv")));
        let row = |word: &str, text: &str| Row { word: Some(word.into()), text: text.into(), sense: None, place: "x.tsv line 1".into() };
        let rows = vec![row("bat", "A bat flew."), row("bat", "No such animal.")];
        let effects = app.update(Msg::FileRead { path: "x.tsv".into(), result: Ok(rows) });
        let requests = answer(&mut app, effects);
        assert_eq!(app.word, "bat", "a TSV file brings its word");
        assert_eq!(app.entries.len(), 2);
        let Some(Notice::Info(text)) = &app.notice else { panic!("{:?}", app.notice) };
        assert!(text.contains("1 without \"bat\"") && text.contains("x.tsv line 1"), "{text}");
        assert_eq!(encodes(&requests)[0], (0, 1, Pooling::Mean, false));
        app.update(Msg::FileRead { path: "y.txt".into(), result: Err("cannot read y.txt".into()) });
        assert_eq!(app.notice, Some(Notice::Error("cannot read y.txt".into())));
        assert_eq!(app.entries.len(), 2, "a failed open keeps the list");
        let mixed = vec![row("bass", "A bass."), row("seal", "A seal.")];
        app.update(Msg::FileRead { path: "m.tsv".into(), result: Ok(mixed.clone()) });
        assert!(matches!(&app.notice, Some(Notice::Error(e)) if e.contains("\"bass\", \"seal\"")), "{:?}", app.notice);
        assert_eq!(app.entries.len(), 2, "words are never mixed");
        // With the current word among them, its rows are taken.
        let mixed = [mixed, vec![row("Bat", "The bat.")]].concat();
        app.update(Msg::FileRead { path: "m.tsv".into(), result: Ok(mixed) });
        assert_eq!(app.entries.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["The bat."]);
    }

    #[test]
    fn mouse_selects_sentences_tabs_and_layers() {
        use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let mut app = loaded();
        let click = |column, row| Msg::Mouse(MouseEvent { kind: MouseEventKind::Down(MouseButton::Left), column, row, modifiers: KeyModifiers::NONE });
        let areas = app.areas();
        // The third sentence is on the third row inside the list's border.
        app.update(click(10, areas.sentences.y + 3));
        assert_eq!(app.selected, 2);
        let bar = areas.tabs.unwrap();
        let (start, _) = layout::tab_labels()[1];
        app.update(click(bar.x + start + 2, bar.y));
        assert_eq!(app.tab, Pane::Layers);
        let chart = app.areas().pane(Pane::Layers).unwrap();
        app.update(click(chart.x + 7, chart.y + 3));
        assert_eq!(app.layer(), 0, "left edge of the plot");
        app.update(click(chart.right() - 2, chart.y + 3));
        assert_eq!(app.layer(), 2, "right edge of the plot");
        let wheel = |kind, column, row| Msg::Mouse(MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE });
        app.update(wheel(MouseEventKind::ScrollDown, chart.x + 5, chart.y + 3));
        assert_eq!(app.layer(), 1, "the wheel over the chart moves the layer");
        app.update(wheel(MouseEventKind::ScrollUp, 5, areas.sentences.y + 1));
        assert_eq!(app.selected, 1, "elsewhere it moves the selection");
        // In the wide layout a click on a heatmap row selects that sentence.
        app.update(Msg::Resize(160, 48));
        let heatmap = app.areas().pane(Pane::Similarity).unwrap();
        app.update(click(heatmap.x + 3, heatmap.y + 1 + 1 + 2));
        assert_eq!(app.selected, 0);
    }
}
