#!/usr/bin/env bash
# Layers x anisotropy corrections on WiC and WSD with the embedded all-MiniLM-L6-v2: the run
# behind README.md's "Choosing layers and anisotropy corrections" tables.
#
#   bash benches/corrections.sh --wic WIC_DIR [--wsd WSD_DIR] [--out DIR] [--subset N] [--fit FILE]
#
# WIC_DIR holds WiC's train.data.txt, train.gold.txt, dev.data.txt and dev.gold.txt (from
# WiC_dataset.zip at https://pilehvar.github.io/wic/); WSD_DIR is a folder of
# <word>/{train,test}.{data,gold}.txt (default: the repository's data/wsd). Each set is evaluated
# twice: with the corrections fitted on the occurrences at hand, and fitted on a corpus (--fit FILE,
# one sentence per line; default: the distinct sentences of WiC's train split, so nothing of the
# dev split is seen). --subset N keeps the first N pairs of each WiC split (quicker runs; say so
# when quoting them). The JSON of every run and the Markdown tables (tables.md) go to --out
# (default: corrections-out/). VECSHIFT=path/to/vecshift picks the binary (default: cargo build
# --release and target/release/vecshift); PYTHON the interpreter for the tables (stdlib only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
wic="" wsd="$root/data/wsd" out="corrections-out" subset="" fit=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wic) wic="$2"; shift 2 ;;
    --wsd) wsd="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --subset) subset="$2"; shift 2 ;;
    --fit) fit="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$wic" ]]; then
  echo "error: --wic DIR is needed (a folder with WiC's train/dev .data.txt and .gold.txt)" >&2
  exit 2
fi
for f in train.data.txt train.gold.txt dev.data.txt dev.gold.txt; do
  [[ -f "$wic/$f" ]] || { echo "error: $wic/$f is missing (unpack WiC_dataset.zip's train and dev folders there)" >&2; exit 2; }
done
[[ -d "$wsd" ]] || { echo "error: --wsd $wsd is not a folder of <word>/{train,test}.{data,gold}.txt" >&2; exit 2; }

if [[ -z "${VECSHIFT:-}" ]]; then
  (cd "$root" && cargo build --release --quiet)
  VECSHIFT="${CARGO_TARGET_DIR:-$root/target}/release/vecshift"
fi
mkdir -p "$out"
data="$out/wic"
mkdir -p "$data"
for split in train dev; do
  if [[ -n "$subset" ]]; then
    head -n "$subset" "$wic/$split.data.txt" > "$data/$split.data.txt"
    head -n "$subset" "$wic/$split.gold.txt" > "$data/$split.gold.txt"
  else
    cp "$wic/$split.data.txt" "$wic/$split.gold.txt" "$data/"
  fi
done
if [[ -z "$fit" ]]; then
  fit="$out/fit-corpus.txt"
  cut -f4,5 "$data/train.data.txt" | tr '\t' '\n' | awk '!seen[$0]++' > "$fit"
fi

corrections="none,center,all-but-the-top:1,all-but-the-top:4,all-but-the-top:10,whiten,standardize"
layers=(--layers 3..=6 --layers 4..=6 --layers all)
run() {
  local name="$1"; shift
  echo "[corrections.sh] $name: vecshift $*" >&2
  local start=$SECONDS
  "$VECSHIFT" "$@" --postprocess "$corrections" "${layers[@]}" --json > "$out/$name.json"
  echo "[corrections.sh] $name: $((SECONDS - start)) s" >&2
}
wic_args=(eval wic "$data/dev.data.txt" "$data/dev.gold.txt" --train "$data/train.data.txt" "$data/train.gold.txt")
run wic "${wic_args[@]}"
run wic-fit "${wic_args[@]}" --fit "$fit"
run wsd eval wsd "$wsd"
run wsd-fit eval wsd "$wsd" --fit "$fit"

"${PYTHON:-python3}" "$here/corrections_table.py" "$out" > "$out/tables.md"
cat "$out/tables.md"
