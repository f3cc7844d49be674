//! The UI on the embedded models: numbers against an independent reference (transformers,
//! numpy and gensim; `testdata/make_bank_reference.py`), and the screens as insta snapshots
//! at 80x24 and 160x48.

use std::sync::{Mutex, OnceLock};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use serde_json::Value;
use vecshift::{BertEncoder, ContextualEncoder, LoadOptions, Pooling, StaticEngine};

use super::analysis::Side;
use super::app::{App, Effect, Msg, Start};
use super::layout::{PANES, Pane};
use super::panes::{self, neighbours};
use super::sentences;
use super::theme::Theme;
use super::worker::{Engines, Response};

/// The embedded models, loaded once for all tests (each test drives them in turn).
fn engines() -> &'static Mutex<Engines> {
    static ENGINES: OnceLock<Mutex<Engines>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let engines = Engines::of(vec![BertEncoder::load_default().unwrap().into(), StaticEngine::open_default().unwrap().into()]);
        Mutex::new(engines.unwrap().with_wordnet(Some(wordnet_dir())))
    })
}

/// The WordNet extract in data/ that `vecshift senses` reads by default.
fn wordnet_dir() -> std::path::PathBuf {
    vecshift::source::data_dir().join("wordnet")
}

fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| serde_json::from_str(include_str!("testdata/bank_reference.json")).unwrap())
}

/// Three engines as issue 10 names them: the embedded MiniLM, a second contextual model (the
/// tests' tiny BERT, whose 87-piece vocabulary leaves many words unknown) and GloVe.
fn three_engines() -> &'static Mutex<Engines> {
    static ENGINES: OnceLock<Mutex<Engines>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let tiny = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_bert/f32_noprefix");
        let tiny = ContextualEncoder::load_with(tiny, &LoadOptions::default().name("tiny")).unwrap();
        let engines = vec![BertEncoder::load_default().unwrap().into(), tiny.into(), StaticEngine::open_default().unwrap().into()];
        Mutex::new(Engines::of(engines).unwrap())
    })
}

/// The tokens/s the screens show for engine `i`: timings vary from run to run, so the tests
/// put this in place of what the worker measured (checked on its own in
/// `variants_sit_beside_their_original_with_their_drift_per_layer`).
fn fixed_speed_of(i: usize) -> f64 {
    12_345.0 * (i + 1) as f64
}

fn fixed_speed(response: Response) -> Response {
    match response {
        Response::Speed { occurrences, pooling, result } => {
            let result = result.into_iter().enumerate().map(|(i, r)| r.map(|r| r.map(|_| fixed_speed_of(i)))).collect();
            Response::Speed { occurrences, pooling, result }
        }
        other => other,
    }
}

/// Performs effects the way the runtime does, synchronously, until none are left.
fn settle(app: &mut App, effects: Vec<Effect>) {
    settle_with(engines(), app, effects)
}

fn settle_with(engines: &Mutex<Engines>, app: &mut App, effects: Vec<Effect>) {
    let mut effects = effects;
    while !effects.is_empty() {
        let mut replies = Vec::new();
        for effect in effects {
            match effect {
                Effect::Send(request) => {
                    engines.lock().unwrap().handle(request, &mut |r| replies.push(Msg::Worker(fixed_speed(r))))
                }
                other => panic!("unexpected effect {other:?}"),
            }
        }
        effects = replies.into_iter().flat_map(|msg| app.update(msg)).collect();
    }
}

fn send(app: &mut App, msg: Msg) {
    let effects = app.update(msg);
    settle(app, effects);
}

fn key(app: &mut App, code: KeyCode) {
    send(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn bank_start(color: bool) -> Start {
    let path = vecshift::source::data_dir().join("sentences/bank.tsv");
    Start {
        word: "bank".into(),
        rows: sentences::read(&path).unwrap(),
        source: Some(path),
        pooling: Pooling::Mean,
        color,
        postprocess: vecshift::analysis::postprocess::Postprocess::None,
        fit: None,
    }
}

/// The bank example with everything encoded, as a user sees it once the spinner stops.
fn bank_app(width: u16, height: u16, color: bool) -> App {
    let mut app = App::new(bank_start(color), Rect::new(0, 0, width, height));
    let info = engines().lock().unwrap().info();
    send(&mut app, Msg::Worker(Response::Loaded(Ok(info))));
    assert!(!app.busy());
    app
}

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(app.size.width, app.size.height)).unwrap();
    terminal.draw(|frame| app.render(frame)).unwrap();
    terminal
}

