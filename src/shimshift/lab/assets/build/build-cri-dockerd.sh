#!/usr/bin/env bash
# Build cri-dockerd at VERSION into OUTDIR/cri-dockerd and copy its systemd units next to it
# (OUTDIR/systemd/cri-docker.{service,socket}); skipped when both are already there.
# usage: build-cri-dockerd.sh VERSION OUTDIR
#
# The version variables are the ones upstream's Makefile stamps (cmd/version: Version without the
# leading v, PreRelease empty for a release, GitCommit the short commit), taken here from the module
# proxy's .info Origin instead of `git describe`, so `cri-dockerd --version` reads like a release.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$1 outdir=$2
module=github.com/Mirantis/cri-dockerd
if [ -x "$outdir/cri-dockerd" ] && [ -f "$outdir/systemd/cri-docker.service" ] &&
   [ -f "$outdir/systemd/cri-docker.socket" ]; then
  exit 0
fi
# This machine's Go module proxy refuses some versions (403 "not available"): say so plainly.
info=$(cd /tmp && go mod download -json "$module@$version") || {
  echo "go mod download $module@$version failed:" >&2; echo "$info" >&2; exit 1; }
dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<< "$info")
commit=$(sed -n 's/^\t\t"Hash": "\(.*\)",\{0,1\}$/\1/p' <<< "$info")
[ -n "$dir" ] || { echo "go mod download $module@$version gave no Dir:" >&2; echo "$info" >&2; exit 1; }
pkg=github.com/Mirantis/cri-dockerd/cmd/version
ldflags="-s -w -X $pkg.Version=${version#v} -X $pkg.PreRelease= -X $pkg.GitCommit=${commit:0:7}"
"$here/build-gomod.sh" "$module" "$version" "$outdir" "$ldflags" "" "$module"
mkdir -p "$outdir/systemd"
install -m 0644 "$dir/packaging/systemd/cri-docker.service" "$dir/packaging/systemd/cri-docker.socket" \
  "$outdir/systemd/"
