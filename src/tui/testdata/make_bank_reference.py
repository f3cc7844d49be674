# Rerun (from the repository root, after `python3 data/fetch_data.py`, which also leaves the
# GloVe text in data/cache/):
#   python3 src/tui/testdata/make_bank_reference.py
# pip packages used: torch==2.15.0 transformers==5.24.0 numpy==2.4.6 gensim==4.4.0
"""Reference numbers for the terminal UI's panes on data/sentences/bank.tsv.

Contextual: Hugging Face transformers BertModel on the embedded all-MiniLM-L6-v2 (loaded as in
tests/fixtures/bert/make_minilm_reference.py), "bank" pooled (mean/first/last) over the
WordPieces overlapping its first whole-word match, every hidden state (layer 0 = embeddings).
From those, with numpy: pairwise cosine matrices and their mean off-diagonal value per layer,
each sentence's cosine to the mean of the other sentences, and the 2-D PCA (SVD of the centred
vectors) at the last layer.
Static: gensim 4.4 KeyedVectors on the first 100,000 lines of glove.6B.50d.txt (the words of
the embedded finalfusion file): the vector of "bank" and its 10 nearest neighbours.

Output: src/tui/testdata/bank_reference.json.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch
from gensim.models import KeyedVectors

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = HERE / "bank_reference.json"
GLOVE_TXT = REPO / "data" / "cache" / "glove.6B.50d.txt"

spec = importlib.util.spec_from_file_location("minilm", REPO / "tests/fixtures/bert/make_minilm_reference.py")
minilm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(minilm)


def r7(x):
    return float(f"{x:.7g}")


def cosines(vectors):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def mean_off_diagonal(m):
    n = m.shape[0]
    return float(m[np.triu_indices(n, 1)].mean())


def bank_rows():
    return [line.rstrip("\n").split("\t") for line in (REPO / "data/sentences/bank.tsv").open(encoding="utf-8")]


def pooled_vectors(rows):
    """Per pooling, per sentence: the word's vector at every hidden state (layers, dims)."""
    torch.set_num_threads(1)
    model = minilm.load_model()
    tok = minilm.load_tokenizer()
    pooled = {"mean": [], "first": [], "last": []}
    for word, sentence, _sense in rows:
        cstart, cend = minilm.first_whole_word(sentence, word)
        enc = tok(sentence, add_special_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
        idx = [i for i, ((s, e), special) in enumerate(zip(enc["offset_mapping"], enc["special_tokens_mask"]))
               if not special and s < cend and e > cstart]
        ids = enc["input_ids"]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                        token_type_ids=torch.zeros(1, len(ids), dtype=torch.long), output_hidden_states=True)
        hs = torch.stack(out.hidden_states)[:, 0].double().numpy()  # (layers, seq, dims)
        pooled["mean"].append(hs[:, idx].mean(axis=1))
        pooled["first"].append(hs[:, idx[0]])
        pooled["last"].append(hs[:, idx[-1]])
    return pooled


def main():
    rows = bank_rows()
    pooled = pooled_vectors(rows)
    contextual = {}
    for pooling, per_sentence in pooled.items():
        v = np.stack(per_sentence)  # (sentences, layers, dims)
        layers = []
        for layer in range(v.shape[1]):
            m = cosines(v[:, layer])
            rest = [float(np.dot(v[i, layer], v[np.arange(len(v)) != i, layer].mean(axis=0))
                          / np.linalg.norm(v[i, layer]) / np.linalg.norm(v[np.arange(len(v)) != i, layer].mean(axis=0)))
                    for i in range(len(v))]
            layers.append({"layer": layer, "matrix": [[r7(x) for x in row] for row in m],
                           "mean_similarity": r7(mean_off_diagonal(m)),
                           "cosine_to_rest": [r7(x) for x in rest]})
        contextual[pooling] = layers

    last = np.stack(pooled["mean"])[:, -1]
    centred = last - last.mean(axis=0)
    u, s, _vt = np.linalg.svd(centred, full_matrices=False)
    projections = u[:, :2] * s[:2]
    ratios = (s ** 2 / (s ** 2).sum())[:2]

    glove = KeyedVectors.load_word2vec_format(str(GLOVE_TXT), binary=False, no_header=True, limit=100_000)
    neighbours = [{"word": w, "cosine": r7(c)} for w, c in glove.most_similar("bank", topn=10)]

    out = {
        "generator": "python3 src/tui/testdata/make_bank_reference.py",
        "sentences": [r[1] for r in rows],
        "senses": [r[2] for r in rows],
        "contextual": contextual,
        "pca_last_layer_mean": {"projections": [[r7(x) for x in p] for p in projections],
                                "explained_variance_ratio": [r7(x) for x in ratios]},
        "static": {"vector": [r7(x) for x in glove["bank"]], "neighbours": neighbours},
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