fn screen(app: &App) -> String {
    draw(app).backend().to_string()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[test]
fn numbers_match_transformers_numpy_and_gensim() {
    let mut app = bank_app(160, 48, true);
    let reference = reference();
    for (p, pooling) in ["mean", "first", "last"].into_iter().enumerate() {
        if p > 0 {
            key(&mut app, KeyCode::Char('p'));
        }
        assert_eq!(app.pooling.to_string(), pooling);
        let layers = reference["contextual"][pooling].as_array().unwrap();
        let Side::Ready(ours) = &app.analysis.engines[0] else { panic!("the contextual engine is not ready") };
        assert_eq!(ours.len(), layers.len());
        for (ours, theirs) in ours.iter().zip(layers) {
            let mean = theirs["mean_similarity"].as_f64().unwrap();
            assert!(close(f64::from(ours.mean), mean, 1e-4), "{pooling} layer {}: {} vs {mean}", theirs["layer"], ours.mean);
            for (row, their_row) in ours.matrix.iter().zip(theirs["matrix"].as_array().unwrap()) {
                for (a, b) in row.iter().zip(their_row.as_array().unwrap()) {
                    assert!(close(f64::from(*a), b.as_f64().unwrap(), 1e-4));
                }
            }
        }
    }
    key(&mut app, KeyCode::Char('p'));
    assert_eq!(app.pooling, Pooling::Mean);

    // The projection at the last layer: numpy's SVD, each component up to its sign.
    let pca = app.analysis.projection.as_ref().unwrap();
    let theirs = &reference["pca_last_layer_mean"];
    for (c, ratio) in theirs["explained_variance_ratio"].as_array().unwrap().iter().enumerate() {
        assert!(close(f64::from(pca.explained_variance_ratio[c]), ratio.as_f64().unwrap(), 1e-4));
        let column: Vec<f64> = theirs["projections"].as_array().unwrap().iter().map(|p| p[c].as_f64().unwrap()).collect();
        let sign = if (f64::from(pca.projections[0][c]) * column[0]) < 0.0 { -1.0 } else { 1.0 };
        for (ours, theirs) in pca.projections.iter().zip(&column) {
            assert!(close(sign * f64::from(ours[c]), *theirs, 1e-3), "PC{} {} vs {theirs}", c + 1, ours[c]);
        }
    }

    // Static: gensim's vector (the same for every sentence) and nearest neighbours.
    let Side::Ready(stats) = &app.analysis.engines[1] else { panic!("static side not ready") };
    let gensim: Vec<f64> = reference["static"]["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let vectors = app.layer_vectors(1, 0);
    assert_eq!(vectors.len(), 9);
    for v in vectors {
        assert!(v.iter().zip(&gensim).all(|(a, b)| close(f64::from(*a), *b, 1e-5)));
    }
    assert!(stats[0].matrix.iter().flatten().all(|c| close(f64::from(*c), 1.0, 1e-6)));
    let ours = app.static_neighbours().unwrap().as_ref().unwrap();
    let theirs = reference["static"]["neighbours"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(a.word, b["word"].as_str().unwrap());
        assert!(close(f64::from(a.cosine), b["cosine"].as_f64().unwrap(), 1e-5));
    }

    // What the screen prints is those numbers: the last layer's mean, S1's heatmap row and
    // S1's drift in the vector pane.
    let last = &reference["contextual"]["mean"][6];
    let text = screen(&app);
    let mean = last["mean_similarity"].as_f64().unwrap();
    assert!(text.contains(&format!("mean {mean:.3}")), "mean {mean:.3} not on screen:\n{text}");
    let theme = Theme { color: true };
    // At this size (one heatmap: the static one is all 1.00) a cell is a blank and five characters.
    let row: String = last["matrix"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!(" {}", theme.heat_text(v.as_f64().unwrap() as f32, 5)))
        .collect();
    assert!(text.contains(&format!("S1 {row}")), "S1 row {row:?} not on screen:\n{text}");
    let drift = last["cosine_to_rest"][0].as_f64().unwrap();
    assert!(text.contains(&format!("all-MiniLM-L6-v2 · cos to the others' mean {drift:.3} · layer 6")), "drift {drift:.3} not on screen:\n{text}");
    assert!(text.contains("glove.6B.50d.100k.fifu · cos to the others' mean 1.000"), "the static drift not on screen:\n{text}");

    // The neighbours pane ranks the others by those cosines.
    let expected: Vec<usize> = {
        let row: Vec<f64> = last["matrix"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let mut order: Vec<usize> = (1..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        order
    };
    let ours: Vec<usize> = neighbours::nearest(&app, 0).into_iter().map(|(j, _)| j).collect();
    assert_eq!(ours, expected);
}

#[test]
fn every_pane_at_80x24() {
    let mut app = bank_app(80, 24, true);
    for pane in PANES {
        key(&mut app, KeyCode::Char(char::from(b'1' + pane.index() as u8)));
        assert_eq!(app.tab, pane);
        insta::assert_snapshot!(format!("80x24_{}", pane.title().to_lowercase()), screen(&app));
    }
}

#[test]
fn all_panes_at_160x48() {
    let mut app = bank_app(160, 48, true);
    insta::assert_snapshot!("160x48", screen(&app));
    // A sentence without the word is listed with the reason and left out of the numbers.
    key(&mut app, KeyCode::Char('a'));
    for c in "The river was calm.".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Left);
    insta::assert_snapshot!("160x48_layer5_without_word", screen(&app));
}

#[test]
fn help_lists_every_key_at_80x24() {
    let mut app = bank_app(80, 24, true);
    key(&mut app, KeyCode::Char('?'));
    let text = screen(&app);
    for (keys, what) in super::commands::help_lines() {
        assert!(text.contains(keys) && text.contains(what), "{keys} {what} not in\n{text}");
    }
    insta::assert_snapshot!("80x24_help", text);
}

#[test]
fn loading_and_too_small_screens() {
    let app = App::new(bank_start(true), Rect::new(0, 0, 80, 24));
    insta::assert_snapshot!("80x24_loading", screen(&app));
    let small = bank_app(50, 12, true);
    let text = screen(&small);
    assert!(text.contains("at least 60x16") && text.contains("50x12"), "{text}");
}

#[test]
fn no_color_means_no_colour_anywhere() {
    for (width, height) in [(80, 24), (160, 48)] {
        let mut app = bank_app(width, height, false);
        for pane in [Pane::Similarity, Pane::Projection, Pane::Vector] {
            app.tab = pane;
            let terminal = draw(&app);
            let buffer = terminal.backend().buffer();
            for cell in buffer.content() {
                assert!(cell.fg == Color::Reset && cell.bg == Color::Reset, "{cell:?} at {width}x{height}");
            }
        }
        // Without colour the heatmap still reads: the values are printed.
        assert!(screen(&app).contains("S1 "));
    }
    let coloured = draw(&bank_app(160, 48, true));
    assert!(coloured.backend().buffer().content().iter().any(|c| matches!(c.bg, Color::Rgb(..))));
}

#[test]
fn the_worker_serves_waiting_jobs_before_background_ones() {
    use std::sync::mpsc;
    use vecshift::{Embedder, Occurrence};

    use super::worker::{self, Request};

    let (replies, inbox) = mpsc::channel();
    let load: worker::Loader =
        Box::new(|| Engines::of(vec![BertEncoder::load_default()?.into(), StaticEngine::open_default()?.into()]));
    let jobs = worker::spawn(load, move |r| {
        let _ = replies.send(r);
    });
    let Response::Loaded(Ok(info)) = inbox.recv().unwrap() else { panic!("the models did not load") };
    assert_eq!(info.engines[0].layers, 7);
    let many: Vec<Occurrence> =
        (0..80).map(|i| Occurrence::find("bank", &format!("Bank number {i} is by the river.")).unwrap()).collect();
    let one = Occurrence::find("bank", "The bank approved my loan.").unwrap();
    jobs.send(Request::Encode { engine: 0, occurrences: many, pooling: Pooling::First, prefetch: true }).unwrap();
    jobs.send(Request::Encode { engine: 0, occurrences: vec![one.clone()], pooling: Pooling::Mean, prefetch: false }).unwrap();
    let mut order = Vec::new();
    let mut waited_for = None;
    while order.iter().map(|(_, n)| n).sum::<usize>() < 81 {
        let Response::Encoded { pooling, results, .. } = inbox.recv().unwrap() else { panic!("not an encoding") };
        assert!(results.iter().all(|(_, r)| r.as_ref().is_ok_and(|e| e.vectors.num_layers() == 7)));
        if pooling == Pooling::Mean {
            waited_for = Some(results[0].1.clone().unwrap().vectors);
        }
        order.push((pooling, results.len()));
    }
    let position = order.iter().position(|(p, _)| *p == Pooling::Mean).unwrap();
    assert!(position < order.len() - 1, "the waiting job came after all of the background one: {order:?}");
    // Switching the pooling in between left each job its own: the same vectors as the library's.
    let direct: Vec<_> = BertEncoder::load_default().unwrap().embed_batch(&[one], Pooling::Mean).unwrap().into_iter().map(|r| r.unwrap().vectors).collect();
    for (a, b) in waited_for.unwrap().layers().iter().zip(direct[0].layers()) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5));
    }
}

