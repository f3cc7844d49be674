#!/usr/bin/env python3
"""Static cold start, side by side in one run: vecshift opening a finalfusion file (through its
vocabulary index, and without it) and answering a first top-10 query, against gensim's
KeyedVectors.load(..., mmap='r') and its first most_similar(topn=10).

    python benches/static_open.py --glove data/cache/glove.6B.50d.txt \
        --fifu data/cache/glove.6B.50d.fifu [--repeat 15] [--json out.json]

--glove is the 400,000-word GloVe 6B 50d (GloVe text, or word2vec binary with --glove-binary);
--fifu is the same vectors as finalfusion with its index (`vecshift convert`). The embedded
100k file (data/glove-6B-50d/) is compared with gensim holding the first 100,000 words.
"Without index" opens the same file through a symbolic link that has no sidecar, so finalfusion
builds its hash map of the words (vecshift's behaviour before the index).

Each vecshift figure is `vecshift bench neighbors` in a fresh process (its own timers: open,
then the first query); gensim's are timed in this process. Every figure is the median of
--repeat runs after one warm-up; the page cache is warm on both sides. The machine may be
shared: the load average before and after is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "data" / "glove-6B-50d" / "glove.6B.50d.100k.fifu"


def vecshift_open(binary: Path, fifu: Path, words: Path, threads: int) -> tuple[float, float]:
    out = subprocess.run([str(binary), "--json", "--vectors", str(fifu), "bench", "neighbors", "--words", str(words),
                          "-k", "10", "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    return report["load_ms"], report["first_query_ms"]


def median_pairs(fn, repeat: int) -> dict:
    fn()  # warm-up
    runs = [fn() for _ in range(repeat)]
    load = statistics.median(r[0] for r in runs)
    first = statistics.median(r[1] for r in runs)
    ready = statistics.median(r[0] + r[1] for r in runs)
    return {"open_ms": load, "first_query_ms": first, "open_plus_first_ms": ready}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glove", type=Path, default=REPO / "data" / "cache" / "glove.6B.50d.txt")
    ap.add_argument("--glove-binary", action="store_true", help="--glove is word2vec binary, not GloVe text")
    ap.add_argument("--fifu", type=Path, default=REPO / "data" / "cache" / "glove.6B.50d.fifu")
    ap.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "vecshift")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--word", default="bank", help="the first query (default bank)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    for what, path in [("--glove", args.glove), ("--fifu", args.fifu), ("--binary", args.binary)]:
        if not path.exists():
            raise SystemExit(f"error: {what} {path} does not exist")
    if not Path(str(args.fifu) + ".idx").exists():
        raise SystemExit(f"error: {args.fifu}.idx does not exist; run `vecshift index {args.fifu}`")
    from gensim.models import KeyedVectors
    import gensim

    load_before = os.getloadavg()
    results: dict = {"gensim": gensim.__version__, "repeat": args.repeat, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        words = tmp / "words.txt"
        words.write_text(args.word + "\n", encoding="utf-8")
        full = KeyedVectors.load_word2vec_format(str(args.glove), binary=args.glove_binary, no_header=not args.glove_binary)
        for label, rows, fifu in [("100k", 100_000, EMBEDDED), ("400k", len(full), args.fifu)]:
            native = tmp / f"{label}.kv"
            kv = KeyedVectors(full.vector_size)
            kv.add_vectors(full.index_to_key[:rows], full.vectors[:rows])
            kv.save(str(native))
            del kv
            plain = tmp / f"{label}.plain.fifu"
            plain.symlink_to(fifu.resolve())

            def gensim_open() -> tuple[float, float]:
                t = time.perf_counter()
                m = KeyedVectors.load(str(native), mmap="r")
                t1 = time.perf_counter()
                m.most_similar(args.word, topn=10)
                return (t1 - t) * 1e3, (time.perf_counter() - t1) * 1e3

            row = {
                "vecshift_indexed": median_pairs(lambda: vecshift_open(args.binary, fifu, words, args.threads), args.repeat),
                "vecshift_without_index": median_pairs(lambda: vecshift_open(args.binary, plain, words, args.threads), args.repeat),
                "gensim_mmap": median_pairs(gensim_open, args.repeat),
            }
            g = row["gensim_mmap"]
            for side in ("vecshift_indexed", "vecshift_without_index"):
                row[side]["open_vs_gensim"] = row[side]["open_ms"] / g["open_ms"]
                row[side]["open_plus_first_vs_gensim"] = row[side]["open_plus_first_ms"] / g["open_plus_first_ms"]
            results[label] = row
    results["load_average_before_after"] = [load_before[0], os.getloadavg()[0]]

    print(f"median of {args.repeat} (after a warm-up), {args.threads} thread(s), gensim {results['gensim']}, "
          f"load average {results['load_average_before_after'][0]:.2f} -> {results['load_average_before_after'][1]:.2f}")
    print("| words | side | open ms | first top-10 ms | open + first ms | open / gensim | open + first / gensim |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label in ("100k", "400k"):
        for side, name in [("vecshift_indexed", "vecshift, index"), ("vecshift_without_index", "vecshift, no index"),
                           ("gensim_mmap", "gensim load(mmap='r')")]:
            r = results[label][side]
            ratio = (f"{r['open_vs_gensim']:.2f}x | {r['open_plus_first_vs_gensim']:.2f}x" if "open_vs_gensim" in r else "1 | 1")
            print(f"| {label} | {name} | {r['open_ms']:.2f} | {r['first_query_ms']:.2f} | {r['open_plus_first_ms']:.2f} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
