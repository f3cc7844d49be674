#!/usr/bin/env bash
# Builds vecshift with `--features cuda` on a machine that has no CUDA toolkit and no GPU.
#
#   scripts/build-cuda.sh [--venv DIR] [--env] [CARGO_ARGS...]
#
# The CUDA 13.0 compiler, headers and libraries come from NVIDIA's PyPI wheels, installed into a
# Python virtual environment (DIR, else $VECSHIFT_CUDA_VENV, else target/cuda-venv in this repo).
# The versions are those of CUDA 13.0 Update 1: PTX from a newer nvcc can be refused by a 13.0
# driver. CUDA_COMPUTE_CAP defaults to 90 (Hopper: H100, H200); set it for another GPU.
#
# candle 0.11 makes cudarc link the CUDA libraries (`dynamic-linking`), so the linker needs
# libcuda.so although only the driver provides it. Like NVIDIA's toolkit, the build links against
# a stub (lib/stubs/libcuda.so, generated from cuda.h, every function returning
# CUDA_ERROR_STUB_LIBRARY); at run time the real driver's libcuda.so.1 is found instead. The binary
# then needs, on the library path: libcuda.so.1 (the driver), libcudart.so.13, libcublas.so.13,
# libcublasLt.so.13, libcurand.so.10 and libnvrtc.so.13 (a CUDA 13 toolkit, or the nvidia-* wheels
# that PyTorch's cu13 builds bring). `--env` prints the environment to run the binary here.
#
# Every further argument goes to `cargo build --release --features cuda` (e.g. `-j 1`);
# CARGO_TARGET_DIR is honoured. Running it again reuses the environment and only rebuilds. The
# binary is also written stripped and xz-compressed to target/gpu/vecshift.xz, which
# scripts/gpu-check.sh takes to the GPU machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VECSHIFT_CUDA_VENV:-$repo/target/cuda-venv}
print_env=0
cargo_args=()
while (($#)); do
    case $1 in
        --venv) venv=$2; shift 2 ;;
        --venv=*) venv=${1#--venv=}; shift ;;
        --env) print_env=1; shift ;;
        *) cargo_args+=("$1"); shift ;;
    esac
done

# CUDA 13.0 Update 1 (runtime 13.0.88): the wheels of the same release.
wheels=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-runtime==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)

if [[ ! -x $venv/bin/python ]]; then
    echo "build-cuda: creating $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi
stamp=$venv/.vecshift-cuda-wheels
if [[ ! -f $stamp || $(cat "$stamp") != "${wheels[*]}" ]]; then
    echo "build-cuda: installing ${wheels[*]}" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${wheels[@]}"
    printf '%s' "${wheels[*]}" >"$stamp"
fi

purelib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cuda=$purelib/nvidia/cu13
[[ -x $cuda/bin/nvcc ]] || { echo "build-cuda: error: no nvcc in $cuda/bin" >&2; exit 1; }

# The wheels ship only versioned libraries (libcublas.so.13); `-lcublas` needs the bare name.
for lib in cudart cublas cublasLt curand nvrtc; do
    versioned=$(cd "$cuda/lib" && ls "lib$lib.so."* 2>/dev/null | grep -E "^lib$lib\.so\.[0-9]+$" | head -n 1) ||
        true
    [[ -n $versioned ]] || { echo "build-cuda: error: lib$lib.so.N missing in $cuda/lib" >&2; exit 1; }
    ln -sfn "$versioned" "$cuda/lib/lib$lib.so"
done

# Link-time stub of the driver library: every cu* function that cuda.h declares, under the names
# the preprocessor gives them (cuMemAlloc becomes cuMemAlloc_v2), plus the legacy and per-thread
# variants and the profiler calls (cudaProfiler.h, not in the wheels), all returning
# CUDA_ERROR_STUB_LIBRARY (34).
stubs=$cuda/lib/stubs
if [[ ! -f $stubs/libcuda.so || $stubs/libcuda.so -ot $cuda/include/cuda.h ]]; then
    mkdir -p "$stubs"
    for defs in "" "-D__CUDA_API_VERSION_INTERNAL" "-DCUDA_API_PER_THREAD_DEFAULT_STREAM"; do
        # shellcheck disable=SC2086 # $defs is one flag or none
        gcc -E -P $defs -I"$cuda/include" "$cuda/include/cuda.h"
    done | cat - <(echo 'cuProfilerInitialize( cuProfilerStart( cuProfilerStop(') | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u |
        awk '{ printf "int %s(void) { return 34; }\n", $1 }' >"$stubs/libcuda-stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda-stub.c"
    ln -sfn libcuda.so "$stubs/libcuda.so.1"
    echo "build-cuda: stub $stubs/libcuda.so ($(wc -l <"$stubs/libcuda-stub.c") functions)" >&2
fi

export PATH=$cuda/bin:$PATH
export CUDA_ROOT=$cuda CUDA_PATH=$cuda CUDA_HOME=$cuda
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
# cudaforge compiles candle's kernels on every core unless told otherwise; follow cargo's -j.
for ((i = 0; i < ${#cargo_args[@]}; i++)); do
    case ${cargo_args[i]} in
        -j) export CUDAFORGE_THREADS=${cargo_args[i + 1]} ;;
        -j[0-9]*) export CUDAFORGE_THREADS=${cargo_args[i]#-j} ;;
        --jobs=*) export CUDAFORGE_THREADS=${cargo_args[i]#--jobs=} ;;
    esac
done

if ((print_env)); then
    # To run the cuda build here (no GPU): the stub stands in for the driver and every device
    # request fails with CUDA_ERROR_STUB_LIBRARY.
    echo "export LD_LIBRARY_PATH=$cuda/lib:$stubs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
    exit 0
fi

cd "$repo"
nvcc --version | tail -n 2 >&2
cargo build --release --features cuda "${cargo_args[@]}"

# For a GPU machine reached through a size limit (scripts/gpu-check.sh unpacks it): stripped and
# xz-compressed, about 8 MB instead of 150 MB.
built=${CARGO_TARGET_DIR:-$repo/target}/release/vecshift
bundle=$repo/target/gpu/vecshift.xz
if [[ -x $built && ( ! -f $bundle || $bundle -ot $built ) ]]; then
    mkdir -p "$(dirname "$bundle")"
    strip -o "$bundle.bin" "$built"
    xz -T0 -c "$bundle.bin" >"$bundle.tmp" && mv "$bundle.tmp" "$bundle"
    rm -f "$bundle.bin"
fi
echo "build-cuda: $built; for the GPU machine: $bundle ($(du -h "$bundle" | cut -f1))" >&2
