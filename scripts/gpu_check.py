# Run: bash scripts/gpu-check.sh (on the GPU machine), or, to try every step on the CPU with tiny
# sizes: python3 scripts/gpu_check.py --bin target/release/vecshift --out /tmp/gpu-check --dry-run
"""vecshift's CUDA back-end against the CPU and against PyTorch on the same GPU, in one run.

(a) Fidelity (all-MiniLM-L6-v2, the embedded f16 weights upcast to f32): `vecshift embed --json`
    on the GPU, on the CPU (same binary) and PyTorch transformers on the GPU (eager attention,
    f32, TF32 off) give every layer's vector of the target word; every pair must agree within
    max |diff| <= 1e-4 and cosine >= 0.99999 (the bound of tests/bert_fidelity.rs), and so must
    the GPU and the committed CPU reference tests/fixtures/bert/minilm_reference.json.
(b) Speed, `vecshift bench encode` against PyTorch eager (SDPA attention, torch.inference_mode,
    same weights, same sentences, tokenization with the same tokenizer.json included, every
    hidden state kept on the device, the GPU synchronised at the end of each run): real
    (non-pad) tokens per second, median of --repeat runs after one warm-up, for MiniLM and a
    bert-base-size model (768 hidden, 12 layers, 12 heads, random weights built here by
    transformers, MiniLM's tokenizer), in f32 and bf16 (vecshift computes in f32 only: its bf16
    cells are empty unless --vecshift-bf16-args says how), for 200 sentences one at a time and
    2,048 sentences sorted by length in batches of 256 (the methodology of benches/peers.py).
(c) `vecshift report` end to end (process start and model load included) against
    `vecshift bench encode --batch 32 --sort-by-length` on the same rows, on the GPU.

The sentences are built from data/sentences/*.tsv (1 to 3 of them joined, seeded), so nothing
outside the repository is needed. Results: gpu-check.json and gpu-check.md in --out, rewritten
after every section, so a run cut short still leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benches"))
from peer_inputs import encode_inputs, load_tokenizers  # noqa: E402  (shared with benches/peers.py)

MINILM = REPO / "data" / "all-MiniLM-L6-v2"
FIXTURE = REPO / "tests" / "fixtures" / "bert" / "minilm_reference.json"
SENTENCE_SETS = REPO / "data" / "sentences"
# `embed` and `report` load static vectors too; the tiny fixture keeps data/glove-6B-50d optional.
TINY_VECTORS = REPO / "tests" / "fixtures" / "static" / "tiny.w2v.bin"

MAX_ABS = 1e-4
MIN_COS = 0.99999

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # sequential tokenization, as vecshift tokenizes


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, required=True, help="the vecshift binary built with --features cuda")
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu-check.json and gpu-check.md")
    ap.add_argument("--dry-run", action="store_true",
                    help="everything on the CPU with tiny sizes (vecshift's 'GPU' side runs with "
                         "VECSHIFT_DEVICE=cpu): checks the script, not the GPU")
    ap.add_argument("--device", default="cuda", help="VECSHIFT_DEVICE of the GPU side (default cuda)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs after one warm-up (default 3)")
    ap.add_argument("--only", action="append", choices=["fidelity", "speed", "report"],
                    help="run only these sections (repeatable)")
    ap.add_argument("--budget", type=float, default=480,
                    help="seconds; later sections are skipped once this much has passed (default 480)")
    ap.add_argument("--vecshift-bf16-args", default="",
                    help="extra vecshift arguments that make it compute in bf16, if it can (default: none; "
                         "the bf16 rows then hold PyTorch alone)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    return args


ARGS = parse_args()
T0 = time.monotonic()
TMP = Path(tempfile.gettempdir())  # the run's own temporary folder, set in main()


def log(msg: str) -> None:
    print(f"[gpu-check {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class CheckError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# vecshift
# ---------------------------------------------------------------------------------------------


def vecshift(args: list[str], device: str, timeout: float = 300, output: Path | None = None) -> tuple[dict, float]:
    """Runs the binary with --json on `device`; returns its JSON (stdout's, or that of the file
    `output` it was told to write) and the process's wall seconds."""
    cmd = [str(ARGS.bin), "--json", "--vectors", str(TINY_VECTORS), *args]
    env = dict(os.environ, VECSHIFT_DEVICE=device)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise CheckError(f"VECSHIFT_DEVICE={device} {' '.join(cmd)} failed (exit {r.returncode}): {r.stderr.strip()[-1500:]}")
    text = output.read_text(encoding="utf-8") if output else r.stdout
    try:
        return json.loads(text), wall
    except json.JSONDecodeError as e:
        raise CheckError(f"{' '.join(cmd)} did not write JSON ({e}): {text[:300]!r}") from e


