#!/usr/bin/env bash
# Build every image kubeadm and the kubelet run inside the lab's nodes, plus the CNI daemon's and
# the workload image, and save them all into one tarball for `docker load` in every node. Nothing
# is pulled.
# usage: build-inner-images.sh [--check] [--no-workload] BIN_DIR ETCD_DIR COREDNS_DIR FLANNEL_DIR OUT_TAR
#   --check        only say whether a build is due: exit 0 if up to date, 3 if not
#   --no-workload  leave the workload and flannel images out: the upgrade's tarball (BIN_DIR at
#                  v1.24.17) is loaded into nodes that already have them, and a re-import would
#                  retag them (FLANNEL_DIR is then not read)
#   BIN_DIR      the built kubeadm, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy;
#                the images are made for the version that kubeadm reports
#   ETCD_DIR     etcd and etcdctl (build-addons.sh) of the release kubeadm's etcd tag names
#   COREDNS_DIR  coredns (build-addons.sh) of the version kubeadm's CoreDNS tag names
#   FLANNEL_DIR  flanneld and its CNI plugin `flannel` (build-addons.sh)
# OUT_TAR is rebuilt only when the hash of the inputs (this script, pause.c, the binaries, Debian's
# busybox and iptables) differs from the one recorded in OUT_TAR.inputs. The images are removed from
# the host's Docker after the save: the tarball is the artifact.
#
# Names and tags are asked from the built kubeadm (`kubeadm config images list`), so they are exactly
# what that kubeadm looks for and nothing is ever pulled (registry.k8s.io since v1.23.15; etcd 3.5.6-0
# and CoreDNS v1.8.6 for both 1.23.17 and 1.24.17, k8s.io/kubernetes cmd/kubeadm/app/constants/constants.go
# at those tags). The etcd and CoreDNS binaries must be the versions those tags name: this script
# refuses a mismatch.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check=false workload=true
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=true; shift;;
    --no-workload) workload=false; shift;;
    *) break;;
  esac
done
bin_dir=$1 etcd_dir=$2 coredns_dir=$3 flannel_dir=$4 out=$5
workload_image=shimshift.local/busybox:1.0
busybox_bin=/bin/busybox      # Debian busybox-static
k8s_version=$("$bin_dir/kubeadm" version -o short)
components=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
# iptables (nft backend, as in the nodes: Debian bookworm's default) and conntrack for kube-proxy and
# flanneld, taken from this machine's Debian packages with the libraries they load.
xtables=/usr/sbin/xtables-nft-multi conntrack_bin=/usr/sbin/conntrack
xtables_ext=/usr/lib/x86_64-linux-gnu/xtables
flannel_files=()
$workload && flannel_files=("$flannel_dir/flanneld" "$flannel_dir/flannel")

libs_of() { ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; }

inputs=$(
  {
    sha256sum "$0" "$here/pause.c" | awk '{print $1}'
    # Binaries by size and modification time (see build-node-image.sh): the built ones, and Debian's
    # etcd, busybox and glibc, which change when their packages are upgraded.
    stat -L -c '%n %s %.9Y' "$bin_dir/kubeadm" "$busybox_bin" "$xtables" "$conntrack_bin" \
      $(libs_of "$xtables") $(libs_of "$conntrack_bin") "$xtables_ext"/*.so \
      "$etcd_dir/etcd" "$etcd_dir/etcdctl" "$coredns_dir/coredns" "${flannel_files[@]}" \
      "${components[@]/#/$bin_dir/}"
    gcc --version | head -1
    echo "workload=$workload"
  } | sha256sum | cut -c1-16
)
if [ -s "$out" ] && [ -s "$out.images" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
  exit 0
fi
$check && exit 3

mapfile -t wanted < <("$bin_dir/kubeadm" config images list --kubernetes-version "$k8s_version")
image_for() {  # image_for NAME -> the full reference kubeadm lists for that image name
  local ref
  for ref in "${wanted[@]}"; do
    case "$ref" in */"$1":*) echo "$ref"; return;; esac
  done
  echo "kubeadm config images list names no $1 image: ${wanted[*]}" >&2
  return 1
}

