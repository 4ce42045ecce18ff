#!/usr/bin/env bash
# Build main packages of a published Go module at a pinned version, through the Go module proxy only.
# usage: build-gomod.sh MODULE VERSION OUTDIR LDFLAGS TAGS PKG...   (LOCAL_SOURCE: see wrapper-module.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module=$1 version=$2 outdir=$3 ldflags=$4 tags=$5
shift 5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/wrapper-module.sh" "$module" "$version" "$work"
cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$outdir"
go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$outdir/" "$@"
