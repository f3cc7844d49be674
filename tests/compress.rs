//! The compression lab against numpy (`tests/fixtures/compress/reference.json`, written by
//! `make_reference.py` there) and on the tiny test BERT: quantizers, pruning, SVD, drift
//! measures, storage round trips and the model-dependent checks of a variant.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use vecshift::compress::{Checkpoint, Variant, checkpoint, drift, quant};
use vecshift::{ContextualEncoder, Embedder, LayerVectors, LoadOptions, Occurrence, Pooling};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("compress/reference.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn ints(v: &Value) -> Vec<i8> {
    floats(v).into_iter().map(|x| x as i8).collect()
}

fn close(got: &[f32], want: &[f64], tolerance: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= tolerance, "{what}[{i}]: {g} vs {w}");
    }
}

fn tiny() -> PathBuf {
    fixtures().join("tiny_bert/f32_noprefix")
}

#[test]
fn quantizers_match_numpy() {
    let k = &reference()["kernels"];
    let cols = k["cols"].as_u64().unwrap() as usize;
    let w: Vec<f32> = floats(&k["weights"]).into_iter().map(|x| x as f32).collect();

    let (q, scales) = quant::int8_sym(&w, cols);
    assert_eq!(q, ints(&k["int8"]["q"]));
    close(&scales, &floats(&k["int8"]["scales"]), 1e-8, "int8 scales");
    close(&quant::dequantize_rows(&q, &scales, None, cols), &floats(&k["int8"]["dequantized"]), 1e-7, "int8 dequantized");

    let (q, scales, zeros) = quant::int8_asym(&w, cols);
    assert_eq!(q, ints(&k["int8_asym"]["q"]));
    assert_eq!(zeros, ints(&k["int8_asym"]["zeros"]));
    close(&scales, &floats(&k["int8_asym"]["scales"]), 1e-8, "int8-asym scales");
    close(&quant::dequantize_rows(&q, &scales, Some(&zeros), cols), &floats(&k["int8_asym"]["dequantized"]), 1e-7, "int8-asym dequantized");

    let group = k["int4"]["group"].as_u64().unwrap() as usize;
    let (q, scales) = quant::int4_groups(&w, group);
    assert_eq!(q, ints(&k["int4"]["q"]));
    close(&scales, &floats(&k["int4"]["scales"]), 1e-8, "int4 scales");
    close(&quant::dequantize_groups(&q, &scales, group), &floats(&k["int4"]["dequantized"]), 1e-7, "int4 dequantized");
    assert_eq!(quant::unpack_int4(&quant::pack_int4(&q, cols), q.len() / cols, cols), q);
}

/// int4's scale search against numpy's f64 run of the same search on a random matrix with
/// outliers and a zero group: the same codes and scales, the same reconstruction error, and less
/// error than the former `max|w|/7` scale.
#[test]
fn int4_scale_search_matches_numpy() {
    let r = &reference()["int4_random"];
    let w: Vec<f32> = floats(&r["weights"]).into_iter().map(|x| x as f32).collect();
    for g in r["groups"].as_array().unwrap() {
        let group = g["group"].as_u64().unwrap() as usize;
        let (q, scales) = quant::int4_groups(&w, group);
        assert_eq!(q, ints(&g["q"]), "g{group} codes");
        close(&scales, &floats(&g["scales"]), 1e-8, &format!("g{group} scales"));
        assert!(q.iter().all(|v| (-8..=7).contains(v)) && q.contains(&-8), "g{group}: the code -8 is used");
        let back = quant::dequantize_groups(&q, &scales, group);
        let error: f64 = w.iter().zip(&back).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        let want = g["squared_error"].as_f64().unwrap();
        assert!((error - want).abs() <= 1e-6 * want, "g{group}: squared error {error} vs numpy {want}");
        assert!(want < g["naive_squared_error"].as_f64().unwrap(), "g{group}: the search beats max|w|/7");
    }
}

