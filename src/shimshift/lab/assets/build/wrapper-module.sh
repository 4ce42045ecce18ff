#!/usr/bin/env bash
# Write, in DIR, a wrapper Go module that depends on MODULE@VERSION with MODULE's own replace block.
# usage: wrapper-module.sh MODULE VERSION DIR
#
# Why a wrapper module: `go install MODULE/cmd/x@VERSION` ignores the module's own replace
# directives, and both k8s.io/kubernetes and cri-dockerd depend on theirs (k/k points its staging
# repos at ./staging/src, which a module download does not contain). So the wrapper copies the
# dependency's replace block and maps each ./staging/src/k8s.io/NAME to the published k8s.io/NAME
# v0.MINOR.PATCH (docs/lab.md, "Building Kubernetes and cri-dockerd from Go modules"). With
# LOCAL_SOURCE set, MODULE itself is replaced by that directory (a copy with generated code added,
# see gen-kube-openapi.sh).
set -euo pipefail
module=$1 version=$2 dir=$3
export GOFLAGS=-mod=mod
modfile=$(cd /tmp && go mod download -json "$module@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
staging_version="v0.${version#v1.}"
# The wrapper declares the dependency's own `go` line: Go refuses a main module older than a
# dependency (cri-dockerd v0.3.17 says go 1.23.7), and GODEBUG defaults then match upstream's.
go_line=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$modfile")
mkdir -p "$dir"
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
    sed -E "s#^[[:space:]]*([^ ]+) => \./staging/src/([^ ]+)\$#\t\1 => \2 $staging_version#" |
    # k/k 1.21 and 1.22 pin github.com/modern-go/reflect2 v1.0.1, whose map iterators fault at run time
    # when built with Go 1.18 or later (modern-go/reflect2#26, fixed in v1.0.2): the same fix as for CoreDNS.
    sed -E "s#(github.com/modern-go/reflect2 => github.com/modern-go/reflect2) v1\.0\.1\$#\1 v1.0.2#"
  [ -z "${LOCAL_SOURCE:-}" ] || printf '\t%s => %s\n' "$module" "$LOCAL_SOURCE"
  echo ")"
} > "$dir/go.mod"
# This machine's Go module proxy refuses a few staging modules at their release's own version
# (k8s.io/kube-controller-manager v0.22.17: 403 "not available"). The staging modules are re-tagged at
# every patch release; such a module is taken at the newest earlier patch of the same minor the proxy
# serves, and the build says so. A staging module served at no patch of the minor (k8s.io/sample-cli-plugin:
# no v0.21.x, v0.25.x or v0.26.x) becomes an empty local module: Go needs the go.mod of every module
# k8s.io/kubernetes requires even where nothing is compiled from it, and a binary that did import a package
# from it would fail to build ("does not contain package"), so the stand-in cannot change what is built.
for name in $(sed -n "s#^\t\(k8s.io/[^ ]*\) => [^ ]* $staging_version\$#\1#p" "$dir/go.mod"); do
  (cd /tmp && go mod download "$name@$staging_version" > /dev/null 2>&1) && continue
  patch=${staging_version##*.} served=""
  while [ "$patch" -gt 0 ]; do
    patch=$((patch - 1))
    if (cd /tmp && go mod download "$name@${staging_version%.*}.$patch" > /dev/null 2>&1); then
      served=${staging_version%.*}.$patch
      break
    fi
  done
  if [ -z "$served" ]; then
    mkdir -p "$dir/unserved/$name"
    printf 'module %s\n' "$name" > "$dir/unserved/$name/go.mod"
    echo "wrapper-module: the Go module proxy serves no $name ${staging_version%.*}.x; an empty module stands in" >&2
    sed -i "s#^\t$name => $name $staging_version\$#\t$name => ./unserved/$name#" "$dir/go.mod"
    continue
  fi
  echo "wrapper-module: $name $staging_version is not served; using $served" >&2
  sed -i "s#^\t$name => $name $staging_version\$#\t$name => $name $served#" "$dir/go.mod"
done