def gpu_device() -> str:
    return "cpu" if ARGS.dry_run else ARGS.device


# ---------------------------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------------------------


def torch_device():
    import torch

    if ARGS.dry_run:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise CheckError("PyTorch sees no CUDA device")
    return torch.device("cuda")


def sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def load_torch_bert(model_dir: Path, attn: str, dtype, dev):
    import torch
    import transformers
    from transformers import BertModel

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    model = BertModel.from_pretrained(str(model_dir), dtype=torch.float32, add_pooling_layer=False,
                                      attn_implementation=attn, local_files_only=True)
    return model.to(device=dev, dtype=dtype).eval()


# ---------------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------------


def sentence_sets() -> list[tuple[str, str]]:
    """(word, sentence) of every row of data/sentences/*.tsv, in file-name order."""
    rows = []
    for path in sorted(SENTENCE_SETS.glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1].strip():
                rows.append((fields[0].strip(), fields[1].strip()))
    if len(rows) < 50:
        raise CheckError(f"{SENTENCE_SETS} holds only {len(rows)} sentences")
    return rows


def corpus(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n (word, sentence) pairs: 1 to 3 curated sentences joined, the word that of the first."""
    rows = sentence_sets()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(rows) for _ in range(rng.choice((1, 1, 2, 3)))]
        out.append((parts[0][0], " ".join(s for _, s in parts)))
    return out


# ---------------------------------------------------------------------------------------------
# (a) Fidelity
# ---------------------------------------------------------------------------------------------


def compare(a: list[list[float]], b: list[list[float]]) -> tuple[float, float]:
    """Largest |a - b| and smallest cosine over the layers of one word."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise CheckError(f"shapes differ: {a.shape} vs {b.shape}")
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.abs(a - b).max()), float(cos.min())


def fidelity(report: dict) -> dict:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
    cases = [{"sentence": c["sentence"], "word": c["word"], "span": c["span"], "reference": c["mean"],
              "input_ids": c["input_ids"]} for c in fixture]
    # One sentence of each curated set: words the fixture does not have.
    seen = set()
    for word, sentence in sentence_sets():
        if word not in seen:
            seen.add(word)
            cases.append({"sentence": sentence, "word": word})
    if ARGS.dry_run:
        cases = cases[:3] + cases[-2:]

    dev = torch_device()
    model = load_torch_bert(MINILM, "eager", torch.float32, dev)
    plain, _ = load_tokenizers(MINILM)
    rows = []
    for i, case in enumerate(cases):
        where = ["--span", f"{case['span'][0]}..{case['span'][1]}"] if "span" in case else []
        args = ["embed", "--word", case["word"], "--sentence", case["sentence"], *where]
        gpu, _ = vecshift(args, gpu_device())
        cpu, _ = vecshift(args, "cpu")
        if cpu["span"] != gpu["span"] or ("span" in case and case["span"] != gpu["span"]):
            raise CheckError(f"case {i}: spans differ: {case.get('span')}, {cpu['span']}, {gpu['span']}")
        enc = plain.encode(case["sentence"])
        if "input_ids" in case and enc.ids != case["input_ids"]:
            raise CheckError(f"case {i}: the tokenizer's ids differ from the fixture's")
        pieces = word_pieces(enc, case["sentence"], gpu["span"])
        with torch.inference_mode():
            ids = torch.tensor([enc.ids], device=dev)
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids),
                        output_hidden_states=True)
            states = torch.stack(out.hidden_states)[:, 0, pieces].mean(dim=1)
        pt = states.double().cpu().numpy().tolist()
        g, c = gpu["contextual"]["layers"], cpu["contextual"]["layers"]
        row = {"sentence": case["sentence"][:60], "word": case["word"], "tokens": len(enc.ids), "pieces": len(pieces)}
        for key, (x, y) in {"gpu_vs_cpu": (g, c), "gpu_vs_pytorch_gpu": (g, pt), "cpu_vs_pytorch_gpu": (c, pt)}.items():
            row[key] = compare(x, y)
        if "reference" in case:
            row["gpu_vs_fixture"] = compare(g, case["reference"])
        rows.append(row)
    summary = {}
    for key in ("gpu_vs_cpu", "gpu_vs_pytorch_gpu", "cpu_vs_pytorch_gpu", "gpu_vs_fixture"):
        values = [r[key] for r in rows if key in r]
        worst_abs, worst_cos = max(v[0] for v in values), min(v[1] for v in values)
        summary[key] = {"cases": len(values), "max_abs_diff": worst_abs, "min_cosine": worst_cos,
                        "pass": worst_abs <= MAX_ABS and worst_cos >= MIN_COS}
    batched = batched_cosines(model, plain, dev)
    for key in ("gpu_vs_cpu", "gpu_vs_pytorch_gpu"):
        worst = max(b[key] for b in batched)
        summary[f"batched_cosines_{key}"] = {"cases": len(batched), "max_abs_diff": worst, "min_cosine": None,
                                             "pass": worst <= MAX_ABS}
    return {"model": "all-MiniLM-L6-v2 (f16 weights upcast to f32), mean pooling, 7 layers",
            "bound": {"max_abs_diff": MAX_ABS, "min_cosine": MIN_COS},
            "pytorch": {"attn_implementation": "eager", "dtype": "float32", "tf32": False, "device": str(dev)},
            "summary": summary, "cases": rows, "batched": batched}


