#!/bin/bash
# Submits a sharded `vecshift report` to Slurm: a job array of SHARDS tasks, then the merge,
# which waits for all of them (afterok). Usage:
#   deploy/slurm/submit.sh INPUT OUTPUT SHARDS [PARTS_DIR] [-- REPORT OPTIONS...]
# INPUT, OUTPUT and PARTS_DIR (default OUTPUT.parts) must be on a file system every node sees;
# vecshift must be on the nodes' PATH (or set VECSHIFT to its path). Prints the two job ids.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 INPUT OUTPUT SHARDS [PARTS_DIR] [-- REPORT OPTIONS...]" >&2
    exit 2
fi
input=$(realpath "$1")
output=$(realpath -m "$2")
shards=$3
shift 3
parts=$(realpath -m "$output.parts")
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    parts=$(realpath -m "$1")
    shift
fi
[ "${1:-}" = "--" ] && shift
case $shards in '' | *[!0-9]* | 0) echo "SHARDS must be a positive number, not '$shards'" >&2; exit 2 ;; esac
here=$(dirname "$(realpath "$0")")
# Exported, not put into --export: paths and options may hold commas.
export INPUT="$input" PARTS="$parts" OUTPUT="$output" SHARDS="$shards" REPORT_ARGS="$*"
array=$(sbatch --parsable --export=ALL --array="0-$((shards - 1))" "$here/report-array.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" "$here/merge.sbatch")
echo "shards: job $array (array 0-$((shards - 1))), merge: job ${merge%%;*} -> $output"