/// The bank example on the three engines, everything encoded.
fn three_engine_app(width: u16, height: u16) -> App {
    let mut app = App::new(bank_start(true), Rect::new(0, 0, width, height));
    let info = three_engines().lock().unwrap().info();
    let effects = app.update(Msg::Worker(Response::Loaded(Ok(info))));
    settle_with(three_engines(), &mut app, effects);
    assert!(!app.busy());
    app
}

fn press_with(app: &mut App, code: KeyCode) {
    let effects = app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    settle_with(three_engines(), app, effects);
}

#[test]
fn three_engines_each_get_a_heatmap_a_curve_and_the_selection() {
    let mut app = three_engine_app(80, 24);
    let names: Vec<&str> = app.engines().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["all-MiniLM-L6-v2", "tiny", "glove.6B.50d.100k.fifu"]);
    // One depth for all: MiniLM's last layer (6) is tiny's last (2); the static engine has one.
    assert_eq!((app.layer(), app.layer_of(1), app.layer_of(2)), (6, 2, 0));
    key_with(&mut app, KeyCode::Left);
    key_with(&mut app, KeyCode::Left);
    assert_eq!((app.layer(), app.layer_of(1)), (4, 1), "depth 4/6 is tiny's layer 1 of 0-2");

    // 80x24: both contextual heatmaps side by side (9 columns each still print values), the
    // static one collapsed into one line.
    let similarity = panes::similarity::view(&app);
    assert_eq!(similarity.maps.iter().map(|m| m.engine.name.as_str()).collect::<Vec<_>>(), ["all-MiniLM-L6-v2", "tiny"]);
    assert_eq!(similarity.maps.iter().map(|m| m.layer).collect::<Vec<_>>(), [4, 1]);
    assert!(similarity.notes[0].0.starts_with("static glove.6B.50d.100k.fifu: every cosine 1.00"), "{:?}", similarity.notes);
    let text = screen(&app);
    for needle in ["all-MiniLM-L6-v2 · mean", "tiny · layer 1 · mean", "every cosine 1.00", "n engine"] {
        assert!(text.contains(needle), "{needle:?} not on screen:\n{text}");
    }
    // The same at 160x48, every pane at once.
    let effects = app.update(Msg::Resize(160, 48));
    settle_with(three_engines(), &mut app, effects);
    let text = screen(&app);
    for needle in ["tiny · layer 1 · mean", "Layers · mean cosine", "PCA of all-MiniLM-L6-v2 layer 4", "⠤⠤ all-MiniLM-L6-v2", "▄▄ tiny", "•• glove"] {
        assert!(text.contains(needle), "{needle:?} not on screen:\n{text}");
    }

    // The layer chart: every engine on the relative-depth axis, the static one flat.
    let layers = panes::layers::view(&app);
    let depths: Vec<Vec<f64>> = layers.curves.iter().map(|c| c.points.iter().map(|p| p.0).collect()).collect();
    assert_eq!(depths[1], [0.0, 0.5, 1.0]);
    assert_eq!(depths[2], [0.0, 1.0]);
    assert_eq!(layers.curves[2].points[0].1, layers.curves[2].points[1].1);

    // n selects the next engine: the projection, the neighbours and the vector follow it.
    key_with(&mut app, KeyCode::Char('n'));
    assert_eq!(app.engine, 1);
    let text = screen(&app);
    assert!(text.contains("PCA of tiny layer 1"), "{text}");
    let tiny = app.stats_of(1).unwrap();
    let nearest = neighbours::nearest(&app, 0);
    let best = tiny.matrix[0].iter().enumerate().filter(|(j, _)| *j != 0).max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(nearest[0].0, best, "the neighbours are ranked by the selected engine");
    let vector = panes::vector::view(&app);
    assert_eq!(vector.bars.iter().map(|b| b.engine.name.as_str()).collect::<Vec<_>>(), ["tiny", "glove.6B.50d.100k.fifu"]);
    assert_eq!(vector.bars[0].pieces, ["bank"]);
    // N goes back; past the last engine n wraps around.
    key_with(&mut app, KeyCode::Char('N'));
    assert_eq!(app.engine, 0);

    // The models pane: CKA between the engines at their layers (MiniLM 4, tiny 1, GloVe), over
    // every word of the nine sentences that all three have a vector for.
    let models = panes::models::view(&app);
    let Some(Ok((tokens, matrix))) = &models.cka else { panic!("no CKA: {:?}", models.cka) };
    let engines = three_engines().lock().unwrap();
    let occurrences: Vec<vecshift::Occurrence> = app.analysis.rows.iter().map(|&i| app.entries[i].located.clone().unwrap()).collect();
    let glove = StaticEngine::open_default().unwrap();
    let mut words = Vec::new();
    for (i, o) in occurrences.iter().enumerate() {
        let spans = std::iter::once(o.span()).chain(vecshift::engine::context_words(o));
        words.extend(spans.filter(|s| glove.lookup(&o.sentence()[s.clone()]).is_ok()).map(|s| (i, s)));
    }
    assert_eq!(*tokens, words.len());
    assert!(*tokens > 100, "{tokens}");
    let minilm = BertEncoder::load_default().unwrap();
    let vectors = |found: Vec<vecshift::SentenceVectors>, layer: usize| -> Vec<Vec<f32>> {
        words
            .iter()
            .map(|(i, span)| {
                let s = &found[*i];
                let v = if *span == occurrences[*i].span() { &s.target.vectors } else { &s.words.iter().find(|(w, _)| w == span).unwrap().1 };
                v.layer(layer).unwrap().to_vec()
            })
            .collect()
    };
    let in_context = |e: &dyn vecshift::SentenceEmbedder| -> Vec<vecshift::SentenceVectors> {
        e.embed_in_context(&occurrences, Pooling::Mean).unwrap().into_iter().map(Result::unwrap).collect()
    };
    let tiny_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_bert/f32_noprefix");
    let tiny = ContextualEncoder::load(tiny_dir).unwrap();
    let (a, b, c) = (vectors(in_context(&minilm), 4), vectors(in_context(&tiny), 1), vectors(in_context(&glove), 0));
    drop(engines);
    let expected = [[&a, &a], [&a, &b], [&a, &c], [&b, &c]].map(|[x, y]| vecshift::analysis::cka::linear_cka(x, y).unwrap());
    let ours = [matrix[0][0], matrix[0][1], matrix[0][2], matrix[1][2]].map(Option::unwrap);
    for (o, e) in ours.iter().zip(expected) {
        assert!((o - e).abs() < 1e-6, "{ours:?} vs {expected:?}");
    }
    assert_eq!(matrix[1][0], matrix[0][1]);
    let effects = app.update(Msg::Resize(80, 24));
    settle_with(three_engines(), &mut app, effects);
    key_with(&mut app, KeyCode::Char('6'));
    let text = screen(&app);
    for needle in ["Models · CKA over", "E1 all-MiniLM", "E2 tiny L1", "E3 glove", "1.000"] {
        assert!(text.contains(needle), "{needle:?} not on screen:\n{text}");
    }
}

