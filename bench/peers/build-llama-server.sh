#!/usr/bin/env bash
# Builds llama.cpp's llama-server (the peer the data-plane benchmarks compare against),
# llama-bench (the kernels' floor: prompt and decode speed with no server at all) and
# llama-batched-bench (the floor for decoding several sequences in one batch), from
# the llama.cpp tree inside llama-cpp-python's source distribution on PyPI. Cached outside
# the clone, keyed by version and this script; prints the binary's path. Benchmarks only:
# no test or CI step needs it.
#   bench/peers/build-llama-server.sh   -> ~/.cache/paddock/llama-server-<version>-<hash>/bin/llama-server
# (llama-bench and llama-batched-bench beside it in the same bin folder)
# Built for this CPU (GGML_NATIVE): the strongest baseline a user building it here would get.
set -euo pipefail
LLAMA_CPP_PYTHON_VERSION="0.3.36"
here="$(cd "$(dirname "$0")" && pwd)"
key="$(sha256sum "$here/build-llama-server.sh" | cut -c1-12)"
root="${PADDOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}"
out="$root/llama-server-$LLAMA_CPP_PYTHON_VERSION-$key"
if [[ -f "$out/.complete" ]]; then
  echo "$out/bin/llama-server"
  exit 0
fi
log() { printf '[llama-server build] %s\n' "$*" >&2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist from PyPI"
python3 -m pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$work" >&2
tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
log "configuring $src"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >&2
started=$SECONDS
log "building (about 10 minutes on 2 cores)"
cmake --build "$work/build" --target llama-server llama-bench llama-batched-bench -j "$(nproc)" >&2
mkdir -p "$out/bin"
cp "$work/build/bin/llama-server" "$work/build/bin/llama-bench" "$work/build/bin/llama-batched-bench" "$out/bin/"
git -C "$src" rev-parse HEAD >"$out/commit" 2>/dev/null || echo "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION" >"$out/commit"
touch "$out/.complete"
log "built in $((SECONDS - started)) s"
echo "$out/bin/llama-server"
