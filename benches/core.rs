//! Hot paths of the core: static lookup, top-10 neighbours, BERT encoding batched vs one by one.
//!
//! `cargo bench --bench core`. The full 400k-word GloVe is benchmarked too when
//! `python3 data/fetch_data.py --full-glove` has written `data/cache/glove.6B.50d.fifu`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use vecshift::{BertEncoder, Embedder, Occurrence, Pooling, StaticEngine, VectorFormat};

const WORDS: [&str; 8] = ["bank", "river", "money", "spring", "crane", "mouse", "plant", "music"];

fn static_engine(c: &mut Criterion) {
    let mut engines = vec![("glove-100k", StaticEngine::open_default().unwrap())];
    let full = vecshift::source::data_dir().join("cache/glove.6B.50d.fifu");
    if full.exists() {
        engines.push(("glove-400k", StaticEngine::open_with(&full, &vecshift::OpenOptions::default().format(VectorFormat::Finalfusion)).unwrap()));
    }
    let mut group = c.benchmark_group("static");
    group.bench_function("lookup", |b| {
        b.iter(|| WORDS.iter().map(|w| black_box(engines[0].1.lookup(w).unwrap()).vector.len()).sum::<usize>())
    });
    for (name, engine) in &engines {
        group.bench_with_input(BenchmarkId::new("top10", name), engine, |b, engine| {
            b.iter(|| black_box(engine.neighbors("bank", 10).unwrap()))
        });
    }
    group.bench_function("open-mmap-100k", |b| b.iter(|| black_box(StaticEngine::open_default().unwrap())));
    group.finish();
}

fn bert(c: &mut Criterion) {
    let bert = BertEncoder::load_default().unwrap();
    let sentences_file = vecshift::source::data_dir().join("sentences");
    let mut occurrences = Vec::new();
    for entry in std::fs::read_dir(sentences_file).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tsv") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let mut fields = line.split('\t');
                let (word, sentence) = (fields.next().unwrap(), fields.next().unwrap());
                occurrences.push(Occurrence::find(word, sentence).unwrap());
            }
        }
    }
    occurrences.truncate(32);
    let mut group = c.benchmark_group("bert-32-sentences");
    group.sample_size(10);
    group.bench_function("batched", |b| b.iter(|| black_box(bert.embed_batch(&occurrences, Pooling::Mean).unwrap())));
    group.bench_function("one-by-one", |b| {
        b.iter(|| occurrences.iter().for_each(|o| { black_box(bert.embed(o, Pooling::Mean).unwrap()); }))
    });
    group.finish();
}

criterion_group!(benches, static_engine, bert);
criterion_main!(benches);