fn key_with(app: &mut App, code: KeyCode) {
    press_with(app, code)
}

#[test]
fn unknown_pieces_are_shown_and_warned_about() {
    let mut app = three_engine_app(160, 48);
    // "b4nk" is one [UNK] for the tiny BERT (no digits in its vocabulary), pieces for MiniLM.
    app.update(Msg::Key(KeyEvent::new(KeyCode::Char('w'), KeyModifiers::NONE)));
    for c in "b4nk".chars() {
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
    }
    press_with(&mut app, KeyCode::Enter);
    press_with(&mut app, KeyCode::Char('a'));
    for c in "The b4nk is open.".chars() {
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
    }
    press_with(&mut app, KeyCode::Enter);
    press_with(&mut app, KeyCode::Char('a'));
    for c in "A b4nk by the river.".chars() {
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
    }
    press_with(&mut app, KeyCode::Enter);
    let minilm = app.vectors(0, app.selected).unwrap().clone();
    assert!(minilm.unknown.is_empty() && minilm.pieces.len() > 1, "{:?}", minilm.pieces);
    let tiny = app.vectors(1, app.selected).unwrap().clone();
    assert_eq!((tiny.pieces.as_slice(), tiny.unknown.as_slice()), (["[UNK]".to_owned()].as_slice(), ["[UNK]".to_owned()].as_slice()));
    key_with(&mut app, KeyCode::Char('n'));
    let text = screen(&app);
    assert!(text.contains("pieces pooled: [UNK]") && text.contains("unknown to the tokenizer: [UNK]"), "{text}");
    key_with(&mut app, KeyCode::Char('N'));
    let text = screen(&app);
    assert!(text.contains(&format!("pieces pooled: {}", minilm.pieces.join(" "))), "{text}");
}

