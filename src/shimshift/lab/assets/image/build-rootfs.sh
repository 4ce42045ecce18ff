#!/usr/bin/env bash
# Debootstrap the Debian bookworm root filesystem of the lab's node image and cache it as a tarball.
# usage: build-rootfs.sh OUT_TAR
# Skipped when OUT_TAR exists. The caller puts a hash of this script in OUT_TAR's name, so a change
# of package list gives a new tarball (build-node-image.sh does).
#
# Everything comes from Debian packages. Packages beyond systemd/sshd/Docker are what
# kubeadm 1.23's preflight looks up in PATH (conntrack, ip, iptables, mount, nsenter; optional
# ebtables, ethtool, socat, tc, touch) and what the kubelet shells out to
# (cmd/kubeadm/app/preflight/checks.go@v1.23.17; docs/lab.md#kubeadm-offline).
set -euo pipefail
out=$1
[ -s "$out" ] && exit 0
mirror=http://deb.debian.org/debian
base=systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,procps,util-linux,mount,kmod
extra=(docker.io containernetworking-plugins conntrack socat iptables ethtool ebtables pigz xz-utils
       curl iputils-ping less)
root=$(mktemp -d /var/tmp/shimshift-rootfs.XXXXXX)
cleanup() {
  for m in proc sys dev/pts dev; do umount "$root/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

debootstrap --variant=minbase --include="$base" bookworm "$root" "$mirror"

cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
# No service may start inside the chroot (docker.io's postinst would try).
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
export DEBIAN_FRONTEND=noninteractive
chroot "$root" apt-get update -q
chroot "$root" apt-get -q -y upgrade
chroot "$root" apt-get -q -y install --no-install-recommends "${extra[@]}"
chroot "$root" apt-get clean
for m in dev/pts dev sys proc; do umount "$root/$m"; done
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
  "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/*
# Per-node identity is made at first boot: sshd host keys (ssh.service drop-in in the image) and
# the machine-id (systemd writes one when /etc/machine-id is empty).
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"

mkdir -p "$(dirname "$out")"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -c . > "$out.tmp"
mv "$out.tmp" "$out"
