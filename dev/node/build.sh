#!/usr/bin/env bash
# Builds a real node's binaries once into a cache outside the clone and prints its bin
# folder: kubelet and kube-proxy (from dev/node/go, at the control plane's Kubernetes
# version) and the pod sandbox's `pause` (Kubernetes' own pause.c, static, from the same
# module). Reused while the versions, this script and the wrapper module are unchanged.
#   dev/node/build.sh   -> prints e.g. ~/.cache/paddock/node-v1.35.4-<hash>/bin
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../cluster/versions.env
source "$here/../cluster/versions.env"

key="$(cat "$here/../cluster/versions.env" "$here/build.sh" "$here/go/go.mod" "$here/go/go.sum" "$here"/go/cmd/*/main.go | sha256sum | cut -c1-12)"
root="${PADDOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}"
out="$root/node-$KUBERNETES_VERSION-$key"
bin="$out/bin"
if [[ -f "$out/.complete" ]]; then
  echo "$bin"
  exit 0
fi

log() { printf '[node build] %s\n' "$*" >&2; }
mkdir -p "$bin"
started=$SECONDS
minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
log "kubelet and kube-proxy $KUBERNETES_VERSION (cold: several minutes on 2 cores)"
(cd "$here/go" && go build -trimpath -ldflags "$ldflags" -o "$bin/" ./cmd/...)
log "pause"
pause_c="$(cd "$here/go" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
gcc -Os -static -DVERSION="$KUBERNETES_VERSION-paddock" -o "$bin/pause" "$pause_c"
strip "$bin/pause"
touch "$out/.complete"
find "$root" -mindepth 1 -maxdepth 1 -name 'node-*' ! -name "$(basename "$out")" -exec rm -rf {} +
log "built in $((SECONDS - started)) s"
echo "$bin"