#[test]
fn clusters_colour_the_senses_and_match_scikit_learn() {
    // testdata/make_bank_clusters.py: average link on cosine distances, k by silhouette, ARI.
    let reference: Value = serde_json::from_str(include_str!("testdata/bank_clusters.json")).unwrap();
    let mut app = bank_app(160, 48, true);
    for layer in reference["layers"].as_array().unwrap().iter().rev() {
        assert_eq!(app.layer(), layer["layer"].as_u64().unwrap() as usize);
        let ours = app.analysis.clusters.as_ref().unwrap();
        let labels: Vec<usize> = layer["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as usize).collect();
        assert_eq!((ours.k, &ours.labels), (layer["k"].as_u64().unwrap() as usize, &labels), "layer {}", layer["layer"]);
        assert!(close(ours.silhouette.unwrap(), layer["silhouette"].as_f64().unwrap(), 1e-4), "layer {}", layer["layer"]);
        assert!(close(app.analysis.ari.unwrap(), layer["ari"].as_f64().unwrap(), 1e-9), "layer {}", layer["layer"]);
        key(&mut app, KeyCode::Left);
    }
    // With labels both are shown: the senses colour the points, the legend names k, the
    // silhouette and the ARI, and each sentence carries its cluster.
    key(&mut app, KeyCode::End);
    let last = &reference["layers"][6];
    let note = format!(
        "k = {} clusters, silhouette {:.2} · ARI {:.2} vs the senses",
        last["k"],
        last["silhouette"].as_f64().unwrap(),
        last["ari"].as_f64().unwrap()
    );
    let text = screen(&app);
    assert!(text.contains(&note), "{note:?} not on screen:\n{text}");
    assert!(text.contains("[finance] C1 I need to stop"), "{text}");
    // Without labels the clusters are the groups.
    let mut start = bank_start(true);
    start.rows.iter_mut().for_each(|r| r.sense = None);
    let mut app = App::new(start, Rect::new(0, 0, 160, 48));
    let info = engines().lock().unwrap().info();
    send(&mut app, Msg::Worker(Response::Loaded(Ok(info))));
    let groups = panes::Groups::of(&app);
    let names: Vec<&str> = groups.of_entry.iter().map(|&g| groups.names[g].as_str()).collect();
    let expected: Vec<String> = last["labels"].as_array().unwrap().iter().map(|l| format!("C{}", l.as_u64().unwrap() + 1)).collect();
    assert_eq!(names, expected);
    let text = screen(&app);
    assert!(text.contains("■ C1 1,2,3,5,8") && !text.contains("ARI"), "{text}");
}

#[test]
fn the_selected_occurrence_gets_its_wordnet_synset() {
    use vecshift::analysis::postprocess::Postprocess;
    use vecshift::senses::{self, Assign, SenseInventory, WordNet};
    let mut app = bank_app(160, 48, true);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Left);
    // What `vecshift senses bank --layer 5` guesses for S4, computed by the library directly.
    let wordnet = WordNet::open(wordnet_dir()).unwrap();
    let inventory = SenseInventory::new("bank", wordnet.synsets("bank").unwrap()).unwrap();
    let occurrence = app.entries[3].located.clone().unwrap();
    let bert = BertEncoder::load_default().unwrap();
    let expected = senses::guess_senses(&bert, &vecshift::LayerSelection::Layer(5), Postprocess::None, &inventory, &[occurrence], Assign::Nearest)
        .unwrap()
        .remove(0);
    let Some(Ok(guess)) = app.sense_guess() else { panic!("no guess: {:?}", app.sense_guess()) };
    assert_eq!((&guess.synset, &guess.gloss), (&expected.synset, &expected.gloss));
    assert!(close(f64::from(guess.cosine), f64::from(expected.cosine), 1e-5));
    let text = screen(&app);
    assert!(text.contains(&format!("WordNet: {} (cos {:.2}", expected.synset, expected.cosine)), "{text}");
}

