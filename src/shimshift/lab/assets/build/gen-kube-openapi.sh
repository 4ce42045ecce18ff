#!/usr/bin/env bash
# Make a writable copy of k8s.io/kubernetes at VERSION with pkg/generated/openapi filled in.
# usage: gen-kube-openapi.sh VERSION SRCDIR   (nothing happens when SRCDIR is already complete)
#
# Why: kube-apiserver imports pkg/generated/openapi, whose zz_generated.openapi.go is made by `make`
# and never committed, so the published module lacks it and `go build` fails with
# "undefined: generatedopenapi.GetOpenAPIDefinitions". We run the generator upstream's
# build/root/Makefile.generated_files runs (k8s.io/kube-openapi's openapi-gen at the version k/k
# pins) over the same inputs: every package with a +k8s:openapi-gen= tag in k/k and in the staging
# modules (code-generator and sample-apiserver excluded, as upstream does).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$1 srcdir=$2
[ -s "$srcdir/pkg/generated/openapi/zz_generated.openapi.go" ] && exit 0
export GOFLAGS=-mod=mod CGO_ENABLED=0
module_dir() { (cd /tmp && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'); }

partial="$srcdir.partial"
rm -rf "$partial"
mkdir -p "$(dirname "$partial")"
cp -r "$(module_dir "k8s.io/kubernetes@$version")" "$partial"
chmod -R u+w "$partial"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
LOCAL_SOURCE="$partial" "$here/wrapper-module.sh" k8s.io/kubernetes "$version" "$work"
cd "$work"
# golang.org/x/tools releases that have internal/tokeninternal but predate v0.34 do not compile with Go
# 1.25 and later ("invalid array length -delta * delta", golang/go#74462); k/k 1.30 and later pin such a
# version for their generators (1.21 to 1.24 pin older ones, which compile). openapi-gen only needs one
# that compiles (the generated code does not depend on it): on that error its build takes v0.34.0 (which
# compiles here; v0.30.0 does not).
if ! go build -o "$work/openapi-gen" k8s.io/kube-openapi/cmd/openapi-gen 2> "$work/openapi-gen.err"; then
  cat "$work/openapi-gen.err" >&2
  grep -q 'internal/tokeninternal' "$work/openapi-gen.err" || exit 1
  go mod edit -replace golang.org/x/tools=golang.org/x/tools@v0.34.0
  go build -o "$work/openapi-gen" k8s.io/kube-openapi/cmd/openapi-gen
fi

tagged_packages() {  # IMPORT_PREFIX DIR
  # Some staging modules have no tagged package: an empty grep is not an error here.
  { (cd "$2" && grep -rl --include='*.go' '+k8s:openapi-gen=' .) || true; } |
    { grep -v -e '^\./vendor/' -e '^\./staging/' || true; } |
    xargs -r -n1 dirname | sort -u | sed "s#^\.#$1#"
}
staging_version="v0.${version#v1.}"
{
  tagged_packages k8s.io/kubernetes "$partial"
  for name in api apimachinery apiextensions-apiserver kube-aggregator apiserver kube-proxy kubelet \
              kube-scheduler kube-controller-manager metrics cloud-provider controller-manager client-go \
              component-base cluster-bootstrap cli-runtime kubectl pod-security-admission; do
    tagged_packages "k8s.io/$name" "$(module_dir "k8s.io/$name@$staging_version")"
  done
} > "$work/inputs"

# (--help exits non-zero, and a grep -q in the same pipe would cut it short under pipefail)
usage=$("$work/openapi-gen" --help 2>&1 || true)
if [[ "$usage" == *--output-dir* ]]; then
  # openapi-gen on gengo/v2 (k/k 1.30 and later): packages as arguments, an output directory
  # (k/k v1.30.14 hack/update-codegen.sh, codegen::openapi).
  mkdir -p "$work/out/k8s.io/kubernetes/pkg/generated/openapi"
  "$work/openapi-gen" \
    --output-file zz_generated.openapi.go \
    --output-dir "$work/out/k8s.io/kubernetes/pkg/generated/openapi" \
    --output-pkg k8s.io/kubernetes/pkg/generated/openapi \
    --go-header-file "$partial/hack/boilerplate/boilerplate.generatego.txt" \
    --report-filename "$work/api-rule-violations.txt" \
    $(cat "$work/inputs")
else
  "$work/openapi-gen" \
    --input-dirs "$(paste -sd, "$work/inputs")" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-file-base zz_generated.openapi \
    --go-header-file "$partial/hack/boilerplate/boilerplate.generatego.txt" \
    --report-filename "$work/api-rule-violations.txt" \
    --output-base "$work/out"
fi
cp "$work/out/k8s.io/kubernetes/pkg/generated/openapi/zz_generated.openapi.go" "$partial/pkg/generated/openapi/"
rm -rf "$srcdir"
mv "$partial" "$srcdir"
