#!/usr/bin/env bash
# Generate k8s.io/kubernetes/pkg/generated/openapi for a build of kube-apiserver.
# usage (from build-gomod.sh, in the wrapper module's folder): gen-kube-openapi.sh MODULE VERSION MODFILE
#
# k/k generates zz_generated.openapi.go at build time (build/root/Makefile.generated_files, target
# gen_openapi) and never commits it, so the published module lacks it and kube-apiserver fails with
# "undefined: generatedopenapi.GetOpenAPIDefinitions". This does what that target does: openapi-gen
# from the kube-openapi version k/k pins, over every package of k/k and its staging repos (less
# code-generator and sample-apiserver) with a `+k8s:openapi-gen=` tag in a file that has a
# column-0 `// +k8s:` tag. The wrapper then builds from a writable copy of k/k holding the result.
# The API rule report must equal k/k's api/api-rules/violation_exceptions.list, as the Makefile
# demands: that also shows the package set is upstream's.
set -euo pipefail
module=$1 version=$2 modfile=$3
[ "$module" = k8s.io/kubernetes ] || { echo "gen-kube-openapi.sh is for k8s.io/kubernetes, not $module" >&2; exit 1; }
src=$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
rm -rf kubernetes openapi-out
cp -r "$src" kubernetes
chmod -R u+w kubernetes
go mod edit -replace "k8s.io/kubernetes=./kubernetes"
go build -o openapi-gen k8s.io/kube-openapi/cmd/openapi-gen

tagged_dirs() {  # tagged_dirs ROOT IMPORT_PATH: import paths of ROOT's openapi-tagged packages
  (cd "$1" && find . \( -name '_*' -o -name '.[^.]*' -o \( -name vendor -type d \) \) -prune -o \
      -type f -name '*.go' -print |
    xargs -r grep -l '^// *+k8s:' | xargs -r grep -l '+k8s:openapi-gen=' | xargs -r -n1 dirname |
    LC_ALL=C sort -u | sed "s#^\.#$2#")
}
staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/src/.*#\1#p' "$modfile" |
  grep -vE '^k8s.io/(code-generator|sample-apiserver)$')
inputs=$(
  tagged_dirs kubernetes k8s.io/kubernetes
  for m in $staging; do
    # Staging repos nothing in k/k imports (sample-cli-plugin, ...) are not in the build list.
    dir=$(go list -m -f '{{.Dir}}' "$m" 2>/dev/null) || continue
    tagged_dirs "$dir" "$m"
  done
)
./openapi-gen -i "$(paste -sd, <<< "$inputs")" -p k8s.io/kubernetes/pkg/generated/openapi \
  -O zz_generated.openapi -h kubernetes/hack/boilerplate/boilerplate.generatego.txt \
  -r openapi-report.txt -o openapi-out
if ! diff <(LC_ALL=C sort openapi-report.txt) <(LC_ALL=C sort kubernetes/api/api-rules/violation_exceptions.list); then
  echo "openapi-gen's API rule report differs from k/k's violation_exceptions.list (above)" >&2
  exit 1
fi
cp openapi-out/k8s.io/kubernetes/pkg/generated/openapi/zz_generated.openapi.go kubernetes/pkg/generated/openapi/