#[test]
fn prune_share_and_rank_error_match_numpy() {
    let k = &reference()["kernels"];
    let (rows, cols) = (k["rows"].as_u64().unwrap() as usize, k["cols"].as_u64().unwrap() as usize);
    let w: Vec<f32> = floats(&k["weights"]).into_iter().map(|x| x as f32).collect();

    let mut pruned = w.clone();
    quant::prune_magnitude(&mut pruned, k["prune"]["share"].as_f64().unwrap());
    assert_eq!(pruned.iter().filter(|x| **x == 0.0).count(), k["prune"]["zeros"].as_u64().unwrap() as usize);
    let kept_min = pruned.iter().filter(|x| **x != 0.0).map(|x| x.abs()).fold(f32::INFINITY, f32::min);
    let zeroed_max = w.iter().zip(&pruned).filter(|(_, p)| **p == 0.0).map(|(x, _)| x.abs()).fold(0.0, f32::max);
    assert!(zeroed_max <= kept_min, "the smallest magnitudes go");

    let rank = k["rank"]["rank"].as_u64().unwrap() as usize;
    let (u, v) = checkpoint::truncated_svd(&w, rows, cols, rank);
    let approx = checkpoint::low_rank_product(&u, &v, rows, rank, cols);
    let error = w.iter().zip(&approx).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
    let want = k["rank"]["frobenius_error"].as_f64().unwrap();
    assert!((error - want).abs() < 1e-5 * want.max(1.0), "rank-{rank} error {error} vs numpy {want}");
    // Eckart–Young: the error is the norm of the dropped singular values.
    let dropped: f64 = floats(&k["rank"]["singular_values"])[rank..].iter().map(|s| s * s).sum::<f64>().sqrt();
    assert!((want - dropped).abs() < 1e-9);
}

