#!/usr/bin/env bash
# Runs every fuzz target for a while, one after another, on one core.
#
#   bash fuzz/run.sh [seconds-per-target]      (default 600)
#   TARGETS="occurrence input_tsv" bash fuzz/run.sh 60
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target starts
# from its committed seeds in corpus/<target>/ (what libFuzzer adds there is git-ignored).
# A crash, timeout or out-of-memory stops that target: the input is kept in
# artifacts/<target>/, minimised next to it (minimized-*), and the run goes on with the next
# target. Logs are in logs/<target>.log; logs/summary.tsv gets one line per run (target,
# seconds, executions, crash file or "-"). Exit status 1 when anything crashed.
set -uo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET=${1:-600}
BUILD_FLAGS=(--release --debug-assertions --sanitizer none)
# -timeout: an input that takes 10 s is a bug (the inputs are small); -rss_limit_mb also
# bounds every single allocation (libFuzzer's malloc limit defaults to it).
FUZZ_FLAGS=(-rss_limit_mb=2048 -timeout=10 -max_len=4096 -print_final_stats=1)

cargo +nightly fuzz build "${BUILD_FLAGS[@]}" || exit 2
TARGETS=${TARGETS:-$(cargo +nightly fuzz list)}
mkdir -p logs
status=0
for target in $TARGETS; do
    mkdir -p "corpus/$target" "artifacts/$target"
    before=$(ls "artifacts/$target")
    started=$(date +%s)
    echo "== $target: ${SECONDS_PER_TARGET}s"
    nice -n 10 cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "corpus/$target" -- \
        "${FUZZ_FLAGS[@]}" -max_total_time="$SECONDS_PER_TARGET" >"logs/$target.log" 2>&1
    code=$?
    elapsed=$(( $(date +%s) - started ))
    # libFuzzer's own count of fuzzing time and runs (the wall time above includes a rebuild).
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "logs/$target.log" | tail -1)
    if [ -n "$done_line" ]; then
        elapsed=$(echo "$done_line" | awk '{print $5}')
    fi
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "logs/$target.log" | tail -1 | grep -o '[0-9]*$')
    crash=$(comm -13 <(echo "$before") <(ls "artifacts/$target") | grep -v '^minimized-' | head -1)
    if [ "$code" -ne 0 ] && [ -n "$crash" ]; then
        status=1
        echo "   crashed after ${elapsed}s: artifacts/$target/$crash (log: logs/$target.log)"
        grep -m3 -E "panicked at|ERROR: libFuzzer|SUMMARY" "logs/$target.log" | sed 's/^/   /'
        case "$crash" in
            crash-*)
                nice -n 10 cargo +nightly fuzz tmin "${BUILD_FLAGS[@]}" "$target" "artifacts/$target/$crash" \
                    -- -rss_limit_mb=2048 -timeout=10 >"logs/$target.tmin.log" 2>&1
                # tmin writes minimized-from-<hash> into the artifacts folder.
                ;;
        esac
    elif [ "$code" -ne 0 ]; then
        status=1
        echo "   failed (exit $code) without an artifact; see logs/$target.log"
        crash="exit-$code"
    else
        crash="-"
    fi
    echo "   ${elapsed}s, ${execs:-?} executions"
    printf '%s\t%s\t%s\t%s\n' "$target" "$elapsed" "${execs:-?}" "$crash" >>logs/summary.tsv
done
exit $status
