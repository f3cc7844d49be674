"""Cuts a WordNet 3.x database down to a few words, keeping the file formats.

    python3 data/wordnet/make_extract.py WORDNET_DIR OUT_DIR WORD... [--reference FILE]

WORDNET_DIR holds index.noun, data.noun, ... (Debian's wordnet-base installs them in
/usr/share/wordnet). OUT_DIR gets the same eight files with only the lines vecshift needs for
WORD...: their index lines, the data lines of their synsets, and the index lines of each synset's
first lemma (to number the synset as NLTK does; for adjectives also that lemma's data lines, to tell
its satellites apart). The licence header of every file is kept and
the licence is written to OUT_DIR/LICENSE.

With --reference FILE, NLTK's WordNet reader (run on the full WORDNET_DIR, independently of
vecshift) writes each word's synsets (name, offset, pos, lemmas, definition, examples) to FILE.

Used for data/wordnet (the bundled example words) and tests/fixtures/wordnet:
    python3 data/wordnet/make_extract.py /usr/share/wordnet data/wordnet bank bark bass bat cell crane match mouse pitch plant seal spring
    python3 data/wordnet/make_extract.py /usr/share/wordnet tests/fixtures/wordnet bank fair spring \
        --reference tests/fixtures/wordnet/reference.json
"""
import argparse
import json
import os
import shutil
import tempfile

POS = [("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")]

LICENSE = """WordNet Release 3.0

This software and database is being provided to you, the LICENSEE, by
Princeton University under the following license.  By obtaining, using
and/or copying this software and database, you agree that you have
read, understood, and will comply with these terms and conditions.:

Permission to use, copy, modify and distribute this software and
database and its documentation for any purpose and without fee or
royalty is hereby granted, provided that you agree to comply with
the following copyright notice and statements, including the disclaimer,
and that the same appear on ALL copies of the software, database and
documentation, including modifications that you make for internal
use or for distribution.

WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR
IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in
advertising or publicity pertaining to distribution of the software
and/or database.  Title to copyright in this software, database and
any associated documentation shall at all times remain with
Princeton University and LICENSEE agrees to preserve same.
"""


def read(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header = [l for l in lines if l.startswith("  ")]
    return header, [l for l in lines if not l.startswith("  ")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wordnet")
    parser.add_argument("out")
    parser.add_argument("words", nargs="+")
    parser.add_argument("--reference")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    words = [w.lower().replace(" ", "_") for w in args.words]
    for _, suffix in POS:
        ih, index = read(os.path.join(args.wordnet, f"index.{suffix}"))
        dh, data = read(os.path.join(args.wordnet, f"data.{suffix}"))
        index_by_lemma = {l.split(" ", 1)[0]: l for l in index}
        data_by_offset = {l.split(" ", 1)[0]: l for l in data}
        keep_index, keep_data = set(), set()
        for w in words:
            line = index_by_lemma.get(w)
            if line is None:
                continue
            keep_index.add(w)
            fields = line.split()
            count = int(fields[2])
            for offset in fields[-count:]:
                keep_data.add(offset)
                first = data_by_offset[offset].split()[4]
                first = first.split("(")[0].lower()
                keep_index.add(first)
                if suffix == "adj":
                    # A satellite is numbered among its first lemma's satellites: keep their lines.
                    first_fields = index_by_lemma[first].split()
                    keep_data.update(first_fields[-int(first_fields[2]):])
        with open(os.path.join(args.out, f"index.{suffix}"), "w", encoding="utf-8") as f:
            f.writelines(l + "\n" for l in ih + [index_by_lemma[k] for k in sorted(keep_index)])
        with open(os.path.join(args.out, f"data.{suffix}"), "w", encoding="utf-8") as f:
            f.writelines(l + "\n" for l in dh + [data_by_offset[k] for k in sorted(keep_data)])
    with open(os.path.join(args.out, "LICENSE"), "w", encoding="utf-8") as f:
        f.write(LICENSE)
    if args.reference:
        write_reference(args.wordnet, words, args.reference)


def write_reference(wordnet, words, path):
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    # NLTK also wants a lexnames file, which Debian's package lacks; its content is not used here.
    with tempfile.TemporaryDirectory() as root:
        for name in os.listdir(wordnet):
            if name.startswith(("index.", "data.")) or name.endswith(".exc"):
                shutil.copy(os.path.join(wordnet, name), os.path.join(root, name))
        with open(os.path.join(root, "lexnames"), "w") as f:
            f.writelines(f"{i:02d} lex.{i} 1\n" for i in range(45))
        nltk.data.path.append(root)  # NLTK reads only from paths it was told about
        # The mapping to WordNet 3.0 (for the multilingual data) needs a download; not used here.
        WordNetCorpusReader.map_wn = lambda self, *args, **kwargs: None
        wn = WordNetCorpusReader(root, None)
        out = {}
        for w in words:
            out[w] = [
                {
                    "name": s.name(),
                    "offset": s.offset(),
                    "pos": s.pos(),
                    "lemmas": [l.name() for l in s.lemmas()],
                    "definition": s.definition(),
                    "examples": s.examples(),
                }
                # lemma=w and no morphological lookup: exactly the index entries of w.
                for s in wn.synsets(w) if w in [l.name().lower() for l in s.lemmas()]
            ]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
