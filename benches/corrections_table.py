"""Markdown tables from the JSON that benches/corrections.sh writes (standard library only).

    python3 benches/corrections_table.py OUT_DIR

Reads OUT_DIR/{wic,wic-fit,wsd,wsd-fit}.json (`vecshift eval wic|wsd --json` with several
--postprocess corrections and --layers selections) and prints one table per set and fit: rows are
layer selections, columns corrections; the best cell of each table and the best single layer on raw
cosines are named below it.
"""

import json
import sys
from pathlib import Path


def label(layers):
    return {"all": "mean of all"}.get(layers, f"mean {layers}" if ".." in layers else layers)


def named(layers):
    return f"layer {layers}" if layers.lstrip("-").isdigit() else label(layers)


def short(method):
    return method.replace("all-but-the-top:", "abtt:")


def table(variants, score, fmt):
    methods = list(dict.fromkeys(v["postprocess"] for v in variants))
    rows = list(dict.fromkeys(v["layers"] for v in variants))
    cell = {(v["layers"], v["postprocess"]): v for v in variants}
    lines = ["| layers | " + " | ".join(short(m) for m in methods) + " |", "|---|" + "---:|" * len(methods)]
    for r in rows:
        lines.append(f"| {label(r)} | " + " | ".join(fmt(cell[(r, m)]) if (r, m) in cell else "-" for m in methods) + " |")
    best = max(variants, key=score)
    singles = [v for v in variants if v["postprocess"] == "none" and v["layers"].lstrip("-").isdigit()]
    raw = max(singles, key=score) if singles else None
    lines.append("")
    if raw:
        lines.append(f"Best single layer on raw cosines: layer {raw['layers']}, {fmt(raw)}.")
    lines.append(f"Best cell: {named(best['layers'])} with {best['postprocess']}, {fmt(best)}.")
    return "\n".join(lines)


def main():
    out = Path(sys.argv[1])
    for name, fitted in [("wic", "the dev and train occurrences at hand"), ("wic-fit", "the --fit corpus")]:
        path = out / f"{name}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        print(f"### WiC {result['file']} ({result['n']} pairs), thresholds on {result.get('train_file')} "
              f"({result.get('train_n')} pairs); corrections fitted on {fitted}: accuracy (%)\n")
        print(table(result["variants"], lambda v: v["accuracy"], lambda v: f"{100 * v['accuracy']:.2f}"))
        print()
    for name in ["wsd", "wsd-fit"]:
        path = out / f"{name}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        n_test = sum(w["n_test"] for w in result["words"])
        print(f"### WSD {result['source']} ({len(result['words'])} words, {n_test} test occurrences; majority baseline "
              f"{100 * result['majority_baseline']:.1f}%); corrections fitted on {result['fit']}: "
              "1-NN / nearest-centroid accuracy (%)\n")
        print(table(
            result["variants"],
            lambda v: (v["nearest"]["accuracy"], v["centroid"]["accuracy"]),
            lambda v: f"{100 * v['nearest']['accuracy']:.1f} / {100 * v['centroid']['accuracy']:.1f}",
        ))
        print()


if __name__ == "__main__":
    main()