def word_pieces(enc, sentence: str, span: list[int]) -> list[int]:
    """Positions of the non-special tokens overlapping the UTF-8 byte span (as vecshift picks them)."""
    raw = sentence.encode("utf-8")
    cstart, cend = len(raw[:span[0]].decode("utf-8")), len(raw[:span[1]].decode("utf-8"))
    return [t for t, ((s, e), special) in enumerate(zip(enc.offsets, enc.special_tokens_mask))
            if not special and s < cend and e > cstart]


def batched_cosines(model, plain, dev) -> list[dict]:
    """The padded, batched path: `vecshift compare` over each curated set (sentences of several
    lengths in one batch) on the GPU and the CPU, against the same cosines from PyTorch run on the
    whole set as one padded batch; per layer, every pair of sentences."""
    import numpy as np
    import torch

    out = []
    sets = sorted(SENTENCE_SETS.glob("*.tsv"))
    for path in sets[:2] if ARGS.dry_run else sets:
        args = ["compare", "--sentences", str(path)]
        gpu, _ = vecshift(args, gpu_device())
        cpu, _ = vecshift(args, "cpu")
        sentences = gpu["sentences"]
        encs = [plain.encode(s) for s in sentences]
        longest = max(len(e.ids) for e in encs)
        ids = torch.tensor([e.ids + [0] * (longest - len(e.ids)) for e in encs], device=dev)
        mask = torch.tensor([[1] * len(e.ids) + [0] * (longest - len(e.ids)) for e in encs], device=dev)
        with torch.inference_mode():
            states = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                           output_hidden_states=True).hidden_states
        vectors = np.stack([torch.stack([h[b, word_pieces(e, s, span)].mean(dim=0) for h in states]).double().cpu().numpy()
                            for b, (e, s, span) in enumerate(zip(encs, sentences, gpu["spans"]))])  # (n, layers, dims)
        unit = vectors / np.linalg.norm(vectors, axis=2, keepdims=True)
        pt = np.einsum("ald,bld->lab", unit, unit)
        g = np.array([layer["matrix"] for layer in gpu["contextual"]["layers"]])
        c = np.array([layer["matrix"] for layer in cpu["contextual"]["layers"]])
        out.append({"set": path.name, "sentences": len(sentences), "padded_to": longest,
                    "gpu_vs_cpu": float(np.abs(g - c).max()), "gpu_vs_pytorch_gpu": float(np.abs(g - pt).max())})
    return out


# ---------------------------------------------------------------------------------------------
# (b) Speed
# ---------------------------------------------------------------------------------------------


def build_bert_base(target: Path) -> Path:
    """A bert-base-size BertModel with random weights (seed 0), saved as safetensors in f32."""
    import torch
    from transformers import BertConfig, BertModel

    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256) if ARGS.dry_run \
        else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
                        layer_norm_eps=1e-12, pad_token_id=0, **size)
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.save_pretrained(str(target), safe_serialization=True)
    shutil.copy(MINILM / "tokenizer.json", target / "tokenizer.json")
    if not (target / "model.safetensors").is_file():
        raise CheckError(f"save_pretrained wrote no model.safetensors in {target}: {sorted(os.listdir(target))}")
    return target