/// Issue 10's redraw number, not a check: what one layer step costs on the UI thread with three
/// engines at 160x48 (every pane on screen): `update` (the projection and the clusters are
/// recomputed; the worker's jobs are left out, they run on their own thread) and the draw into
/// a TestBackend. Run by hand:
/// `cargo test --release --bin vecshift tui::tests::redraw_on_layer_change -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, printed; run by hand"]
fn redraw_on_layer_change() {
    use std::time::{Duration, Instant};
    let mut app = three_engine_app(160, 48);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal.draw(|frame| app.render(frame)).unwrap();
    let (mut updates, mut draws) = (Vec::new(), Vec::new());
    for step in 0..240 {
        let code = if (step / 6) % 2 == 0 { KeyCode::Left } else { KeyCode::Right };
        let start = Instant::now();
        let _jobs = app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        let updated = Instant::now();
        terminal.draw(|frame| app.render(frame)).unwrap();
        updates.push(updated - start);
        draws.push(updated.elapsed());
    }
    let stats = |d: &mut Vec<Duration>| {
        d.sort();
        let mean = d.iter().sum::<Duration>() / d.len() as u32;
        format!("mean {:.2} ms, median {:.2} ms, max {:.2} ms", ms(mean), ms(d[d.len() / 2]), ms(d[d.len() - 1]))
    };
    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }
    println!("layer change, three engines, 160x48: update {}; draw {}", stats(&mut updates), stats(&mut draws));
}

/// Every pairwise cosine the UI holds for `engine` (heatmaps, layer chart, neighbours) against
/// the library's cosines of `vectors` per layer.
fn assert_cosines(app: &App, engine: usize, vectors: &[vecshift::LayerVectors], what: &str) {
    let Side::Ready(ours) = &app.analysis.engines[engine] else { panic!("{what}: not ready: {:?}", app.analysis.engines[engine]) };
    assert_eq!(ours.len(), vectors[0].num_layers(), "{what}");
    for (layer, stats) in ours.iter().enumerate() {
        let theirs = vecshift::cosine_matrix(&vectors.iter().map(|v| v.layers()[layer].clone()).collect::<Vec<_>>());
        assert!(close(f64::from(stats.mean), f64::from(vecshift::mean_off_diagonal(&theirs)), 1e-4), "{what} layer {layer}");
        for (a, b) in stats.matrix.iter().flatten().zip(theirs.iter().flatten()) {
            assert!(close(f64::from(*a), f64::from(*b), 1e-4), "{what} layer {layer}: {a} vs {b}");
        }
    }
}

#[test]
fn the_correction_key_cycles_and_every_cosine_follows_the_library() {
    use vecshift::analysis::postprocess::Postprocess;
    use vecshift::{Embedder, Occurrence};
    let mut app = bank_app(160, 48, true);
    let occurrences: Vec<Occurrence> = app.analysis.rows.iter().map(|&i| app.entries[i].located.clone().unwrap()).collect();
    let raw = BertEncoder::load_default().unwrap().embed_vectors(&occurrences, Pooling::Mean).unwrap();
    assert_cosines(&app, 0, &raw, "none");
    let cycle = [Postprocess::Center, Postprocess::AllButTheTop(1), Postprocess::Whiten, Postprocess::Standardize, Postprocess::None];
    for p in cycle {
        key(&mut app, KeyCode::Char('c'));
        assert_eq!(app.postprocess, p);
        assert!(!app.busy(), "{p}: fitted by the worker");
        // Fitted per layer on the compared occurrences, as `compare --postprocess` fits them
        // (tests/postprocess* check the library against numpy).
        let corrected = p.correct_layers(&raw, &raw).unwrap();
        assert_cosines(&app, 0, &corrected, &p.to_string());
        // The projection and the clusters are taken from the same corrected vectors.
        let layer = app.layer();
        let at: Vec<&[f32]> = corrected.iter().map(|v| &v.layers()[layer][..]).collect();
        let pca = vecshift::pca(&at, 2);
        let ours = app.analysis.projection.as_ref().unwrap();
        for (a, b) in ours.explained_variance_ratio.iter().zip(&pca.explained_variance_ratio) {
            assert!(close(f64::from(*a), f64::from(*b), 1e-4), "{p}: {a} vs {b}");
        }
        assert!(app.analysis.flat(1), "{p}: the static engine is left as it is");
        let text = screen(&app);
        let status = text.lines().last().unwrap();
        assert_eq!(status.contains(&format!("[{p}]")), p != Postprocess::None, "{p}: {status}");
        // The save says which correction its numbers are under.
        let report = super::report::Report::build(&app).unwrap();
        assert_eq!((report.postprocess.as_str(), report.fit.as_deref()), (p.to_string().as_str(), None));
        let layers: Vec<f32> = report.contextual.layers.iter().map(|l| l.mean_similarity).collect();
        let Side::Ready(ours) = &app.analysis.engines[0] else { panic!() };
        assert_eq!(layers, ours.iter().map(|s| s.mean).collect::<Vec<_>>());
        let md = report.markdown();
        assert_eq!(md.contains(&format!("corrected: {p}, fitted per layer on the 9 occurrences")), p != Postprocess::None, "{md}");
    }
}