#[test]
fn drift_matches_numpy() {
    let d = &reference()["drift"];
    let vectors = |key: &str| -> Vec<LayerVectors> {
        d[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|occ| LayerVectors::new(occ.as_array().unwrap().iter().map(|l| floats(l).into_iter().map(|x| x as f32).collect()).collect()))
            .collect()
    };
    let words: Vec<String> = d["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_owned()).collect();
    let senses: Vec<Option<String>> = d["senses"].as_array().unwrap().iter().map(|s| s.as_str().map(str::to_owned)).collect();
    let got = drift::drift(&vectors("base"), &vectors("variant"), &[0, 1, 2], &drift::Labels { words: &words, senses: &senses }).unwrap();
    let want = d["layers"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        let field = |name: &str, value: Option<f64>| {
            let value = value.unwrap_or_else(|| panic!("layer {}: {name} missing", g.layer));
            assert!((value - w[name].as_f64().unwrap()).abs() < 1e-9, "layer {} {name}: {value} vs {}", g.layer, w[name]);
        };
        field("drift_mean", Some(g.drift_mean));
        field("drift_min", Some(g.drift_min));
        field("drift_p5", Some(g.drift_p5));
        field("self_similarity_delta", g.self_similarity_delta);
        field("sense_separation_delta", g.sense_separation_delta);
        field("neighbour_overlap", g.neighbour_overlap);
    }
    // The noise grows with the layer: so does the drift.
    assert!(got[0].drift_mean > got[1].drift_mean && got[1].drift_mean > got[2].drift_mean);
}

fn occurrences() -> Vec<Occurrence> {
    ["the river bank", "a bank loan was made", "he sat on the bank"]
        .iter()
        .map(|s| Occurrence::find("bank", s).unwrap())
        .collect()
}

fn vectors(engine: &ContextualEncoder) -> Vec<LayerVectors> {
    engine.embed_batch(&occurrences(), Pooling::Mean).unwrap().into_iter().map(|r| r.unwrap().vectors).collect()
}

/// A stored variant loads back to the very vectors the in-memory variant gives, and is smaller.
#[test]
fn compressed_directories_load_back_to_the_same_vectors() {
    let original = ContextualEncoder::load(tiny()).unwrap();
    for label in ["int8", "int8-asym", "int4:g16", "rank:4", "f16", "bf16", "prune:0.5", "prune:0.5+int8", "prune:0.2+f16", "prune-neurons:0.25+drop-layers:0"] {
        let variant: Variant = label.parse().unwrap();
        let in_memory = ContextualEncoder::load_with(tiny(), &LoadOptions::default().variant(variant.clone())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut checkpoint = Checkpoint::read(&tiny().join("config.json"), &tiny().join("model.safetensors")).unwrap();
        checkpoint.apply(&variant).unwrap();
        checkpoint.write(dir.path()).unwrap();
        std::fs::copy(tiny().join("tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
        let stored = ContextualEncoder::load(dir.path()).unwrap();
        assert_eq!(stored.variant().map(ToString::to_string).as_deref(), Some(variant.to_string().as_str()), "{label}");
        assert_eq!(vectors(&stored), vectors(&in_memory), "{label}: stored and in-memory variants differ");
        assert_eq!(stored.weight_bytes(), in_memory.weight_bytes(), "{label}");
        let file = dir.path().join("model.safetensors");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), in_memory.weight_bytes(), "{label}: bytes are the file's size");
        if label != "f16" && label != "bf16" && !label.starts_with("rank") {
            assert!(in_memory.weight_bytes() < original.weight_bytes(), "{label}: {} bytes", in_memory.weight_bytes());
        }
        // Pruned weights are stored as a bitmap and the kept values, other tensors densely.
        let bytes = std::fs::read(&file).unwrap();
        let names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes).unwrap().names().into_iter().map(str::to_owned).collect();
        let sparse = names.iter().filter(|n| n.ends_with(".mask")).count();
        assert_eq!(sparse > 0, label.starts_with("prune:"), "{label}: {sparse} sparse tensors");
        if label == "prune:0.5" {
            let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
            let metadata = metadata.metadata().clone().unwrap();
            assert_eq!(metadata["vecshift.original_bytes"], std::fs::metadata(tiny().join("model.safetensors")).unwrap().len().to_string());
            assert!(metadata["vecshift.sparse"].contains("encoder.layer.0.intermediate.dense.weight"), "{metadata:?}");
            assert!(names.contains(&"encoder.layer.0.intermediate.dense.weight.kept".to_owned()), "{names:?}");
            assert!(names.contains(&"embeddings.word_embeddings.weight".to_owned()), "embeddings stay dense");
        }
        let layers = variant.layer_map(original.num_layers() - 1);
        assert_eq!(in_memory.num_layers(), layers.len(), "{label}");
        let d = drift::drift(&vectors(&original), &vectors(&in_memory), &layers, &drift::Labels {
            words: &vec!["bank".to_owned(); 3],
            senses: &[None, None, None],
        })
        .unwrap();
        assert!(d[0].drift_min > 0.999, "{label}: the embeddings are kept");
    }
}

#[test]
fn structural_variants_change_the_config() {
    let mut checkpoint = Checkpoint::read(&tiny().join("config.json"), &tiny().join("model.safetensors")).unwrap();
    checkpoint.apply(&"prune-neurons:0.25+drop-layers:1".parse().unwrap()).unwrap();
    let config: Value = serde_json::from_str(&checkpoint.config_json()).unwrap();
    assert_eq!(config["intermediate_size"], 48, "64 neurons less a quarter");
    assert_eq!(config["num_hidden_layers"], 1);
}

#[test]
fn model_dependent_checks_name_the_valid_range() {
    for (label, needle) in [
        ("rank:33", "rank:1..=32"),
        ("drop-layers:2", "layers 0..=1"),
        ("drop-layers:0,1", "keep at least one"),
        ("int4:g24", "not a multiple of 24"),
    ] {
        let options = LoadOptions::default().variant(label.parse().unwrap());
        let error = ContextualEncoder::load_with(tiny(), &options).err().unwrap_or_else(|| panic!("{label} loaded")).to_string();
        assert!(error.contains(needle), "{label}: {error}");
    }
}


/// `vecshift compress` writes a folder that `--bert` loads, smaller, with the same vectors as
/// `--variant`; `compare --json` reports the drift of each variant.
#[test]
fn compress_then_load_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny-int4");
    let (tiny, out) = (tiny().to_str().unwrap().to_owned(), out.to_str().unwrap().to_owned());
    let written = common::json(&["compress", &tiny, "--variant", "int4:g16", "-o", &out, "--json"]);
    assert!(written["bytes"].as_u64().unwrap() < written["original_bytes"].as_u64().unwrap());
    let glove = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/static/tiny.glove.txt");
    let compare = |extra: &[&str]| {
        let base = ["compare", "-w", "bank", "-s", "the river bank", "-s", "a bank loan", "-s", "the bank is closed", "--vectors", glove, "--json"];
        common::json(&[&base[..], extra].concat())
    };
    let packed = compare(&["--bert", &format!("packed={out}")]);
    let live = compare(&["--bert", &format!("tiny={tiny}"), "--variant", "int4:g16", "--variant", "drop-layers:0"]);
    let contextual = |v: &Value| -> Vec<Value> {
        v["engines"].as_array().unwrap().iter().filter(|e| e["kind"] == "contextual").cloned().collect()
    };
    let engines = contextual(&live);
    let names: Vec<&str> = engines.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["tiny", "tiny·int4:g16", "tiny·drop-layers:0"]);
    assert_eq!(contextual(&packed)[0]["layers"], engines[1]["layers"], "the stored variant gives the live variant's cosines");
    let variants = live["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["base"], "tiny");
    let layers: Vec<u64> = variants[1]["layers"].as_array().unwrap().iter().map(|l| l["layer"].as_u64().unwrap()).collect();
    assert_eq!(layers, [0, 2], "drop-layers:0 keeps the embeddings and the old layer 1 (hidden state 2)");
    assert!(variants[0]["bytes"].as_u64().unwrap() < variants[0]["base_bytes"].as_u64().unwrap());
    for key in ["tokens_per_second", "base_tokens_per_second"] {
        let speed = variants[0][key].as_f64().unwrap();
        assert!(speed > 0.0 && speed.is_finite(), "{key}: {speed}");
    }
    for layer in variants[0]["layers"].as_array().unwrap() {
        let (mean, min) = (layer["drift_mean"].as_f64().unwrap(), layer["drift_min"].as_f64().unwrap());
        assert!(min <= mean && mean <= 1.0 + 1e-9 && mean > 0.5, "{layer}");
    }
}

