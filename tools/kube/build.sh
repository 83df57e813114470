#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from their Go modules (tools/kube/*/go.mod)
# into a cache folder keyed by their versions and the Go version, so a second run does nothing.
#   tools/kube/build.sh        build (if needed) and print nothing but progress
#   tools/kube/build.sh dir    print the folder the binaries live in
# MODELARTS_KUBE_CACHE overrides the cache root (default ~/.cache/modelarts-operator/kube).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

version_of() {  # the version go.mod requires of module $2, in folder $1
  awk -v m="$2" '$1 == m || ($1 == "require" && $2 == m) { print ($1 == "require" ? $3 : $2); exit }' "$here/$1/go.mod"
}
kube_version=$(version_of kubernetes k8s.io/kubernetes)
etcd_version=$(version_of etcd go.etcd.io/etcd/server/v3)
go_version=$(go env GOVERSION)
key="kubernetes-${kube_version}_etcd-${etcd_version}_${go_version}"
dir="${MODELARTS_KUBE_CACHE:-$HOME/.cache/modelarts-operator/kube}/$key"

if [ "${1:-}" = dir ]; then
  echo "$dir"
  exit 0
fi

if [ -x "$dir/etcd" ] && [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kube-controller-manager" ]; then
  echo "kube: $key already built in $dir"
  exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "kube: building $key into $dir (first build on 2 cores: about 7 minutes; Go's caches make the next one quick)"
# -trimpath: reproducible paths; -ldflags -s -w: no symbol tables (a third of the size, not needed here).
flags=(-trimpath -ldflags "-s -w")
(cd "$here/etcd" && go build "${flags[@]}" -o "$tmp/etcd" .)
# /version answers what a release build answers (kubectl and clients compare it with their own).
minor=$(echo "$kube_version" | cut -d. -f2)
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
flags=(-trimpath -ldflags "$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z")
echo "kube: etcd $etcd_version built ($(( $(date +%s) - start )) s)"
(cd "$here/kubernetes" && go build "${flags[@]}" -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager)
echo "kube: kube-apiserver and kube-controller-manager $kube_version built ($(( $(date +%s) - start )) s)"
mv "$tmp"/etcd "$tmp"/kube-apiserver "$tmp"/kube-controller-manager "$dir/"