#[test]
fn a_fit_corpus_is_embedded_and_fitted_on_the_worker() {
    use vecshift::analysis::postprocess::{self, Postprocess};
    use vecshift::{Embedder, Occurrence};
    // The other example sets' sentences, one per line: text that is not about "bank".
    let mut corpus = String::new();
    for set in ["spring", "bass"] {
        for row in sentences::read(&vecshift::source::data_dir().join(format!("sentences/{set}.tsv"))).unwrap() {
            corpus.push_str(&row.text);
            corpus.push('\n');
        }
    }
    let fit_on = postprocess::corpus_occurrences(&corpus, 5000);
    let engines = Mutex::new(Engines::of(vec![BertEncoder::load_default().unwrap().into()]).unwrap().with_fit_corpus(Some(fit_on.clone())));
    let start = Start { postprocess: Postprocess::AllButTheTop(2), fit: Some(format!("corpus.txt ({} occurrences)", fit_on.len())), ..bank_start(true) };
    let mut app = App::new(start, Rect::new(0, 0, 160, 48));
    let info = engines.lock().unwrap().info();
    let effects = app.update(Msg::Worker(Response::Loaded(Ok(info))));
    settle_with(&engines, &mut app, effects);
    assert!(!app.busy());
    let bert = BertEncoder::load_default().unwrap();
    let occurrences: Vec<Occurrence> = app.analysis.rows.iter().map(|&i| app.entries[i].located.clone().unwrap()).collect();
    let raw = bert.embed_vectors(&occurrences, Pooling::Mean).unwrap();
    let corpus_vectors = bert.embed_vectors(&fit_on, Pooling::Mean).unwrap();
    assert_cosines(&app, 0, &Postprocess::AllButTheTop(2).correct_layers(&raw, &corpus_vectors).unwrap(), "all-but-the-top:2 on the corpus");
    let report = super::report::Report::build(&app).unwrap();
    assert_eq!(report.postprocess, "all-but-the-top:2");
    assert_eq!(report.fit, Some(format!("corpus.txt ({} occurrences)", fit_on.len())));
    // The key keeps D and the corpus: all-but-the-top:2 -> whiten, fitted on the corpus.
    let effects = app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE)));
    assert!(app.busy() && screen(&app).contains("fitting whiten per layer on corpus.txt"), "{}", screen(&app));
    settle_with(&engines, &mut app, effects);
    assert_cosines(&app, 0, &Postprocess::Whiten.correct_layers(&raw, &corpus_vectors).unwrap(), "whiten on the corpus");
    for _ in 0..4 {
        let effects = app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE)));
        settle_with(&engines, &mut app, effects);
    }
    assert_eq!(app.postprocess, Postprocess::AllButTheTop(2), "the cycle keeps --postprocess's D");
}