/// Writes the tensors of every shard of `sharded` into one `model.safetensors` in `dir`, beside
/// the config and tokenizer: the same checkpoint, unsharded.
fn unshard(sharded: &Path, dir: &Path) {
    let files = vecshift::source::weight_files(&sharded.join("model.safetensors.index.json")).unwrap();
    assert!(files.len() > 1);
    let contents: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut tensors = Vec::new();
    for bytes in &contents {
        tensors.extend(safetensors::SafeTensors::deserialize(bytes).unwrap().tensors());
    }
    safetensors::serialize_to_file(tensors, None, &dir.join("model.safetensors")).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(sharded.join(file), dir.join(file)).unwrap();
    }
}

/// A variant of a sharded checkpoint, live or stored by compress, gives the vectors of the same
/// variant of the same weights in one file.
#[test]
fn variants_of_a_sharded_checkpoint_equal_those_of_the_unsharded_one() {
    let sharded = fixtures().join("encoders/xlm-roberta");
    let single = tempfile::tempdir().unwrap();
    unshard(&sharded, single.path());
    for label in ["int8", "int4:g16", "prune:0.4", "rank:0.5+bf16", "prune-neurons:0.25"] {
        let variant: Variant = label.parse().unwrap();
        let options = LoadOptions::default().variant(variant.clone());
        let (of_shards, of_one) = (ContextualEncoder::load_with(&sharded, &options).unwrap(), ContextualEncoder::load_with(single.path(), &options).unwrap());
        assert_eq!(vectors(&of_shards), vectors(&of_one), "{label}");
        assert_eq!(of_shards.weight_bytes(), of_one.weight_bytes(), "{label}");
        let out = tempfile::tempdir().unwrap();
        let mut checkpoint = Checkpoint::read(&sharded.join("config.json"), &sharded.join("model.safetensors.index.json")).unwrap();
        checkpoint.apply(&variant).unwrap();
        checkpoint.write(out.path()).unwrap();
        std::fs::copy(sharded.join("tokenizer.json"), out.path().join("tokenizer.json")).unwrap();
        assert_eq!(vectors(&ContextualEncoder::load(out.path()).unwrap()), vectors(&of_one), "{label}: compressed from the shards");
    }
    let original = ContextualEncoder::load(&sharded).unwrap();
    assert_ne!(vectors(&original), vectors(&ContextualEncoder::load_with(&sharded, &LoadOptions::default().variant("int4:g16".parse().unwrap())).unwrap()));
}