work=$(mktemp -d /var/tmp/shimshift-images.XXXXXX)
built=()
cleanup() {
  rm -rf "$work"
  [ ${#built[@]} -eq 0 ] || docker rmi "${built[@]}" > /dev/null 2>&1 || true
}
trap cleanup EXIT

skeleton() {  # skeleton DIR: what every image gets: /tmp, and root/nobody accounts for tools that look
  mkdir -p "$1/tmp" "$1/etc" "$1/usr/local/bin"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    > "$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
}
import() {  # import DIR REF CHANGE...: docker import of DIR as REF, labelled with the inputs hash
  local dir=$1 ref=$2
  shift 2
  local changes=(--change "LABEL io.shimshift.inputs=$inputs"
                 --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  for c in "$@"; do changes+=(--change "$c"); done
  tar --numeric-owner -C "$dir" -c . | docker import "${changes[@]}" - "$ref" > /dev/null
  built+=("$ref")
}

netfilter_tools() {  # netfilter_tools DIR: iptables/ip6tables (+ -save/-restore) on nft, conntrack, busybox
  local dir=$1 lib name
  mkdir -p "$dir/usr/sbin" "$dir/bin" "$dir/etc"
  install -m 0755 "$xtables" "$conntrack_bin" "$dir/usr/sbin/"
  for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -s xtables-nft-multi "$dir/usr/sbin/$name"
  done
  mkdir -p "$dir$xtables_ext"
  cp -a "$xtables_ext"/. "$dir$xtables_ext/"
  for lib in $( { libs_of "$xtables"; libs_of "$conntrack_bin"; for so in "$xtables_ext"/*.so; do libs_of "$so"; done; } | sort -u); do
    mkdir -p "$dir$(dirname "$lib")"
    [ -e "$dir$lib" ] || cp -L "$lib" "$dir$lib"
  done
  cp /etc/protocols /etc/services "$dir/etc/" 2> /dev/null || true
  install -m 0755 "$busybox_bin" "$dir/bin/busybox"
  for name in sh cp cat ls mkdir; do ln -s busybox "$dir/bin/$name"; done
}

# Control plane and kube-proxy: kubeadm's static pod manifests run `command: [<name>, --flags...]`
# and its kube-proxy DaemonSet `/usr/local/bin/kube-proxy`, so the binary has to be found on PATH; the
# binaries are static (CGO_ENABLED=0). kube-proxy (iptables mode) also calls iptables-save/-restore
# and conntrack.
for c in "${components[@]}"; do
  skeleton "$work/$c"
  [ "$c" != kube-proxy ] || netfilter_tools "$work/$c"
  install -m 0755 "$bin_dir/$c" "$work/$c/usr/local/bin/$c"
  import "$work/$c" "$(image_for "$c")"
done


tag_of() { echo "${1##*:}"; }
same_version() {  # same_version WHAT WANTED REPORTED: refuse a binary that is not what the tag names
  [ "$2" = "$3" ] || { echo "$1: kubeadm asks for $2 but the binary reports $3" >&2; exit 1; }
}

# etcd: the etcd release kubeadm's tag names ("3.5.6-0": etcd 3.5.6, image revision 0), static.
# kubeadm's static pod runs `etcd` from PATH; etcdctl is there for operators, as in the official image.
etcd_ref=$(image_for etcd)
etcd_tag=$(tag_of "$etcd_ref")
same_version etcd "${etcd_tag%-*}" "$("$etcd_dir/etcd" --version | sed -n 's/^etcd Version: //p')"
skeleton "$work/etcd"
install -m 0755 "$etcd_dir/etcd" "$etcd_dir/etcdctl" "$work/etcd/usr/local/bin/"
mkdir -p "$work/etcd/var/lib/etcd"
import "$work/etcd" "$etcd_ref"

# CoreDNS: kubeadm's Deployment gives only `args: [-conf, /etc/coredns/Corefile]`, so the image's
# entrypoint is the binary, as in upstream's Dockerfile (/coredns).
coredns_ref=$(image_for coredns)
same_version coredns "$(tag_of "$coredns_ref")" "v$("$coredns_dir/coredns" -version | sed -n 's/^CoreDNS-//p' | head -1)"
skeleton "$work/coredns"
install -m 0755 "$coredns_dir/coredns" "$work/coredns/coredns"
import "$work/coredns" "$coredns_ref" 'ENTRYPOINT ["/coredns"]'

# pause: the sandbox image dockershim starts first in every pod (our own program, pause.c).
skeleton "$work/pause"
gcc -static -s -O2 -Wall -Wextra -Werror -o "$work/pause/pause" "$here/pause.c"
import "$work/pause" "$(image_for pause)" 'ENTRYPOINT ["/pause"]'

# Workload image: busybox-static with a link per applet, /bin/sh included.
if $workload; then
  skeleton "$work/busybox"
  mkdir -p "$work/busybox/bin"
  install -m 0755 "$busybox_bin" "$work/busybox/bin/busybox"
  "$busybox_bin" --list-full | while read -r applet; do
    mkdir -p "$work/busybox/$(dirname "$applet")"
    [ -e "$work/busybox/$applet" ] || ln -s /bin/busybox "$work/busybox/$applet"
  done
  import "$work/busybox" "$workload_image" 'CMD ["/bin/sh"]'

  # flannel, the CNI daemon (render.flannel has its DaemonSet): flanneld at /opt/bin/flanneld as in
  # upstream's image, the CNI plugin at /flannel for the init container to `cp` onto the node, and
  # iptables for --ip-masq and its FORWARD rules.
  flannel_version=$("$flannel_dir/flanneld" --version 2>&1 | head -1)
  skeleton "$work/flannel"
  netfilter_tools "$work/flannel"
  mkdir -p "$work/flannel/opt/bin"
  install -m 0755 "$flannel_dir/flanneld" "$work/flannel/opt/bin/flanneld"
  install -m 0755 "$flannel_dir/flannel" "$work/flannel/flannel"
  import "$work/flannel" "shimshift.local/flannel:$flannel_version"
fi

mkdir -p "$(dirname "$out")"
docker save -o "$out.tmp" "${built[@]}"
chmod 0644 "$out.tmp"
mv "$out.tmp" "$out"
printf '%s\n' "${built[@]}" > "$out.images.tmp"
mv "$out.images.tmp" "$out.images"
echo "$inputs" > "$out.inputs.tmp"
mv "$out.inputs.tmp" "$out.inputs"