#[test]
fn variants_sit_beside_their_original_with_their_drift_per_layer() {
    use vecshift::compress::Variant;
    use super::worker::Request;
    use vecshift::Occurrence;
    let variant: Variant = "int8".parse().unwrap();
    // As `--variant int8` loads them: the original, then NAME·int8.
    let load = |v: Option<&Variant>| {
        let options = match v {
            Some(v) => LoadOptions::default().name(format!("all-MiniLM-L6-v2·{v}")).variant(v.clone()),
            None => LoadOptions::default().name("all-MiniLM-L6-v2"),
        };
        ContextualEncoder::load_with(vecshift::source::default_bert_dir(), &options).unwrap()
    };
    let loaded = vec![load(None).into(), load(Some(&variant)).into(), StaticEngine::open_default().unwrap().into()];
    let engines = Mutex::new(Engines::of(loaded).unwrap().with_variants(vec![(1, 0, variant.clone())]));
    let mut app = App::new(bank_start(true), Rect::new(0, 0, 160, 48));
    let info = engines.lock().unwrap().info();
    assert_eq!(info.engines[1].variant.as_ref().map(|v| (v.base, v.label.as_str())), Some((0, "int8")));
    assert_eq!(info.engines[0].variant, None);
    let effects = app.update(Msg::Worker(Response::Loaded(Ok(info))));
    settle_with(&engines, &mut app, effects);
    assert!(!app.busy());
    // Side by side: the original's heatmap and the variant's.
    let maps: Vec<usize> = panes::similarity::view(&app).maps.iter().map(|m| m.engine.index).collect();
    assert_eq!(maps, [0, 1]);
    // The drift per layer is the library's (`compress::variant_drift`, checked against numpy in
    // tests/compress.rs) over the compared occurrences.
    let occurrences: Vec<Occurrence> = app.analysis.rows.iter().map(|&i| app.entries[i].located.clone().unwrap()).collect();
    let senses: Vec<Option<String>> = app.analysis.rows.iter().map(|&i| app.entries[i].sense.clone()).collect();
    let expected = vecshift::compress::variant_drift(&load(None), &load(Some(&variant)), &variant, &occurrences, &senses, Pooling::Mean).unwrap();
    let [drift] = &app.analysis.drift[..] else { panic!("{:?}", app.analysis.drift) };
    assert_eq!((drift.engine, drift.base), (1, 0));
    let ours = drift.layers.as_ref().unwrap();
    assert_eq!(ours.len(), expected.layers.len());
    for (a, b) in ours.iter().zip(&expected.layers) {
        assert_eq!(a.layer, b.layer);
        for (x, y) in [(a.drift_mean, b.drift_mean), (a.drift_min, b.drift_min), (a.drift_p5, b.drift_p5)] {
            assert!(close(x, y, 1e-6), "layer {}: {x} vs {y}", a.layer);
        }
    }
    let last = ours.last().unwrap();
    assert!(last.drift_min < last.drift_mean && last.drift_mean < 1.0 - 1e-5, "int8 moves the vectors: {last:?}");
    // The Models pane lists it under the CKA matrix.
    let view = panes::models::view(&app);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal.draw(|frame| panes::models::render(&view, frame, frame.area())).unwrap();
    let text = terminal.backend().to_string();
    let title = format!("drift of E2 {} from E1 {}", app.engines()[1].name, app.engines()[0].name);
    assert!(text.contains(&title) && text.contains(&format!("{:.4}", last.drift_mean)), "{text}");

    // Sizes and speeds: the bytes are the library's, the speed what the worker measured (here
    // the tests' fixed one, see `fixed_speed`), a variant's also relative to its original's.
    use panes::models::Speed;
    let bytes = [load(None).weight_bytes(), load(Some(&variant)).weight_bytes()];
    assert!(bytes[1] < bytes[0], "int8 weights are smaller: {bytes:?}");
    let costs: Vec<(Option<u64>, Speed, Option<usize>)> = view.costs.iter().map(|c| (c.bytes, c.speed.clone(), c.base)).collect();
    assert_eq!(
        costs,
        [(Some(bytes[0]), Speed::Measured(fixed_speed_of(0)), None), (Some(bytes[1]), Speed::Measured(fixed_speed_of(1)), Some(0)), (None, Speed::None, None)]
    );
    let mut terminal = Terminal::new(TestBackend::new(80, 16)).unwrap();
    terminal.draw(|frame| panes::models::render(&panes::models::View { drift: Vec::new(), ..view.clone() }, frame, frame.area())).unwrap();
    insta::assert_snapshot!("80x16_models_variant_costs", terminal.backend().to_string());
    // What the worker measures: the library's tokens/s of each contextual engine over the
    // compared sentences; none for GloVe, which has no tokens.
    let mut measured = None;
    engines.lock().unwrap().handle(Request::Speed { occurrences: occurrences.clone(), pooling: Pooling::Mean }, &mut |r| measured = Some(r));
    let Some(Response::Speed { occurrences: on, result, .. }) = measured else { panic!("no speed: {measured:?}") };
    assert_eq!(on, occurrences);
    assert_eq!(result.len(), 3);
    for speed in &result[..2] {
        let v = speed.clone().unwrap().unwrap();
        assert!(v > 0.0 && v.is_finite(), "{v}");
    }
    assert_eq!(result[2], None);
}

#[test]
fn the_markdown_save_lists_every_engine_as_the_json_does() {
    let app = three_engine_app(160, 48);
    let report = super::report::Report::build(&app).unwrap();
    let names: Vec<&str> = report.engines.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["glove.6B.50d.100k.fifu", "all-MiniLM-L6-v2", "tiny"], "static first, as compare --json");
    let md = report.markdown();
    assert!(md.contains("- contextual: all-MiniLM-L6-v2 (bert, mean pooling)") && md.contains("- contextual: tiny (bert, mean pooling)"), "{md}");
    assert!(md.contains("- static: glove.6B.50d.100k.fifu: one vector for every sentence"), "{md}");
    assert!(md.contains("| layer | glove.6B.50d.100k.fifu | all-MiniLM-L6-v2 | tiny |"), "{md}");
    // Each contextual engine's matrix at its layer on screen (MiniLM's 6 is tiny's 2), with its values.
    for (engine, layer) in [(1, 6), (2, 2)] {
        let heading = format!("## Pairwise cosines at layer {layer} ({})", app.engines()[engine - 1].name);
        assert!(md.contains(&heading), "{heading} not in\n{md}");
        let row = &app.stats_of(engine - 1).unwrap().matrix[0];
        let s1: String = row.iter().map(|v| format!(" {v:.3} |")).collect();
        assert!(md.contains(&format!("| S1 |{s1}")), "{s1} not in\n{md}");
    }
    // Tiny has 3 layers: its column is empty below them; the static mean fills every row.
    assert!(md.lines().any(|l| l.starts_with("| 5 |") && l.ends_with(" |  |")), "{md}");
}
