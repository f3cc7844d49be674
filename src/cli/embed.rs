//! `vecshift embed`: the static vector and every BERT layer's vector of one occurrence.

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use vecshift::Embedder;

use super::GlobalArgs;
use super::output::{LocateArgs, clip, fmt_cos, preview, print_json_as};

/// Arguments of `embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The target word.
    #[arg(long, short)]
    word: String,
    /// The sentence the word occurs in.
    #[arg(long, short)]
    sentence: String,
    #[command(flatten)]
    locate: LocateArgs,
    /// Indent the --json output for reading (default: one compact line).
    #[arg(long, requires = "json", help_heading = "Output options")]
    pretty: bool,
    #[command(flatten)]
    pub bert: super::BertArgs,
    #[command(flatten)]
    pub vectors: super::VectorArgs,
    #[command(flatten)]
    pub json: super::JsonArgs,
}

#[derive(Serialize)]
struct StaticJson {
    model: String,
    dims: usize,
    entry: String,
    lookup: vecshift::LookupSource,
    vector: Vec<f32>,
}

#[derive(Serialize)]
struct ContextualJson {
    model: String,
    dims: usize,
    pooling: vecshift::Pooling,
    /// The word's pieces that were pooled.
    pieces: Vec<String>,
    layers: Vec<Vec<f32>>,
}

#[derive(Serialize)]
struct EmbedJson<'a> {
    word: &'a str,
    sentence: &'a str,
    span: [usize; 2],
    #[serde(rename = "static")]
    static_: Option<StaticJson>,
    contextual: ContextualJson,
    /// Every engine, static ones first, each in the order given.
    engines: Vec<EngineJson>,
}

#[derive(Serialize)]
struct EngineJson {
    name: String,
    kind: vecshift::EngineKind,
    /// What was pooled: the word's pieces (contextual) or the vocabulary entry (static).
    pieces: Vec<String>,
    layers: Vec<Vec<f32>>,
}

pub fn run(global: &GlobalArgs, args: EmbedArgs) -> Result<()> {
    let occurrence = args.locate.occurrence(&args.sentence, &args.word)?;
    let statics = global.load_static_engines()?;
    let contextuals = global.load_contextual_engines()?;
    let glove = &statics[0];
    let bert = &contextuals[0];

    // The word as written in the sentence, so "Bank" finds "bank" through the lowercase fallback.
    let static_ = match glove.lookup(occurrence.word()) {
        Ok(found) => Some(StaticJson { model: glove.name().into(), dims: glove.dims(), entry: found.word, lookup: found.source, vector: found.vector }),
        Err(e) => {
            log::warn!("{e}; the static vector is left out");
            None
        }
    };
    let mut engines = Vec::new();
    for engine in statics.iter().map(|e| e as &dyn Embedder).chain(contextuals.iter().map(|e| e as &dyn Embedder)) {
        match engine.embed(&occurrence, global.pooling_for(engine)) {
            Ok(found) => {
                super::output::warn_about_embedding(engine, &found, &occurrence, "the sentence");
                engines.push(EngineJson {
                    name: engine.name().into(),
                    kind: engine.kind(),
                    pieces: found.pieces,
                    layers: found.vectors.into_inner(),
                });
            }
            // The first static engine's miss was reported with its lookup above.
            Err(_) if engine.kind() == vecshift::EngineKind::Static && engine.name() == glove.name() => {}
            Err(e) if engine.kind() == vecshift::EngineKind::Static => log::warn!("{e}; {} is left out", engine.name()),
            Err(e) => return Err(e).with_context(|| format!("embedding with {}", engine.name())),
        }
    }
    let first_contextual = engines.iter().find(|e| e.kind == vecshift::EngineKind::Contextual).expect("one contextual engine");
    let pooling = global.pooling_for(bert);
    let out = EmbedJson {
        word: occurrence.word(),
        sentence: occurrence.sentence(),
        span: [occurrence.span().start, occurrence.span().end],
        static_,
        contextual: ContextualJson {
            model: bert.name().into(),
            dims: bert.dims(),
            pooling,
            pieces: first_contextual.pieces.clone(),
            layers: first_contextual.layers.clone(),
        },
        engines,
    };
    if global.json {
        return print_json_as(&out, args.pretty);
    }

    println!("{:?} at bytes {}..{} of {:?}", out.word, out.span[0], out.span[1], clip(out.sentence, 80));
    match &out.static_ {
        Some(s) => println!("static  {} ({} dims, entry {:?}, {:?}): {}", s.model, s.dims, s.entry, s.lookup, preview(&s.vector, 5)),
        None => println!("static  {}: not in the vocabulary", glove.name()),
    }
    let c = &out.contextual;
    // The architecture, not "BERT", heads the contextual block: it may be GPT-2 or Llama.
    println!("{:<7} {} ({} dims, {} pooling of pieces {:?}); layer 0 = embeddings output", bert.architecture(), c.model, c.dims, c.pooling, c.pieces);
    println!("layer   norm  cos(prev)  first components");
    for (i, layer) in c.layers.iter().enumerate() {
        let norm = layer.iter().map(|v| v * v).sum::<f32>().sqrt();
        let prev = if i == 0 { "    -".to_string() } else { fmt_cos(vecshift::cosine(&c.layers[i - 1], layer)) };
        println!("{i:>5} {norm:6.2}  {prev:>9}  {}", preview(layer, 4));
    }
    for engine in out.engines.iter().filter(|e| e.name != c.model && e.name != glove.name()) {
        let last = engine.layers.last().map(|l| preview(l, 4)).unwrap_or_default();
        println!("{:<7} {} ({} layers, pieces {:?}): last layer {last}", format!("{:?}", engine.kind).to_lowercase(), engine.name, engine.layers.len(), engine.pieces);
    }
    Ok(())
}
