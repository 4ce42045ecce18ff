#!/usr/bin/env bash
# Assemble the lab's node image from the cached Debian root filesystem and the built binaries.
# usage: build-node-image.sh [--check] IMAGE BIN_DIR CRI_DOCKERD_DIR CACHE_DIR [CRICTL]
#   --check  only say whether a build is due: exit 0 if up to date, 3 if not
#   BIN_DIR          kubelet, kubeadm, kubectl (v1.23.17)
#   CRI_DOCKERD_DIR  cri-dockerd and systemd/cri-docker.{service,socket} (build-cri-dockerd.sh)
#   CACHE_DIR        where the root filesystem tarball is kept (CACHE_DIR/rootfs/)
#   CRICTL           crictl, put at /usr/bin/crictl: kubeadm 1.24 and later refuse to run without it
#                    (cmd/kubeadm/app/util/runtime/runtime.go at v1.24.17); not given for 1.23 and older
# The image is re-imported only when the hash of its inputs differs from its io.shimshift.inputs
# label. What goes in, and why, is listed in lab/image/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check=false
if [ "${1:-}" = --check ]; then check=true; shift; fi
image=$1 bin_dir=$2 cri_dir=$3 cache_dir=$4 crictl=${5:-}

rootfs_key=$(sha256sum "$here/build-rootfs.sh" | cut -c1-16)
rootfs_tar=$cache_dir/rootfs/bookworm-node-$rootfs_key.tar
inputs=$(
  {
    echo "$rootfs_key"
    sha256sum "$0" "$here/node-entrypoint.sh" "$cri_dir"/systemd/cri-docker.{service,socket} |
      awk '{print $1}'
    # Built binaries by size and modification time: reading 250 MB on every `lab up` is too slow
    # on a busy 2-core machine, and only the build scripts write them.
    stat -L -c '%n %s %.9Y' "$bin_dir"/{kubelet,kubeadm,kubectl} "$cri_dir/cri-dockerd" ${crictl:+"$crictl"}
    # Paths and contents (and modes) of the files laid over the root filesystem.
    (cd "$here/node" && find . -type f -printf '%p %m\n' | sort && find . -type f | sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
)
current=$(docker image inspect -f '{{index .Config.Labels "io.shimshift.inputs"}}' "$image" 2>/dev/null || true)
[ "$current" = "$inputs" ] && exit 0
$check && exit 3

"$here/build-rootfs.sh" "$rootfs_tar"

root=$(mktemp -d /var/tmp/shimshift-node.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -xf "$rootfs_tar"

install -m 0755 "$bin_dir"/{kubelet,kubeadm,kubectl} "$cri_dir/cri-dockerd" ${crictl:+"$crictl"} "$root/usr/bin/"
# cri-dockerd's own units, where its deb package puts them; installed but not enabled: the lab
# decides per run whether cri-dockerd runs (`--cri-dockerd=running|stopped|absent`).
install -m 0644 "$cri_dir"/systemd/cri-docker.{service,socket} "$root/lib/systemd/system/"
install -m 0755 "$here/node-entrypoint.sh" "$root/usr/local/bin/node-entrypoint"
cp -a --no-preserve=ownership "$here/node/." "$root/"
# Debian installs the CNI plugins in /usr/lib/cni; the kubelet's default --cni-bin-dir (and
# cri-dockerd's) is /opt/cni/bin (docs/lab.md#networking).
mkdir -p "$root/opt/cni" "$root/etc/cni/net.d" "$root/etc/kubernetes/manifests"
ln -sfn /usr/lib/cni "$root/opt/cni/bin"
# Enable what `systemctl enable` would: kubelet (as after installing the kubelet deb; it
# crash-loops until kubeadm writes /var/lib/kubelet/config.yaml) and the host-key generator.
mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/ssh.service.requires"
ln -sfn /lib/systemd/system/kubelet.service "$root/etc/systemd/system/multi-user.target.wants/kubelet.service"
ln -sfn /lib/systemd/system/ssh-host-keys.service \
  "$root/etc/systemd/system/ssh.service.requires/ssh-host-keys.service"

# Debian enables these timers; in a node they would only reach out to the Debian mirrors (apt-daily)
# or scrub disks the node does not own. The lab sends traffic to no one but its own containers.
for t in apt-daily apt-daily-upgrade fstrim e2scrub_all dpkg-db-backup; do
  rm -f "$root/etc/systemd/system/timers.target.wants/$t.timer"
done
rm -f "$root/etc/systemd/system/multi-user.target.wants/e2scrub_reap.service"

old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -c . |
  docker import \
    --change "LABEL io.shimshift.inputs=$inputs" \
    --change "LABEL io.shimshift.kubernetes=$("$bin_dir/kubeadm" version -o short)" \
    --change "LABEL io.shimshift.cri-dockerd=$("$cri_dir/cri-dockerd" --version 2>&1 | awk 'NR == 1 {print $2}')" \
    --change 'ENV container=docker' \
    --change 'CMD ["/usr/local/bin/node-entrypoint"]' \
    - "$image" > /dev/null
# systemd halts on SIGRTMIN+3 (on SIGTERM it only re-executes itself). `docker import` cannot set a
# stop signal, so a build with no layer of its own adds it.
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$image" | DOCKER_BUILDKIT=0 docker build -q -t "$image" - > /dev/null
# The previous build, now untagged, goes unless a container still uses it.
[ -z "$old_id" ] || docker rmi "$old_id" > /dev/null 2>&1 || true
