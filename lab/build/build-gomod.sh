#!/usr/bin/env bash
# Build main packages of a published Go module at a pinned version, through the Go module proxy only.
#
# usage: build-gomod.sh MODULE VERSION OUTDIR LDFLAGS TAGS PKG...
# If BUILD_GOMOD_PREPARE names an executable, it runs in the wrapper module's folder after go.mod is
# written and before the build, as `$BUILD_GOMOD_PREPARE MODULE VERSION MODFILE` (build-kubernetes.sh
# uses it to generate code the module does not ship).
#
# Why a wrapper module: `go install MODULE/cmd/x@VERSION` ignores the module's own replace
# directives, and both k8s.io/kubernetes and cri-dockerd depend on theirs (k/k points its staging
# repos at ./staging/src, which a module download does not contain). So the wrapper copies the
# dependency's replace block, maps each ./staging/src/k8s.io/NAME to the published k8s.io/NAME
# v0.MINOR.PATCH (see ../shared/reference/lab-build.md §1), and builds from there.
set -euo pipefail
module=$1 version=$2 outdir=$3 ldflags=$4 tags=$5
shift 5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

export GOFLAGS=-mod=mod CGO_ENABLED=0
modfile=$(go mod download -json "$module@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
staging_version="v0.${version#v1.}"
# The wrapper declares the dependency's own `go` line: Go refuses a main module older than a
# dependency (cri-dockerd v0.3.17 says go 1.23.7), and GODEBUG defaults then match upstream's.
go_line=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$modfile")

{
  echo "module shimshift.local/labbuild"
  echo
  echo "go ${go_line:-1.19}"
  echo
  echo "require $module $version"
  echo
  echo "replace ("
  # Every replace line of the dependency, one per line, in block or single-line form.
  awk '/^replace \($/ {inblock=1; next} inblock && /^\)$/ {inblock=0; next}
       inblock {print; next} /^replace [^(]/ {sub(/^replace /, ""); print}' "$modfile" |
    sed -E "s#^[[:space:]]*([^ ]+) => \./staging/src/([^ ]+)\$#\t\1 => \2 $staging_version#"
  echo ")"
} > go.mod
[ -z "${BUILD_GOMOD_PREPARE:-}" ] || "$BUILD_GOMOD_PREPARE" "$module" "$version" "$modfile"
mkdir -p "$outdir"
go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$outdir/" "$@"
