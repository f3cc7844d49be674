#!/usr/bin/env python3
"""Runs `vecshift report` over one input file as N shards on a Ray cluster, then merges them.

    python3 scripts/ray_report.py INPUT -o OUT --shards N [--binary PATH] [--retries 2]
        [--cpus-per-shard 1] [--address ADDRESS | --num-cpus C] [--parts-dir DIR]
        [--format FORMAT] [-- REPORT OPTIONS...]

Each shard is one Ray task that runs `vecshift report INPUT --shard I/N --partial FILE` on a
worker and returns the partial report's bytes through Ray's object store, so workers need the
input (at the same path: a shared file system, or a copy on every node) but no shared place to
write. A shard that fails (non-zero exit, a worker that died) is submitted again, up to
--retries times, with a note on stderr. When every shard is done, the driver writes the parts
into --parts-dir (default: a temporary folder) and runs `vecshift report merge` on them, which
gives the report one process would give for the whole input.

Options after `--` go to every shard's `vecshift report` (e.g. `-- --word bank --bert DIR`).
The vecshift binary is --binary, else `vecshift` on PATH; every node must have it there.
The input is passed to the workers as an absolute path, which the report shows as its name.

Needs `pip install ray` (tested with ray 2.60). Without --address a local Ray instance is
started (with --num-cpus CPUs, default all); `--address auto` joins a running cluster.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


class ShardFailed(Exception):
    """A shard's vecshift run ended with a non-zero status."""


def run_shard(binary, input_path, index, count, report_args, threads):
    """Runs one shard; returns its partial report's bytes (executed as a Ray task)."""
    with tempfile.TemporaryDirectory(prefix="vecshift-shard-") as tmp:
        part = os.path.join(tmp, f"part-{index}.vspart")
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        command = [binary, "report", input_path, "--shard", f"{index}/{count}", "--partial", part, "--quiet", *report_args]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"no message on stderr"
            raise ShardFailed(f"shard {index}/{count} exited with status {done.returncode}: {reason}")
        with open(part, "rb") as f:
            return f.read()


def parse_args(argv):
    report_args = []
    if "--" in argv:
        at = argv.index("--")
        argv, report_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="the input file (text, TSV, JSONL or WiC), readable by every worker at this path")
    parser.add_argument("-o", "--output", required=True, help="the merged report (its extension picks the format)")
    parser.add_argument("--shards", type=int, required=True, help="how many shards (Ray tasks)")
    parser.add_argument("--binary", help="the vecshift binary (default: vecshift on PATH)")
    parser.add_argument("--retries", type=int, default=2, help="how often a failed shard is tried again (default 2)")
    parser.add_argument("--cpus-per-shard", type=int, default=1, help="CPUs Ray reserves per shard, and vecshift's thread count (default 1)")
    parser.add_argument("--address", help="a running Ray cluster to join (e.g. auto); default: start a local one")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--parts-dir", help="keep the partial reports in this folder (default: a temporary one)")
    parser.add_argument("--format", help="json, jsonl, csv, md or html (default: from --output's extension)")
    args = parser.parse_args(argv)
    args.report_args = report_args
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    if args.retries < 0:
        parser.error("--retries must be at least 0")
    return args


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    binary = args.binary or shutil.which("vecshift")
    if binary is None:
        fail("vecshift is not on PATH; pass --binary PATH (build it with `cargo install --path .`)")
    binary = os.path.abspath(binary) if os.path.sep in binary else binary
    input_path = os.path.abspath(args.input)
    if not os.path.isfile(input_path):
        fail(f"the input {args.input} is not a file")
    try:
        import ray
    except ImportError:
        fail("Ray is not installed in this Python: pip install 'ray==2.60.*'")

    started = time.monotonic()
    if args.address:
        ray.init(address=args.address, logging_level="WARNING")
    else:
        ray.init(num_cpus=args.num_cpus, logging_level="WARNING", include_dashboard=False)
    # Retries are the driver's, so that each one is said on stderr; Ray itself retries nothing.
    task = ray.remote(run_shard).options(num_cpus=args.cpus_per_shard, max_retries=0, retry_exceptions=False)

    def submit(index):
        return task.remote(binary, input_path, index, args.shards, args.report_args, args.cpus_per_shard)

    pending = {submit(i): i for i in range(args.shards)}
    attempts = {i: 1 for i in range(args.shards)}
    parts = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        ref = done[0]
        index = pending.pop(ref)
        try:
            parts[index] = ray.get(ref)
        except Exception as error:  # a ShardFailed from the task, or Ray's error for a lost worker
            cause = getattr(error, "cause", None) or error
            if attempts[index] > args.retries:
                ray.shutdown()
                fail(f"shard {index}/{args.shards} failed {attempts[index]} time(s), giving up: {cause}")
            print(f"note: shard {index}/{args.shards} failed (attempt {attempts[index]}), retrying: {cause}", file=sys.stderr)
            attempts[index] += 1
            pending[submit(index)] = index
    ray.shutdown()
    shard_seconds = time.monotonic() - started

    parts_dir = args.parts_dir or tempfile.mkdtemp(prefix="vecshift-parts-")
    os.makedirs(parts_dir, exist_ok=True)
    paths = []
    for index in range(args.shards):
        path = os.path.join(parts_dir, f"part-{index:05d}-of-{args.shards:05d}.vspart")
        with open(path, "wb") as f:
            f.write(parts[index])
        paths.append(path)
    merge = [binary, "report", "merge", *paths, "-o", args.output] + (["--format", args.format] if args.format else [])
    done = subprocess.run(merge)
    if not args.parts_dir:
        shutil.rmtree(parts_dir, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(done.returncode)
    retried = sum(a - 1 for a in attempts.values())
    print(
        f"{args.shards} shard(s) on Ray in {shard_seconds:.1f} s ({retried} retried), "
        f"{sum(len(p) for p in parts.values())} bytes of partial reports, merged into {args.output}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
