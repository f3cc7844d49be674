//! Sense discovery, corrections, WordNet and WSD against the scikit-learn / numpy / NLTK
//! references written by tests/fixtures/senses/make_reference.py and data/wordnet/make_extract.py.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use vecshift::analysis::postprocess::Postprocess;
use vecshift::eval::wsd::{self, WsdOptions, WsdSet, WsdWord};
use vecshift::senses::cluster::{self, Method};
use vecshift::senses::{SenseInventory, SenseSource, WordNet};
use vecshift::{Embedder, EngineKind, LayerVectors, Occurrence, cosine};

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/senses/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(value: &Value) -> Vec<Vec<f32>> {
    value.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()).collect()
}

fn labels(value: &Value) -> Vec<usize> {
    value.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
}

#[test]
fn clustering_matches_sklearn() {
    let reference = reference();
    for set in reference["sets"].as_array().unwrap() {
        let name = set["name"].as_str().unwrap();
        let vectors = matrix(&set["vectors"]);
        let distances = cluster::cosine_distances(&vectors);
        for split in set["splits"].as_array().unwrap() {
            let k = split["k"].as_u64().unwrap() as usize;
            let average = cluster::agglomerative(&distances, k);
            assert_eq!(average, cluster::canonical(labels(&split["average"])), "{name} average k={k}");
            assert_eq!(cluster::farthest_first(&vectors, k), labels(&split["kmeans_init"]), "{name} init k={k}");
            let kmeans = cluster::kmeans(&vectors, k);
            assert_eq!(kmeans, cluster::canonical(labels(&split["kmeans"])), "{name} kmeans k={k}");
            for (method, ours) in [("average", &average), ("kmeans", &kmeans)] {
                let expected = split[format!("silhouette_{method}")].as_f64();
                let ours = cluster::silhouette(&distances, ours);
                match expected {
                    Some(e) => close(ours.unwrap(), e, 1e-5, &format!("{name} silhouette {method} k={k}")),
                    None => assert_eq!(ours, None),
                }
            }
            close(cluster::adjusted_rand_index(&average, &kmeans), split["ari_average_kmeans"].as_f64().unwrap(), 1e-12, name);
        }
        for (method, key) in [(Method::Average, "average"), (Method::KMeans, "kmeans")] {
            let chosen = cluster::choose_k(&vectors, method, reference["max_k"].as_u64().unwrap() as usize);
            let expected = &set["chosen"][key];
            assert_eq!(chosen.k, expected["k"].as_u64().unwrap() as usize, "{name} {key}: k");
            close(chosen.silhouette.unwrap(), expected["silhouette"].as_f64().unwrap(), 1e-5, &format!("{name} {key}: silhouette"));
            if chosen.k == 1 {
                assert!(chosen.labels.iter().all(|&l| l == 0));
            }
        }
    }
    assert_eq!(reference["min_silhouette"].as_f64().unwrap(), cluster::MIN_SILHOUETTE);
}

