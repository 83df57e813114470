#!/usr/bin/env bash
# Builds Argo CD's application controller and repo server (main.go: one multi-call binary, as Argo CD
# ships, from the argo-cd module pinned in go.mod) into a cache folder keyed by the argo-cd version, the
# Go version and a hash of this folder's files, so a second run does nothing. The folder also gets the
# names the binary answers to (argocd-application-controller, argocd-repo-server, and argocd, which the
# repo server runs as git's GIT_ASKPASS helper), as links.
#   tools/argocd/build.sh        build (if needed) and print nothing but progress
#   tools/argocd/build.sh dir    print the folder (built or not)
# MODELARTS_ARGOCD_CACHE overrides the cache root (default ~/.cache/modelarts-operator).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

argocd_version=$(awk '$1 == "require" && $2 == "github.com/argoproj/argo-cd/v3" { print $3; exit }
                      $1 == "github.com/argoproj/argo-cd/v3" { print $2; exit }' "$here/go.mod")
go_version=$(go env GOVERSION)
sources=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
key="argocd-${argocd_version}_${go_version}_${sources}"
dir="${MODELARTS_ARGOCD_CACHE:-$HOME/.cache/modelarts-operator}/$key"
names=(argocd-application-controller argocd-repo-server argocd)

if [ "${1:-}" = dir ]; then
  echo "$dir"
  exit 0
fi

if [ -x "$dir/argocd-multicall" ] && [ -f "$dir/crds/application-crd.yaml" ]; then
  echo "argocd: $key already built in $dir"
  exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "argocd: building $key into $dir (first build on 2 cores: about 7 minutes; Go's caches make the next one quick)"
# -trimpath: reproducible paths; -ldflags -s -w: no symbol tables. The version Argo CD reports (and
# writes into its logs) is set as its release build sets it.
pkg=github.com/argoproj/argo-cd/v3/common
ldflags="-s -w -X $pkg.version=${argocd_version#v} -X $pkg.gitTag=$argocd_version -X $pkg.gitTreeState=clean"
(cd "$here" && go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp/argocd-multicall" .)
for name in "${names[@]}"; do
  ln -sf argocd-multicall "$tmp/$name"
done
# Argo CD's CRDs (Application, AppProject, ApplicationSet) of the same release, for the test to install.
module_dir=$(cd "$here" && go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)
mkdir "$tmp/crds"
cp "$module_dir"/manifests/crds/*-crd.yaml "$tmp/crds/"
chmod -R u+w "$tmp/crds"
rm -rf "$dir/crds"
mv "$tmp/crds" "$dir/"
for name in "${names[@]}"; do
  mv -f "$tmp/$name" "$dir/"
done
mv "$tmp/argocd-multicall" "$dir/"  # last: its presence means the folder is complete
echo "argocd: built in $(( $(date +%s) - start )) s"
