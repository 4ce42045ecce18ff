#!/usr/bin/env bash
# Build crictl (sigs.k8s.io/cri-tools) at VERSION into OUTDIR/crictl; skipped when it is there.
# usage: build-crictl.sh VERSION OUTDIR
#
# Why: kubeadm 1.24 talks to every container runtime through crictl and refuses to run without it
# (k8s.io/kubernetes v1.24.17 cmd/kubeadm/app/util/runtime/runtime.go NewContainerRuntime, and the
# mandatory InPath check in preflight/checks.go); kubeadm 1.23 on dockershim used the docker CLI,
# so the lab's nodes have no crictl. The kubeadm packages pull it in as the cri-tools package.
# This machine's Go module proxy serves v1.34.0 and v1.37.0 (not v1.35.0); crictl speaks CRI v1,
# which cri-dockerd v0.3.17 serves. The version variable is the one upstream's Makefile stamps
# (pkg/version.Version, `git describe` without the leading v).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$1 outdir=$2
module=sigs.k8s.io/cri-tools
[ -x "$outdir/crictl" ] && exit 0
"$here/build-gomod.sh" "$module" "$version" "$outdir" \
  "-s -w -X $module/pkg/version.Version=${version#v}" "" "$module/cmd/crictl"
