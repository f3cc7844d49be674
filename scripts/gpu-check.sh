#!/usr/bin/env bash
# The GPU check in one run, on a machine with an NVIDIA GPU, its driver, and a python3 that holds
# PyTorch (CUDA 13 build) and transformers; no Rust, no network needed.
#
#   bash scripts/gpu-check.sh [--bin PATH] [--out DIR] [GPU_CHECK_ARGS...]
#
# PATH: the vecshift binary built by scripts/build-cuda.sh (default target/gpu/vecshift, or
# target/gpu/vecshift.xz, which is unpacked first). DIR: where gpu-check.json, gpu-check.md and
# gpu-check.log go (default $OUT, else target/gpu-check). Other arguments go to
# scripts/gpu_check.py (e.g. --dry-run to try it all on the CPU, --only fidelity).
#
# The binary links libcuda.so.1 (the driver) and CUDA 13's libcudart, libcublas, libcublasLt,
# libcurand and libnvrtc; they are looked up in python3's nvidia-* wheels (PyTorch's), then in a
# CUDA toolkit, and put on LD_LIBRARY_PATH.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/target/gpu/vecshift
out=${OUT:-$repo/target/gpu-check}
rest=()
while (($#)); do
    case $1 in
        --bin) bin=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) rest+=("$1"); shift ;;
    esac
done
mkdir -p "$out"
log=$out/gpu-check.log
exec > >(tee -a "$log") 2>&1

if [[ ! -f $bin && -f $bin.xz ]]; then
    unpacked=${TMPDIR:-/tmp}/vecshift-gpu-check-bin
    # Python's lzma, in case the machine has no xz.
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$bin.xz" "$unpacked" && chmod +x "$unpacked" && bin=$unpacked
fi
[[ -x $bin ]] || { echo "gpu-check: error: no vecshift binary at $bin (build it with scripts/build-cuda.sh)"; exit 2; }

libdirs=$(python3 - <<'EOF'
import glob, os, site, sys
roots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
dirs = []
for root in roots:
    for lib in sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib"))):
        if lib not in dirs:
            dirs.append(lib)
print(":".join(dirs))
EOF
)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [[ -d $d ]] && libdirs=$libdirs:$d
done
export LD_LIBRARY_PATH=${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "gpu-check: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
ldd "$bin" | grep -E 'cuda|cublas|curand|nvrtc|not found'
if ldd "$bin" | grep -q 'not found'; then
    echo "gpu-check: error: $bin misses libraries (above); put their folders on LD_LIBRARY_PATH"
    exit 2
fi
# candle's kernels are PTX, compiled by the driver when a process first uses them; its cache
# (default 256 MB) spares the many short vecshift processes below from doing that again.
export CUDA_CACHE_MAXSIZE=${CUDA_CACHE_MAXSIZE:-4294967296}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# The one clear line a device failure must give, and CPU commands working in this build.
VECSHIFT_DEVICE=cpu "$bin" --vectors "$repo/tests/fixtures/static/tiny.w2v.bin" embed --word bank \
    --sentence "We sat on the river bank." | tail -n 2
echo "gpu-check: the first GPU process (the driver compiles candle's PTX, then caches it):"
time VECSHIFT_DEVICE=cuda "$bin" --vectors "$repo/tests/fixtures/static/tiny.w2v.bin" embed --word bank \
    --sentence "We sat on the river bank." | tail -n 2
VECSHIFT_DEVICE=cuda:99 "$bin" --vectors "$repo/tests/fixtures/static/tiny.w2v.bin" embed --word bank \
    --sentence "We sat on the river bank."
echo "gpu-check: exit $? for VECSHIFT_DEVICE=cuda:99 (should be one error line and exit 1)"

PYTHONUNBUFFERED=1 python3 "$repo/scripts/gpu_check.py" --bin "$bin" --out "$out" "${rest[@]}"
status=$?
echo "gpu-check: gpu_check.py exit $status; results in $out"
exit $status
