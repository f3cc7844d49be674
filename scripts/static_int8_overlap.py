#!/usr/bin/env python3
"""Neighbour agreement of an int8 static file (`vecshift convert IN OUT --quantize int8`) with
its f32 original, as the README reports it.

For the N most frequent words (the file's first rows), `vecshift neighbors -k K` on both files:
the mean overlap of the two top-K lists; and whether vecshift's int8 answers equal numpy's exact
top-K over the int8 file's dequantized rows (read with safetensors' numpy loader).

Usage: python3 scripts/static_int8_overlap.py VECSHIFT F32_FILE INT8_FILE [N] [K]
"""

import json
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file

binary, f32_file, int8_file = sys.argv[1:4]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
k = int(sys.argv[5]) if len(sys.argv) > 5 else 10

tensors = load_file(int8_file)
words = bytes(tensors["words"]).decode("utf-8").split("\n")
vectors = tensors["codes"].astype(np.float64) * tensors["scales"].astype(np.float64)[:, None]
norms = np.linalg.norm(vectors, axis=1)
unit = vectors / np.where(norms > 0, norms, 1)[:, None]


def neighbors(path, word):
    out = subprocess.run([binary, "--json", "--vectors", path, "neighbors", "-k", str(k), "--", word],
                         check=True, capture_output=True, text=True).stdout
    return [entry["word"] for entry in json.loads(out)]


overlaps, exact = [], 0
for row in range(n):
    word = words[row]
    a, b = neighbors(f32_file, word), neighbors(int8_file, word)
    overlaps.append(len(set(a) & set(b)) / k)
    cos = unit @ unit[row]
    cos[row] = -np.inf
    cos[norms == 0] = -np.inf
    want = [words[i] for i in sorted(np.argsort(-cos, kind="stable")[: k + 5], key=lambda i: (-cos[i], i))[:k]]
    exact += want == b
print(json.dumps({"words": n, "k": k, "mean_overlap": float(np.mean(overlaps)),
                  "identical_lists": int(sum(o == 1.0 for o in overlaps)),
                  "min_overlap": float(np.min(overlaps)), "int8_equals_numpy_top_k": exact}))
