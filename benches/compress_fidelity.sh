#!/bin/sh
# Fidelity of the compression variants on the embedded MiniLM: every word of every sentence of
# data/sentences/*.tsv is one occurrence; `report --json --variant ...` gives, per variant and
# layer, the cosine between each occurrence's original and variant vector (mean, p5, min) and the
# bytes of the weights. The README's table is the last layer of this output.
#
# Usage: benches/compress_fidelity.sh [VECSHIFT] > fidelity.json   (VECSHIFT default: target/release/vecshift)
set -eu
VECSHIFT=${1:-target/release/vecshift}
TSV=$(mktemp --suffix .tsv)
trap 'rm -f "$TSV"' EXIT
# word<TAB>sentence for every whole alphabetic word (case kept), all sentences of the example sets.
cut -f2 data/sentences/*.tsv | sort -u | while IFS= read -r sentence; do
    printf '%s\n' "$sentence" | tr -cs 'A-Za-z' '\n' | grep -E '^[A-Za-z]{2,}$' | sort -u | while IFS= read -r word; do
        printf '%s\t%s\n' "$word" "$sentence"
    done
done > "$TSV"
"$VECSHIFT" ${BERT:+--bert "$BERT"} report "$TSV" --json --quiet --max-per-word 100000 \
    --variant f16 --variant bf16 --variant int8 --variant int8-asym --variant int4 --variant int4:g128 \
    --variant prune:0.3 --variant prune-neurons:0.3 --variant rank:0.5 --variant drop-layers:5 --variant prune:0.3+int8
