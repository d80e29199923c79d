#!/usr/bin/env bash
# Builds the test control plane once into a cache outside the clone and prints its bin
# folder. Reused while the pinned versions and the wrapper module are unchanged.
#   dev/cluster/build.sh            -> prints e.g. ~/.cache/paddock/k8s-v1.35.4-<hash>/bin
# Binaries: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd
# (from dev/cluster/go), kwok and helm (go install at pinned versions).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

key="$(cat "$here/versions.env" "$here/build.sh" "$here/go/go.mod" "$here/go/go.sum" "$here"/go/cmd/*/main.go | sha256sum | cut -c1-12)"
root="${PADDOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}"
out="$root/k8s-$KUBERNETES_VERSION-$key"
bin="$out/bin"
if [[ -f "$out/.complete" ]]; then
  echo "$bin"
  exit 0
fi

log() { printf '[cluster build] %s\n' "$*" >&2; }
mkdir -p "$bin"
started=$SECONDS
minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

log "kubernetes $KUBERNETES_VERSION and etcd $ETCD_VERSION (cold: tens of minutes on 2 cores)"
(cd "$here/go" && go build -trimpath -ldflags "$ldflags" -o "$bin/" ./cmd/...)
log "kwok $KWOK_VERSION"
GOBIN="$bin" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
# KWOK's "fast" stage profile (node-initialize, lease heartbeat, pod ready/complete/delete),
# from the same module version, next to the binary.
stages="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  cat "$stages/$f"; echo "---"
done > "$bin/kwok-stages.yaml"
log "helm $HELM_VERSION"
# As helm's Makefile does: without these, offline `helm template` assumes Kubernetes v1.20.
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
done
GOBIN="$bin" go install -trimpath -ldflags "$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
touch "$out/.complete"
# Older builds (other versions or wrapper sources) are dead weight: keep only this one.
find "$root" -mindepth 1 -maxdepth 1 -name 'k8s-*' ! -name "$(basename "$out")" -exec rm -rf {} +
log "built in $((SECONDS - started)) s"
echo "$bin"
