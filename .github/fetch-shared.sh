#!/usr/bin/env bash
# GitHub Actions only: puts the test assets the suite reads from ../shared beside the
# checkout, as the development machines have them: the tiny model (verified against its
# sha256) and OpenAI's published OpenAPI document (openai/openai-openapi at f85dbe2).
#   .github/fetch-shared.sh <dir>
set -euo pipefail
dir="$1"
mkdir -p "$dir/models" "$dir/openai-openapi"
curl -fsSL --retry 3 -o "$dir/models/stories260K.gguf" https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf
echo "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d  $dir/models/stories260K.gguf" | sha256sum -c -
curl -fsSL --retry 3 -o "$dir/openai-openapi/openapi.json" https://raw.githubusercontent.com/openai/openai-openapi/f85dbe2/openapi.json
