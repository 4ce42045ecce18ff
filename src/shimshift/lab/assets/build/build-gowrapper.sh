#!/usr/bin/env bash
# Build main packages from published Go modules that `go install M@V` cannot build, through the Go
# module proxy only, in a throwaway module that requires them.
# usage: [CGO_ENABLED=1] build-gowrapper.sh OUTDIR LDFLAGS OUT=PKG[,OUT=PKG...] MODULE@VERSION...
#   OUT=PKG  build package PKG into OUTDIR/OUT
#   MODULE@VERSION  what the wrapper requires (the modules of the packages, plus pins such as
#                   github.com/modern-go/reflect2@v1.0.2)
# Why a wrapper: etcd 3.5 keeps replace directives in server/v3's go.mod, so `go install` refuses it;
# in a wrapper those replace lines are ignored and every sibling module (api, client, pkg, raft)
# resolves to the same published version (go.etcd.io/etcd/server/v3 v3.5.6 go.mod). It also lets
# the lab pin github.com/modern-go/reflect2 v1.0.2, which CoreDNS 1.8.x predates: reflect2 v1.0.1
# declares runtime map iterators with their pre-Go-1.18 signature and faults at run time when built
# with a newer Go (modern-go/reflect2#26, fixed in v1.0.2).
set -euo pipefail
outdir=$1 ldflags=$2 targets=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=${CGO_ENABLED:-0}
go mod init shimshift.local/labaddon > /dev/null 2>&1
# `go get` raises the wrapper's go line to the highest its requirements declare.
go get "$@"
mkdir -p "$outdir"
IFS=, read -ra pairs <<< "$targets"
for pair in "${pairs[@]}"; do
  go build -trimpath -ldflags "$ldflags" -o "$outdir/${pair%%=*}.tmp" "${pair#*=}"
  mv "$outdir/${pair%%=*}.tmp" "$outdir/${pair%%=*}"
done
