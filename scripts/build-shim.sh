#!/usr/bin/env bash
# Builds ReAlign's C++ shim over libtorch (Sources/CTorch/*.cpp) as its own shared library, librealign_torch.so,
# against Debian's libtorch or the one LIBTORCH names (a libtorch download, or <site-packages>/torch of a PyTorch
# install, CUDA builds included). The Swift side links only this library and finds it at run time through its
# RUNPATH or LD_LIBRARY_PATH, so another libtorch needs only this rebuilt, not the Swift build:
#   LIBTORCH=/path/to/torch scripts/build-shim.sh        then   LD_LIBRARY_PATH=<printed folder> realign ...
# Prints the folder it built into: .build-shim/debian, or .build-shim/<LIBTORCH with / as _>. Only changed
# sources are recompiled (CXX, default the Swift toolchain's clang++; JOBS, default the core count).
set -euo pipefail
cd "$(dirname "$0")/.."
src=Sources/CTorch

# The Swift toolchain's clang++ (the compiler SwiftPM uses for C++), else any clang++ or g++.
cxx=${CXX:-}
if [ -z "$cxx" ] && command -v swift >/dev/null 2>&1; then
  toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
  [ -x "$toolchain/clang++" ] && cxx=$toolchain/clang++
fi
if [ -z "$cxx" ]; then
  for c in clang++ g++; do command -v "$c" >/dev/null 2>&1 && { cxx=$c; break; }; done
fi
[ -n "$cxx" ] || { echo "build-shim: no C++ compiler (clang++ or g++; or set CXX)" >&2; exit 1; }

flags=(-std=c++17 -O2 -fPIC -I"$src/include" -Wno-psabi)
$cxx --version 2>/dev/null | grep -qi clang && flags+=(-Wno-c++20-extensions)
link=()
if [ -n "${LIBTORCH:-}" ]; then
  root=$(cd "$LIBTORCH" && pwd)
  [ -d "$root/include" ] && [ -d "$root/lib" ] || { echo "build-shim: LIBTORCH=$LIBTORCH has no include/ and lib/" >&2; exit 1; }
  out=.build-shim/${root//\//_}
  flags+=(-I"$root/include" -I"$root/include/torch/csrc/api/include")
  link+=(-L"$root/lib" -Wl,-rpath,"$root/lib")
  # A CUDA build registers its kernels from libtorch_cuda at load time; nothing references it directly, so keep
  # the linker from dropping it.
  if [ -f "$root/lib/libtorch_cuda.so" ]; then
    link+=(-Wl,--no-as-needed -ltorch_cuda -Wl,--as-needed)
    # NCCL process groups need NCCL's and the CUDA runtime's headers: beside a PyTorch wheel they are the nvidia-*
    # packages' (site-packages/nvidia/*/include), elsewhere CUDA_HOME's.
    nccl=0 runtime=0 crt=0
    for inc in "$(dirname "$root")"/nvidia/*/include "${CUDA_HOME:-/usr/local/cuda}/include"; do
      [ -d "$inc" ] || continue
      flags+=(-I"$inc")
      [ -f "$inc/nccl.h" ] && nccl=1
      [ -f "$inc/cuda_runtime.h" ] && runtime=1
      [ -f "$inc/crt/host_config.h" ] && crt=1
    done
    if [ $nccl = 1 ] && [ "${CT_NCCL:-1}" != 0 ]; then
      # cuda_runtime.h includes crt/host_config.h, which pip's nvidia-cuda-runtime does not ship (nvidia-cuda-crt does).
      if [ $runtime = 0 ] || [ $crt = 0 ]; then
        version=$(ls -d "$(dirname "$root")"/nvidia_cuda_runtime*-*.dist-info 2>/dev/null | head -1 | sed -E 's/.*-([0-9][0-9.]*)\.dist-info/\1/')
        missing=$([ $runtime = 0 ] && echo "cuda_runtime.h (pip: nvidia-cuda-runtime)" || echo "crt/host_config.h (pip: nvidia-cuda-crt${version:+==$version})")
        echo "build-shim: NCCL process groups need CUDA's $missing, which this PyTorch's nvidia packages lack: install it beside torch, or set CUDA_HOME to a CUDA toolkit, or build without NCCL with CT_NCCL=0" >&2
        exit 1
      fi
      flags+=(-DCT_WITH_NCCL -DUSE_C10D_NCCL)
    fi
  fi
else
  [ -f /usr/include/torch/csrc/api/include/torch/torch.h ] || { echo "build-shim: Debian's libtorch-dev is not installed (make deps installs it)" >&2; exit 1; }
  out=.build-shim/debian
  flags+=(-I/usr/include/torch/csrc/api/include)
  # Debian's OpenBLAS comes in a pthreads build (the default) and an OpenMP build that shares libtorch's OpenMP
  # threads (the model benchmark runs 4-5x faster on 2 cores). An RPATH, searched for libtorch's own dependencies
  # too (unlike RUNPATH), selects it without touching the system's alternatives.
  link+=(-Wl,--disable-new-dtags)
  for arch in x86_64 aarch64; do link+=(-Wl,-rpath,/usr/lib/$arch-linux-gnu/openblas-openmp); done
fi
link+=(-ltorch -ltorch_cpu -lc10)

# The C++ standard the headers need: C++17 up to PyTorch 2.14, C++20 from 2.15 (`requires` in ATen's TensorBase.h).
# A one-line probe decides, once per output folder and compiler.
mkdir -p "$out"
if [ ! -f "$out/std" ] || [ "$(head -1 "$out/std")" != "$cxx" ]; then
  std=c++17
  printf '#include <ATen/core/TensorBase.h>\n' | $cxx -std=c++17 "${flags[@]:1}" -x c++ -fsyntax-only - 2>/dev/null || std=c++20
  printf '%s\n%s\n' "$cxx" "$std" >"$out/std"
fi
flags[0]=-std=$(tail -1 "$out/std")

mkdir -p "$out/obj"
# A change of compiler or flags recompiles everything.
stamp="$cxx ${flags[*]} ${link[*]}"
[ -f "$out/flags" ] && [ "$(cat "$out/flags")" = "$stamp" ] || { rm -f "$out"/obj/*.o; printf '%s' "$stamp" >"$out/flags"; }

stale=()
for f in "$src"/*.cpp; do
  o="$out/obj/$(basename "${f%.cpp}").o"
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$src/internal.h" -nt "$o" ] || [ "$src/kernels.h" -nt "$o" ] ||
     [ "$src/include/ctorch.h" -nt "$o" ]; then
    stale+=("$f")
  fi
done
lib="$out/librealign_torch.so"
if [ ${#stale[@]} -gt 0 ]; then
  echo "build-shim: compiling ${#stale[@]} file(s) against ${LIBTORCH:-the Debian libtorch} with $cxx" >&2
  export cxx out
  printf '%s\n' "${stale[@]}" | xargs -P "${JOBS:-$(nproc)}" -I{} bash -c \
    'o="$out/obj/$(basename {} .cpp).o"; $cxx "$@" -c {} -o "$o.tmp" && mv "$o.tmp" "$o"' _ "${flags[@]}"
fi
newest=$(ls -t "$out"/obj/*.o | head -1)
if [ ! -f "$lib" ] || [ "$newest" -nt "$lib" ]; then
  $cxx -shared -o "$lib.tmp" "$out"/obj/*.o -Wl,-soname,librealign_torch.so "${link[@]}"
  mv "$lib.tmp" "$lib"
fi
echo "$out"