def workloads(sentences: list[str]) -> list[dict]:
    one, many, batch = (20, 64, 16) if ARGS.dry_run else (200, 2048, 256)
    return [
        {"key": "batch1", "name": f"{one} sentences one at a time", "sentences": sentences[:one], "batch": 1, "sort": False},
        {"key": f"batch{batch}_sorted", "name": f"{many} sentences sorted by length, batches of {batch}",
         "sentences": sentences[:many], "batch": batch, "sort": True},
    ]


def batches_of(w: dict) -> list[list[str]]:
    # Stable sort on UTF-8 length: what `bench encode --sort-by-length` does.
    order = sorted(w["sentences"], key=lambda s: len(s.encode("utf-8"))) if w["sort"] else w["sentences"]
    return [order[i:i + w["batch"]] for i in range(0, len(order), w["batch"])]


def torch_tokens_per_s(model, padded, dev, batches: list[list[str]], n_states: int) -> tuple[float, list[float]]:
    import torch

    def run() -> None:
        with torch.inference_mode():
            for b in batches:
                ids, mask, types = (torch.from_numpy(a).to(dev) for a in encode_inputs(padded, b))
                out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
                assert len(out.hidden_states) == n_states  # all kept (on the device) until the next batch
        sync(dev)

    run()  # warm-up
    times = []
    for _ in range(ARGS.repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def speed(report: dict) -> dict:
    import torch

    tmp = TMP
    dev = torch_device()
    pairs = corpus(2048 if not ARGS.dry_run else 64)
    sentences = [s for _, s in pairs]
    sent_file = tmp / "sentences.txt"
    sent_file.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    log("building the bert-base-size model")
    models = [("all-MiniLM-L6-v2", MINILM), ("bert-base-size (random)", build_bert_base(tmp / "bert-base-random"))]
    plain, padded = load_tokenizers(MINILM)
    lengths = [len(e.ids) for e in plain.encode_batch(sentences)]
    results = []
    # Filled in cell by cell (and written out), so that a run cut short keeps what it measured.
    report["speed"] = {"sentences": "data/sentences/*.tsv, 1-3 joined (seed 0)",
                       "pytorch": {"attn_implementation": "sdpa", "mode": "eager, torch.inference_mode",
                                   "tf32": bool(torch.backends.cuda.matmul.allow_tf32), "device": str(dev)},
                       "results": results}
    for name, model_dir in models:
        n_states = json.loads((model_dir / "config.json").read_text())["num_hidden_layers"] + 1
        for dtype_name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            model = load_torch_bert(model_dir, "sdpa", dtype, dev)
            for w in workloads(sentences):
                if over_budget(f"speed {name} {dtype_name} {w['key']}"):
                    break
                real_tokens = sum(lengths[: len(w["sentences"])])
                batches = batches_of(w)
                mask_tokens = sum(sum(e.attention_mask.count(1) for e in padded.encode_batch(b)) for b in batches)
                if mask_tokens != real_tokens:
                    raise CheckError(f"{w['name']}: masks hold {mask_tokens} tokens, the plain tokenizer {real_tokens}")
                vs, vs_error = None, None
                extra = ARGS.vecshift_bf16_args.split() if dtype_name == "bf16" else []
                if dtype_name == "f32" or extra:
                    log(f"{name} {dtype_name} {w['name']}: vecshift")
                    cmd = ["--bert", str(model_dir), *extra, "bench", "encode", "--sentences", str(sent_file),
                           "--batch", str(w["batch"]), "--limit", str(len(w["sentences"])), "--repeat", str(ARGS.repeat)]
                    cmd += ["--sort-by-length"] if w["sort"] else []
                    try:
                        vs, _ = vecshift(cmd, gpu_device(), timeout=300)
                        if vs["sentences"] != len(w["sentences"]) or vs["real_tokens"] != real_tokens:
                            raise CheckError(f"vecshift encoded {vs['sentences']} sentences / {vs['real_tokens']} "
                                             f"real tokens, PyTorch {len(w['sentences'])} / {real_tokens}")
                    except (CheckError, subprocess.TimeoutExpired) as e:
                        vs, vs_error = None, str(e)
                        log(f"  vecshift failed: {e}")
                log(f"{name} {dtype_name} {w['name']}: PyTorch")
                seconds, runs = torch_tokens_per_s(model, padded, dev, batches, n_states)
                pt = real_tokens / seconds
                results.append({
                    "model": name, "dtype": dtype_name, "workload": w["name"], "key": w["key"],
                    "sentences": len(w["sentences"]), "batch": w["batch"], "sorted_by_length": w["sort"],
                    "real_tokens": real_tokens,
                    "vecshift": vs, "vecshift_error": vs_error,
                    "pytorch": {"seconds": seconds, "runs": runs, "tokens_per_s": pt},
                    "ratio_vecshift_over_pytorch": vs["tokens_per_s"] / pt if vs else None,
                })
                log(f"  vecshift {vs['tokens_per_s'] if vs else float('nan'):,.0f}, PyTorch {pt:,.0f} tokens/s")
                write(report)
            del model
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return report["speed"]


# ---------------------------------------------------------------------------------------------
# (c) report against bench encode
# ---------------------------------------------------------------------------------------------


def report_rows(report: dict) -> int:
    """16,384 rows, fewer if the speed section found vecshift too slow for that to fit the budget:
    about 5 s per pass over them at MiniLM's sorted-batch rate (each is read 4 + 2 x 4 times)."""
    rates = [r["vecshift"]["sentences_per_s"] for r in report.get("speed", {}).get("results", [])
             if r["model"] == "all-MiniLM-L6-v2" and r["sorted_by_length"] and r["vecshift"]]
    if not rates:
        return 16384
    return max(1024, min(16384, int(5 * rates[0]) // 1024 * 1024))


def report_vs_encoder(report: dict) -> dict:
    tmp = TMP
    rows = corpus(64 if ARGS.dry_run else report_rows(report), seed=1)
    data = tmp / "report.tsv"
    data.write_text("".join(f"{w}\t{s}\n" for w, s in rows), encoding="utf-8")
    one = tmp / "one.tsv"
    one.write_text(f"{rows[0][0]}\t{rows[0][1]}\n", encoding="utf-8")
    device = gpu_device()
    log(f"report: {len(rows)} rows; bench encode --batch 32 --sort-by-length")
    enc, _ = vecshift(["bench", "encode", "--sentences", str(data), "--batch", "32", "--sort-by-length",
                       "--repeat", str(ARGS.repeat)], device, timeout=600)
    if enc["sentences"] != len(rows):
        raise CheckError(f"bench encode read {enc['sentences']} sentences from {data}, expected {len(rows)}")
    runs = []
    for chunk in (None, len(rows)):
        label = f"chunk {chunk}" if chunk else "default chunk"
        output = tmp / "report.json"
        cmd = ["report", str(data), "-q", "--format", "json", "--output", str(output)]
        cmd += ["--chunk", str(chunk)] if chunk else []
        log(f"report ({label})")
        written, _ = vecshift(cmd, device, timeout=600, output=output)  # warm-up
        times = [vecshift(cmd, device, timeout=600, output=output)[1] for _ in range(ARGS.repeat)]
        seconds = statistics.median(times)
        runs.append({"chunk": chunk or "default", "seconds": seconds, "runs_s": times,
                     "sentences_per_s": len(rows) / seconds,
                     "ratio_to_encoder": len(rows) / seconds / enc["sentences_per_s"]})
    # What a report costs before its first sentence (process start, CUDA set-up, model load).
    one_out = tmp / "one.json"
    startup = statistics.median(
        vecshift(["report", str(one), "-q", "--format", "json", "--output", str(one_out)], device, output=one_out)[1]
        for _ in range(ARGS.repeat))
    return {"rows": len(rows), "encoder": enc, "report": runs, "one_row_report_seconds": startup,
            "report_json_keys": sorted(written)}


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def over_budget(what: str) -> bool:
    if time.monotonic() - T0 > ARGS.budget:
        log(f"skipping {what}: the {ARGS.budget:.0f} s budget is spent")
        return True
    return False


def environment() -> dict:
    env = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dry_run": ARGS.dry_run,
           "python": platform.python_version(), "host": platform.node()}
    try:
        env["vecshift"] = subprocess.run([str(ARGS.bin), "--version"], capture_output=True, text=True).stdout.strip()
    except OSError as e:
        env["vecshift"] = f"cannot run: {e}"
    try:
        import torch
        import transformers

        env.update(torch=torch.__version__, transformers=transformers.__version__, torch_cuda=torch.version.cuda)
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError as e:
        env["torch"] = f"missing: {e}"
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                            "--format=csv,noheader"], capture_output=True, text=True)
        env["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    return env


def fmt(x, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(report: dict) -> str:
    e = report["environment"]
    out = [f"# vecshift GPU check ({e['date']}{', DRY RUN on the CPU' if e['dry_run'] else ''})", "",
           f"GPU: {e.get('gpu', '-')} ({e.get('nvidia_smi', '-')}); vecshift {e.get('vecshift')}; "
           f"torch {e.get('torch')} (CUDA {e.get('torch_cuda')}), transformers {e.get('transformers')}", ""]
    f = report.get("fidelity")
    if f:
        out += ["## Fidelity (MiniLM, every layer, mean pooling)", "",
                f"Bound: max |diff| <= {MAX_ABS:g}, cosine >= {MIN_COS}. batched_cosines: the cosine matrices "
                "of `vecshift compare` over each data/sentences set (one padded batch).", "",
                "| comparison | cases | max abs diff | min cosine | pass |", "|---|---:|---:|---:|---|"]
        for key, s in f["summary"].items():
            out.append(f"| {key} | {s['cases']} | {s['max_abs_diff']:.2e} | {fmt(s['min_cosine'], '.7f')} | "
                       f"{'yes' if s['pass'] else 'NO'} |")
        out.append("")
    s = report.get("speed")
    if s:
        out += ["## Speed: real tokens/s, tokenization included (vecshift bench encode vs PyTorch eager SDPA)", "",
                "vecshift computes in f32 only (its bf16 cells are empty) and encodes at most 32 sentences per "
                "forward pass whatever `--batch` says; PyTorch runs each batch whole.", "",
                "| model | dtype | workload | real tokens | vecshift | PyTorch | vecshift / PyTorch |",
                "|---|---|---|---:|---:|---:|---:|"]
        for r in s["results"]:
            vs = r["vecshift"]["tokens_per_s"] if r["vecshift"] else None
            out.append(f"| {r['model']} | {r['dtype']} | {r['workload']} | {r['real_tokens']:,} | {fmt(vs)} | "
                       f"{fmt(r['pytorch']['tokens_per_s'])} | {fmt(r['ratio_vecshift_over_pytorch'], '.2f')} |")
        out.append("")
    r = report.get("report")
    if r:
        out += [f"## `vecshift report` vs `bench encode` ({r['rows']:,} rows)", "",
                f"bench encode (batches of 32, sorted): {r['encoder']['sentences_per_s']:,.0f} sentences/s; "
                f"a one-row report takes {r['one_row_report_seconds']:.2f} s (start-up and model load)", "",
                "| report | seconds | sentences/s | of the encoder's rate |", "|---|---:|---:|---:|"]
        for run in r["report"]:
            out.append(f"| chunk {run['chunk']} | {run['seconds']:.2f} | {run['sentences_per_s']:,.0f} | "
                       f"{run['ratio_to_encoder']:.0%} |")
        out.append("")
    for section, err in report.get("errors", {}).items():
        out += [f"**{section} failed**: `{err}`", ""]
    return "\n".join(out)


def write(report: dict) -> None:
    ARGS.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("gpu-check.json", json.dumps(report, indent=1)), ("gpu-check.md", markdown(report))):
        tmp = ARGS.out / f".{name}.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(ARGS.out / name)


def main() -> int:
    if not ARGS.bin.is_file():
        print(f"[gpu-check] error: --bin {ARGS.bin}: no such file", file=sys.stderr)
        return 2
    report = {"environment": environment(), "errors": {}}
    log(json.dumps(report["environment"]))
    write(report)
    global TMP
    sections = [("fidelity", fidelity), ("speed", speed), ("report", report_vs_encoder)]
    with tempfile.TemporaryDirectory(prefix="vecshift-gpu-check-") as tmp:
        TMP = Path(tmp)
        for name, fn in sections:
            if ARGS.only and name not in ARGS.only:
                continue
            if over_budget(name):
                report["errors"][name] = "skipped: time budget spent"
                continue
            log(f"== {name}")
            try:
                report[name] = fn(report)
            except Exception as e:  # noqa: BLE001 - a failed section must not lose the others
                traceback.print_exc()
                report["errors"][name] = f"{type(e).__name__}: {e}"
            write(report)
    print(markdown(report))
    ok = not report["errors"] and all(s["pass"] for s in report.get("fidelity", {}).get("summary", {}).values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
