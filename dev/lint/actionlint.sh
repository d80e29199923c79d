#!/usr/bin/env bash
# Lints the GitHub workflows (they cannot run here) with actionlint, built once from its Go
# module into ~/.cache/paddock like the control plane. `npm run lint` runs it.
set -euo pipefail
version=v1.7.12
root="${PADDOCK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock}"
bin="$root/actionlint-$version/actionlint"
if [[ ! -x "$bin" ]]; then
  printf '[lint] building actionlint %s\n' "$version" >&2
  GOBIN="$(dirname "$bin")" go install -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$version"
fi
cd "$(dirname "$0")/../.."
# Every action is pinned by a full commit (and names its release in a comment).
if grep -nE '^\s*(-\s*)?uses:\s*[^.][^@]*@' .github/workflows/*.yml | grep -vE '@[0-9a-f]{40} # v[0-9]'; then
  echo "actionlint.sh: pin each action above by its 40-hex commit, with '# vX.Y.Z' after it" >&2
  exit 1
fi
exec "$bin" -no-color
