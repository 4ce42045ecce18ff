#!/usr/bin/env bash
# Build kwok at VERSION into OUTDIR/kwok; skipped when it is already there.
# usage: build-kwok.sh VERSION OUTDIR
#
# kwok is only the scale rig's fake kubelet (benchmarks/ and tests/e2e/scale/), never the product's, so
# this script lives with the rig; it builds through the lab's Go-module builder like every lab binary.
# Its stage YAML (kustomize/stage/...) is read from the module download for the rig's checked-in copy.
set -euo pipefail
lab_build=$(cd "$(dirname "$0")/../../src/shimshift/lab/assets/build" && pwd)
version=$1 outdir=$2
module=sigs.k8s.io/kwok
if [ -x "$outdir/kwok" ]; then
  exit 0
fi
info=$(cd /tmp && go mod download -json "$module@$version") || {
  echo "go mod download $module@$version failed:" >&2; echo "$info" >&2; exit 1; }
# pkg/consts already carries the release version; nothing to stamp.
ldflags="-s -w"
"$lab_build/build-gomod.sh" "$module" "$version" "$outdir" "$ldflags" "" "$module/cmd/kwok"
