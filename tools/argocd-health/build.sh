#!/usr/bin/env bash
# Builds tools/argocd-health (main.go: this project's health checks in Argo CD's own Lua engine, from the
# argo-cd module pinned in go.mod) into a cache folder keyed by the argo-cd version, the Go version and a
# hash of the tool's files, so a second run does nothing.
#   tools/argocd-health/build.sh        build (if needed) and print nothing but progress
#   tools/argocd-health/build.sh path   print the binary's path (built or not)
# MODELARTS_ARGOCD_HEALTH_CACHE overrides the cache root (default ~/.cache/modelarts-operator/argocd-health).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

argocd_version=$(awk '$1 == "require" && $2 == "github.com/argoproj/argo-cd/v3" { print $3; exit }
                      $1 == "github.com/argoproj/argo-cd/v3" { print $2; exit }' "$here/go.mod")
go_version=$(go env GOVERSION)
sources=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
key="argo-cd-${argocd_version}_${go_version}_${sources}"
dir="${MODELARTS_ARGOCD_HEALTH_CACHE:-$HOME/.cache/modelarts-operator/argocd-health}/$key"
binary="$dir/argocd-health"

if [ "${1:-}" = path ]; then
  echo "$binary"
  exit 0
fi

if [ -x "$binary" ]; then
  echo "argocd-health: $key already built in $dir"
  exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "argocd-health: building $key into $dir (first build on 2 cores: about 6 minutes; Go's caches make the next one quick)"
# -trimpath: reproducible paths; -ldflags -s -w: no symbol tables (not needed here).
(cd "$here" && go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp/argocd-health" .)
mv "$tmp/argocd-health" "$binary"
echo "argocd-health: built in $(( $(date +%s) - start )) s"