#[test]
fn adjusted_rand_index_matches_sklearn() {
    for case in reference()["ari"].as_array().unwrap() {
        let a = labels(&case["a"]);
        let b: Vec<&str> = case["b"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
        close(cluster::adjusted_rand_index(&a, &b), case["ari"].as_f64().unwrap(), 1e-12, "ari");
    }
}

#[test]
fn corrections_match_numpy() {
    let reference = reference();
    for set in reference["sets"].as_array().unwrap() {
        let name = set["name"].as_str().unwrap();
        let vectors = matrix(&set["vectors"]);
        let d = set["postprocess_d"].as_u64().unwrap() as usize;
        for (how, key) in [(Postprocess::Center, "center"), (Postprocess::AllButTheTop(d), "abtt"), (Postprocess::Standardize, "standardize")] {
            let ours = how.fit(&vectors).unwrap().apply_all(&vectors);
            for (row, expected) in ours.iter().zip(matrix(&set["postprocess"][key])) {
                for (a, b) in row.iter().zip(&expected) {
                    close(f64::from(*a), f64::from(*b), 2e-4, &format!("{name} {key}"));
                }
            }
        }
        // Whitening is defined up to a rotation of the output: compare what cosines see.
        let ours = Postprocess::Whiten.fit(&vectors).unwrap().apply_all(&vectors);
        let expected = matrix(&set["postprocess"]["whiten"]);
        assert_eq!(ours[0].len(), expected[0].len(), "{name}: kept directions");
        for i in 0..ours.len() {
            for j in 0..ours.len() {
                close(f64::from(cosine(&ours[i], &ours[j])), f64::from(cosine(&expected[i], &expected[j])), 1e-4, &format!("{name} whiten"));
            }
        }
        // The raw vectors are left alone by `none`.
        assert_eq!(Postprocess::None.fit(&vectors).unwrap().apply_all(&vectors), vectors);
    }
    assert!(Postprocess::Whiten.fit(&[vec![1.0f32, 2.0]]).is_err(), "one vector cannot be fitted on");
}

/// An engine that looks each occurrence's vector up by its sentence.
struct Lookup(HashMap<String, Vec<f32>>);

impl Embedder for Lookup {
    fn name(&self) -> &str {
        "lookup"
    }
    fn dims(&self) -> usize {
        8
    }
    fn num_layers(&self) -> usize {
        1
    }
    fn kind(&self) -> EngineKind {
        EngineKind::Contextual
    }
    fn architecture(&self) -> &str {
        "lookup"
    }
    fn embed_batch(&self, occurrences: &[Occurrence], _: vecshift::Pooling) -> vecshift::Result<Vec<vecshift::Result<vecshift::Embedding>>> {
        Ok(occurrences
            .iter()
            .map(|o| vecshift::Embedding::new(LayerVectors::new(vec![self.0[o.sentence()].clone()]), vec![o.word().to_owned()]))
            .map(Ok)
            .collect())
    }
}

#[test]
fn wsd_matches_sklearn_nearest_neighbour() {
    let reference = reference();
    let mut table = HashMap::new();
    let mut words = Vec::new();
    let split = |items: &Value, table: &mut HashMap<String, Vec<f32>>| -> Vec<(Occurrence, String)> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let sentence = t["sentence"].as_str().unwrap();
                table.insert(sentence.to_owned(), t["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect());
                (Occurrence::find("occurrence", sentence).unwrap(), t["sense"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    for w in reference["wsd"].as_array().unwrap() {
        let train = split(&w["train"], &mut table);
        let test = split(&w["test"], &mut table);
        words.push(WsdWord { word: w["word"].as_str().unwrap().to_owned(), train, test });
    }
    let set = WsdSet { source: "toy".into(), words };
    let result = wsd::evaluate(&Lookup(table), &set, &WsdOptions::default()).unwrap();
    let mut correct = 0.0;
    let mut majority = 0.0;
    for (ours, expected) in result.words.iter().zip(reference["wsd"].as_array().unwrap()) {
        let layer = &ours.layers[0];
        close(layer.accuracy, expected["nearest"]["accuracy"].as_f64().unwrap(), 1e-12, "1-NN accuracy");
        close(layer.macro_f1, expected["nearest"]["macro_f1"].as_f64().unwrap(), 1e-12, "1-NN macro-F1");
        close(layer.centroid_accuracy, expected["centroid"]["accuracy"].as_f64().unwrap(), 1e-12, "centroid accuracy");
        close(layer.centroid_macro_f1, expected["centroid"]["macro_f1"].as_f64().unwrap(), 1e-12, "centroid macro-F1");
        close(ours.majority_baseline, expected["majority"]["accuracy"].as_f64().unwrap(), 1e-12, "majority");
        correct += layer.accuracy * ours.n_test as f64;
        majority += ours.majority_baseline * ours.n_test as f64;
    }
    let n: usize = result.words.iter().map(|w| w.n_test).sum();
    close(result.layers[0].accuracy, correct / n as f64, 1e-12, "micro accuracy over words");
    close(result.majority_baseline, majority / n as f64, 1e-12, "majority over words");
}

fn fixture_wordnet() -> WordNet {
    WordNet::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wordnet")).unwrap()
}

#[test]
fn wordnet_synsets_match_nltk() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wordnet/reference.json");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let wordnet = fixture_wordnet();
    for (word, expected) in reference.as_object().unwrap() {
        let synsets = wordnet.synsets(word).unwrap();
        let expected = expected.as_array().unwrap();
        assert_eq!(synsets.len(), expected.len(), "{word}");
        for (s, e) in synsets.iter().zip(expected) {
            assert_eq!(s.name, e["name"].as_str().unwrap());
            assert_eq!(u64::from(s.offset), e["offset"].as_u64().unwrap(), "{}", s.name);
            assert_eq!(s.pos.to_string(), e["pos"].as_str().unwrap(), "{}", s.name);
            let lemmas: Vec<&str> = e["lemmas"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
            assert_eq!(s.lemmas, lemmas, "{}", s.name);
            assert_eq!(s.definition, e["definition"].as_str().unwrap(), "{}", s.name);
            let examples: Vec<&str> = e["examples"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
            assert_eq!(s.examples, examples, "{}", s.name);
        }
    }
    assert_eq!(wordnet.synsets("River Bank").unwrap(), wordnet.synsets("river_bank").unwrap());
    assert!(wordnet.synsets("qwertyuiop").unwrap().is_empty());
    let err = WordNet::open(env!("CARGO_MANIFEST_DIR")).unwrap_err().to_string();
    assert!(err.contains("index.noun") && err.contains("wordnet-base"), "{err}");
}

#[test]
fn inventory_uses_examples_with_the_word_else_the_definition() {
    let synsets = fixture_wordnet().synsets("bank").unwrap();
    let inventory = SenseInventory::new("bank", synsets.clone()).unwrap();
    for (sense, synset) in inventory.senses.iter().zip(&synsets) {
        match sense.source {
            SenseSource::Examples => {
                assert!(!sense.occurrences.is_empty());
                for o in &sense.occurrences {
                    assert!(synset.examples.iter().any(|e| e == o.sentence()));
                    assert!(o.word().to_lowercase().starts_with("bank"), "{:?}", o.word());
                }
            }
            SenseSource::Gloss => {
                assert!(!synset.examples.iter().any(|e| Occurrence::find("bank", e).is_ok()));
                assert_eq!(sense.occurrences[0].sentence(), format!("bank: {}", synset.definition));
                assert_eq!(sense.occurrences[0].word(), "bank");
            }
        }
    }
    assert_eq!(inventory.with_examples(), inventory.senses.iter().filter(|s| s.source == SenseSource::Examples).count());
    assert!(inventory.with_examples() > 0 && inventory.with_examples() < synsets.len());
    assert!(SenseInventory::new("qwertyuiop", Vec::new()).is_err());
}

#[test]
fn bundled_extract_agrees_with_the_fixture() {
    // data/wordnet is cut by the same script; its lines are not at their byte offsets, so this
    // also exercises the search fallback.
    let bundled = WordNet::open(vecshift::source::data_dir().join("wordnet")).unwrap();
    assert_eq!(bundled.synsets("bank").unwrap(), fixture_wordnet().synsets("bank").unwrap());
    for word in ["bark", "bass", "bat", "cell", "crane", "match", "mouse", "pitch", "plant", "seal", "spring"] {
        assert!(!bundled.synsets(word).unwrap().is_empty(), "{word}");
    }
}

#[test]
fn bundled_wsd_set_reads_and_bad_files_are_named() {
    let set = WsdSet::read_dir(&vecshift::source::data_dir().join("wsd")).unwrap();
    assert_eq!(set.words.len(), 12);
    for w in &set.words {
        for (o, _) in w.train.iter().chain(&w.test) {
            assert!(o.word().to_lowercase().starts_with(&w.word), "{}: {:?} in {:?}", w.word, o.word(), o.sentence());
        }
        // One test sentence per sense, the rest for training.
        let mut test_senses: Vec<&str> = w.test.iter().map(|(_, s)| s.as_str()).collect();
        test_senses.sort_unstable();
        test_senses.dedup();
        assert_eq!(test_senses.len(), w.test.len(), "{}", w.word);
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.txt");
    let gold = dir.path().join("g.txt");
    std::fs::write(&data, "1\tThe (bank), closed.\n9\tToo short.\n").unwrap();
    std::fs::write(&gold, "finance\nriver\n").unwrap();
    let err = WsdSet::read_files(&data, &gold, &data, &gold).unwrap_err().to_string();
    assert!(err.contains("d.txt line 2") && err.contains("token index 9"), "{err}");
    std::fs::write(&data, "1\tThe (bank), closed.\n").unwrap();
    let err = WsdSet::read_files(&data, &gold, &data, &gold).unwrap_err().to_string();
    assert!(err.contains("has 1 lines but") && err.contains("g.txt"), "{err}");
    std::fs::write(&gold, "finance\n").unwrap();
    let set = WsdSet::read_files(&data, &gold, &data, &gold).unwrap();
    assert_eq!(set.words[0].word, "bank");
    assert_eq!(set.words[0].test[0].0.word(), "bank", "punctuation around the token is left out");
}
