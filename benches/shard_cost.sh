#!/usr/bin/env bash
# Measures what sharding a report costs: one process over INPUT against SHARDS shards (run
# JOBS at a time, one thread each) plus the merge; CPU time (user+sys) from /usr/bin/time -v,
# the partial reports' sizes and the merge time. Not a test: numbers for the README.
#   benches/shard_cost.sh INPUT [SHARDS=4] [JOBS=2] [VECSHIFT=target/release/vecshift]
set -euo pipefail
input=$1 shards=${2:-4} jobs=${3:-2} bin=${4:-target/release/vecshift}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cpu() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$@"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1"; }

/usr/bin/time -v "$bin" report "$input" --json --quiet -o "$work/single.json" 2>"$work/single.time"
echo "one process: cpu $(cpu "$work/single.time") s, wall $(wall "$work/single.time")"

start=$(date +%s.%N)
seq 0 $((shards - 1)) | xargs -P "$jobs" -I{} env RAYON_NUM_THREADS=1 /usr/bin/time -v -o "$work/shard-{}.time" \
    "$bin" report "$input" --shard "{}/$shards" --partial "$work/part-{}.vspart" --quiet
end=$(date +%s.%N)
/usr/bin/time -v "$bin" report merge "$work"/part-*.vspart -o "$work/merged.json" --quiet 2>"$work/merge.time"
echo "$shards shards ($jobs at a time, 1 thread each): cpu $(cpu "$work"/shard-*.time) s, wall $(echo "$end - $start" | bc) s"
echo "merge: cpu $(cpu "$work/merge.time") s, wall $(wall "$work/merge.time")"
echo "partial reports (bytes): $(stat -c %s "$work"/part-*.vspart | tr '\n' ' ')"
cmp -s <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["occurrences"], len(d["words"]))' "$work/single.json") \
       <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["occurrences"], len(d["words"]))' "$work/merged.json") \
    && echo "merged report: same words and occurrences as one process"
