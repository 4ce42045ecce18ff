#!/usr/bin/env bash
# Build what kubeadm's default addons and the lab's CNI daemon run, at the versions given, into
# CACHE/bin/<name>-<version>/ (each skipped when already there):
#   etcd-VERSION/{etcd,etcdctl}     go.etcd.io/etcd/{server,etcdctl}/v3 (kubeadm's etcd image tag minus "-0")
#   coredns-VERSION/coredns         github.com/coredns/coredns (kubeadm's CoreDNS image tag)
#   flannel-VERSION/flanneld        github.com/flannel-io/flannel, the CNI daemon
#   flannel-VERSION/flannel         its CNI plugin: github.com/containernetworking/plugins v0.9.1
#                                   plugins/meta/flannel (the plugin's last home in a module the Go
#                                   module proxy serves: github.com/flannel-io/cni-plugin, where it
#                                   moved in 2021, answers 403 "not available" here for every tag)
# usage: build-addons.sh CACHE ETCD_VERSION COREDNS_VERSION FLANNEL_VERSION
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
trap 'echo "== done in ${SECONDS}s"' EXIT
cache=$1 etcd=$2 coredns=$3 flannel=$4
dir=$cache/bin/etcd-$etcd
if [ ! -x "$dir/etcd" ] || [ ! -x "$dir/etcdctl" ]; then
  echo "== etcd $etcd (at ${SECONDS}s)"
  # etcd's Makefile stamps only the git SHA; the version is the constant in api/v3/version.
  # etcdctl is for operators only (kubeadm talks to etcd through its client library). Where this
  # machine's Go module proxy refuses etcdctl at the server's version (v3.5.24: 403 "not available"),
  # the newest etcdctl of the same minor below it that it serves is built, against the server's
  # libraries (the wrapper resolves api, client and pkg to the server's version).
  if [ "$etcd" = v3.4.13 ]; then
    # etcd 3.4 predates etcd's v3 modules, and the proxy refuses go.etcd.io/etcd@v3.4.13+incompatible
    # (403 "not available"); the commit tagged v3.4.13 (ae9734ed2, the Git SHA `etcd --version` of the
    # release reports) is served as a pseudo-version of go.etcd.io/etcd, whose version/version.go says
    # 3.4.13. reflect2 v1.0.2 as for CoreDNS 1.8 (see build-gowrapper.sh).
    "$here/build-gowrapper.sh" "$dir" "-s -w" "etcd=go.etcd.io/etcd,etcdctl=go.etcd.io/etcd/etcdctl" \
      "go.etcd.io/etcd@v0.5.0-alpha.5.0.20200824191128-ae9734ed278b" "github.com/modern-go/reflect2@v1.0.2"
  else
    etcdctl=$etcd patch=${etcd##*.}
    while ! (cd /tmp && go mod download "go.etcd.io/etcd/etcdctl/v3@$etcdctl" > /dev/null 2>&1); do
      [ "$patch" -gt 0 ] || { echo "no etcdctl ${etcd%.*}.x at or below $etcd is served" >&2; exit 1; }
      patch=$((patch - 1)) etcdctl=${etcd%.*}.$patch
    done
    [ "$etcdctl" = "$etcd" ] || echo "== etcdctl $etcdctl (the proxy does not serve etcdctl $etcd)"
    "$here/build-gowrapper.sh" "$dir" "-s -w" \
      "etcd=go.etcd.io/etcd/server/v3,etcdctl=go.etcd.io/etcd/etcdctl/v3" \
      "go.etcd.io/etcd/server/v3@$etcd" "go.etcd.io/etcd/etcdctl/v3@$etcdctl"
  fi
fi
dir=$cache/bin/coredns-$coredns
if [ ! -x "$dir/coredns" ]; then
  echo "== coredns $coredns (at ${SECONDS}s)"
  # reflect2 v1.0.2 only where CoreDNS requires an older one (1.8.x: v1.0.1, see build-gowrapper.sh);
  # CoreDNS 1.13 requires a later pseudo-version, which a v1.0.2 pin would be a refused downgrade of.
  # No pin where CoreDNS requires the module at or above the pin.
  gomod=$(cd /tmp && go mod download -json "github.com/coredns/coredns@$coredns" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  pin=()
  # at_least MODULE VERSION: pin MODULE at VERSION where CoreDNS requires an older one (never a downgrade).
  at_least() {
    local wanted
    wanted=$(awk -v m="$1" '$1 == m {print $2; exit}' "$gomod")
    [ "$(printf '%s\n%s\n' "${wanted:-v0}" "$2" | sort -V | head -1)" = "$2" ] || pin+=("$1@$2")
  }
  at_least github.com/modern-go/reflect2 v1.0.2
  # golang.org/x/net before v0.4.0 links to syscall.recvmsg (internal/socket/sys_unix.go), which Go 1.23's
  # linker refuses ("invalid reference to syscall.recvmsg", go.dev/doc/go1.23#linker): CoreDNS 1.9.x
  # requires v0.0.0-20220520000938; v0.4.0 is what CoreDNS 1.10.1 requires.
  at_least golang.org/x/net v0.4.0
  "$here/build-gowrapper.sh" "$dir" "-s -w" "coredns=github.com/coredns/coredns" \
    "github.com/coredns/coredns@$coredns" "${pin[@]}"
fi
dir=$cache/bin/flannel-$flannel
if [ ! -x "$dir/flanneld" ]; then
  echo "== flanneld $flannel (at ${SECONDS}s)"
  # As upstream's Makefile builds it for amd64: with cgo (the udp backend's packet proxy is C), linked
  # statically so the image needs no libc.
  CGO_ENABLED=1 "$here/build-gowrapper.sh" "$dir" \
    "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$flannel -extldflags -static" \
    "flanneld=github.com/flannel-io/flannel" "github.com/flannel-io/flannel@$flannel"
fi
if [ ! -x "$dir/flannel" ]; then
  echo "== flannel CNI plugin (containernetworking/plugins v0.9.1) (at ${SECONDS}s)"
  "$here/build-gowrapper.sh" "$dir" "-s -w" \
    "flannel=github.com/containernetworking/plugins/plugins/meta/flannel" \
    github.com/containernetworking/plugins@v0.9.1
fi
