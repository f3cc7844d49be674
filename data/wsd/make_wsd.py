"""Builds the small WSD set in this folder from the labelled example sentences.

    python3 data/wsd/make_wsd.py data/sentences data/wsd

Reads every SENTENCES_DIR/*.tsv (word<TAB>sentence<TAB>sense) and writes OUT_DIR/<word>/
{train,test}.{data,gold}.txt in the format of `vecshift eval wsd`: `<token index><TAB><sentence>`
per data line (the whitespace-token index of the word, from 0), the sense on the gold line.
The split is fixed: within each sense, in file order, the last sentence is for testing and the
others for training.
"""
import glob
import os
import re
import sys


def token_index(sentence, word):
    for i, token in enumerate(sentence.split()):
        if re.sub(r"^\W+|\W+$", "", token).lower() == word.lower():
            return i
    raise SystemExit(f"{word!r} is not a whitespace token of {sentence!r}")


def main():
    source, out = sys.argv[1], sys.argv[2]
    for path in sorted(glob.glob(os.path.join(source, "*.tsv"))):
        rows = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) == 3 and fields[0] != "word":
                    rows.append(fields)
        if not rows:
            continue
        word = rows[0][0]
        last = {sense: i for i, (_, _, sense) in enumerate(rows)}
        splits = {"train": [], "test": []}
        for i, (w, sentence, sense) in enumerate(rows):
            splits["test" if last[sense] == i else "train"].append((token_index(sentence, w), sentence, sense))
        os.makedirs(os.path.join(out, word), exist_ok=True)
        for split, items in splits.items():
            with open(os.path.join(out, word, f"{split}.data.txt"), "w", encoding="utf-8") as f:
                f.writelines(f"{i}\t{s}\n" for i, s, _ in items)
            with open(os.path.join(out, word, f"{split}.gold.txt"), "w", encoding="utf-8") as f:
                f.writelines(f"{sense}\n" for _, _, sense in items)


if __name__ == "__main__":
    main()
