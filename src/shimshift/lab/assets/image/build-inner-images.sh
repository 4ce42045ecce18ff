#!/usr/bin/env bash
# Build the images kubeadm and the kubelet run inside the lab's nodes, plus the workload image,
# and save them all into one tarball for `docker load` in every node. Nothing is pulled.
# usage: build-inner-images.sh [--check] [--no-workload] BIN_DIR OUT_TAR
#   --check        only say whether a build is due: exit 0 if up to date, 3 if not
#   --no-workload  leave the workload image out: the upgrade's tarball (BIN_DIR at v1.24.17) is
#                  loaded into nodes that already have it, and a re-import would retag it
#   BIN_DIR  holds the built kubeadm, kube-apiserver, kube-controller-manager, kube-scheduler; the
#            images are made for the version that kubeadm reports (v1.23.17 for the lab,
#            v1.24.17 for the upgrade, see lab/image/README.md).
# OUT_TAR is rebuilt only when the hash of the inputs (this script, pause.c, the binaries, Debian's
# etcd and busybox) differs from the one recorded in OUT_TAR.inputs. The images are removed from
# the host's Docker after the save: the tarball is the artifact.
#
# Names and tags are asked from the built kubeadm (`kubeadm config images list`), so they are what
# that kubeadm will look for (registry.k8s.io since v1.23.15, kubernetes/kubernetes#113393,
# docs/lab.md; etcd 3.5.6-0 for both 1.23.17 and 1.24.17, pause 3.6 and 3.7). kube-proxy and CoreDNS are
# not made: the lab skips those addons.
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
bin_dir=$1 out=$2
workload_image=shimshift.local/busybox:1.0
etcd_bin=/usr/bin/etcd        # Debian etcd-server 3.4.23 (kubeadm does not check the local etcd version)
busybox_bin=/bin/busybox      # Debian busybox-static
k8s_version=$("$bin_dir/kubeadm" version -o short)
components=(kube-apiserver kube-controller-manager kube-scheduler)

libs_of() { ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; }

inputs=$(
  {
    sha256sum "$0" "$here/pause.c" | awk '{print $1}'
    # Binaries by size and modification time (see build-node-image.sh): the built ones, and Debian's
    # etcd, busybox and glibc, which change when their packages are upgraded.
    stat -L -c '%n %s %.9Y' "$bin_dir/kubeadm" "$etcd_bin" "$busybox_bin" $(libs_of "$etcd_bin") \
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

# Control plane: kubeadm's static pod manifests run `command: [<name>, --flags...]`, so the binary
# has to be found on PATH; the binaries are static (CGO_ENABLED=0).
for c in "${components[@]}"; do
  skeleton "$work/$c"
  install -m 0755 "$bin_dir/$c" "$work/$c/usr/local/bin/$c"
  import "$work/$c" "$(image_for "$c")"
done

# etcd: Debian's binary is linked against glibc, so its libraries and loader go in as well.
skeleton "$work/etcd"
install -m 0755 "$etcd_bin" "$work/etcd/usr/local/bin/etcd"
for lib in $(libs_of "$etcd_bin"); do
  mkdir -p "$work/etcd$(dirname "$lib")"
  cp -L "$lib" "$work/etcd$lib"
done
mkdir -p "$work/etcd/var/lib/etcd"
import "$work/etcd" "$(image_for etcd)"

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
fi

mkdir -p "$(dirname "$out")"
docker save -o "$out.tmp" "${built[@]}"
chmod 0644 "$out.tmp"
mv "$out.tmp" "$out"
printf '%s\n' "${built[@]}" > "$out.images.tmp"
mv "$out.images.tmp" "$out.images"
echo "$inputs" > "$out.inputs.tmp"
mv "$out.inputs.tmp" "$out.inputs"
