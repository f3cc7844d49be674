# Run (from anywhere): bash benches/peers.sh --wic WiC/train/train.data.txt [--threads 2] [--json peers.json]
# Creates benches/.venv (git-ignored) with pinned PyPI packages on first use, builds vecshift
# (cargo build --release) and runs benches/peers.py, which measures vecshift and its peers
# (PyTorch transformers, ONNX Runtime, gensim, numpy) side by side in one go. All arguments go
# to peers.py (see `bash benches/peers.sh --help`). PYTHON=python3.x picks the interpreter for the venv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
# torch comes from PyPI (the only index allowed here); its Linux wheel drags in the CUDA
# libraries, but peers.py only ever runs it on the CPU.
pins=(
  torch==2.15.0
  transformers==5.24.0
  tokenizers==0.23.3
  safetensors==0.8.0
  onnxruntime==1.32.0
  onnx==1.23.2
  onnxscript==0.7.2
  gensim==4.4.0
  numpy==2.4.6
  pyarrow==26.0.1
)
stamp="$venv/.pins"
if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
  echo "[peers.sh] setting up $venv with: ${pins[*]}" >&2
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi
exec "$venv/bin/python" "$here/peers.py" "$@"
