# Rerun (from the repository root):
#   python3 src/tui/testdata/make_bank_clusters.py
# pip packages used: torch==2.15.0 transformers==5.24.0 numpy==2.4.6 scikit-learn
"""Reference clusters for the terminal UI's sense colouring on data/sentences/bank.tsv.

The embedded all-MiniLM-L6-v2 in Hugging Face transformers, "bank" mean-pooled over its
WordPieces, every hidden state, exactly as make_bank_reference.py computes them. Per layer, scikit-learn's AgglomerativeClustering(metric="cosine",
linkage="average") for k = 2..8, the k with the best silhouette_score(metric="cosine") (the
smallest k among equals), k = 1 when that is below 0.25 (the rule of vecshift::senses::cluster,
restated here), and adjusted_rand_score against the file's sense labels.

Output: src/tui/testdata/bank_clusters.json.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score, silhouette_score

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
OUT = HERE / "bank_clusters.json"
MIN_SILHOUETTE = 0.25
MAX_K = 8

# The vectors exactly as make_bank_reference.py pools them.
spec = importlib.util.spec_from_file_location("bank_reference", HERE / "make_bank_reference.py")
bank_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bank_reference)


def canonical(labels):
    """Clusters numbered in order of first appearance, as vecshift numbers them."""
    seen = {}
    return [seen.setdefault(int(label), len(seen)) for label in labels]


def choose_k(x):
    best = None
    for k in range(2, min(MAX_K, len(x) - 1) + 1):
        labels = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(x)
        s = float(silhouette_score(x, labels, metric="cosine"))
        if best is None or s > best[0]:
            best = (s, k, labels)
    if best is None or best[0] < MIN_SILHOUETTE:
        return {"k": 1, "labels": [0] * len(x), "silhouette": None if best is None else best[0]}
    return {"k": best[1], "labels": canonical(best[2]), "silhouette": best[0]}


def main():
    rows = bank_reference.bank_rows()
    v = np.stack(bank_reference.pooled_vectors(rows)["mean"])  # (sentences, layers, dims)
    senses = [r[2] for r in rows]
    layers = []
    for layer in range(v.shape[1]):
        c = choose_k(v[:, layer])
        c["layer"] = layer
        c["ari"] = float(adjusted_rand_score(senses, c["labels"]))
        layers.append(c)
    out = {"generator": "python3 src/tui/testdata/make_bank_clusters.py", "sklearn": sklearn.__version__, "layers": layers}
    OUT.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
