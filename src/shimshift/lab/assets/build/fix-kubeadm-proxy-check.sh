#!/usr/bin/env bash
# Make kubeadm's HTTPProxyCIDR preflight check build right with this machine's Go, in a source copy.
# usage: fix-kubeadm-proxy-check.sh SRCDIR   (idempotent)
#
# Why: the check (cmd/kubeadm/app/preflight/checks.go, HTTPProxyCIDRCheck) puts brackets around the
# first address of the service and pod ranges whenever its net.IP is 16 bytes long, which
# k8s.io/utils/net GetIndexedIP returns for IPv4 too, and so asks net/url to parse
# "https://[10.96.0.1]:1234/". Go refuses an IPv4 address in brackets since go1.25.3 (net/url
# parseHost: "invalid IP-literal"), so every kubeadm init of an IPv4 cluster fails its preflight when
# kubeadm is built with a current Go (kubernetes/kubernetes#135013, seen with 1.33 and 1.34 packages
# too). Built with the Go of its day the check passes; the lab would otherwise have to ignore it. The
# fix brackets only addresses that are not IPv4, which is what the check always meant.
set -euo pipefail
file=$1/cmd/kubeadm/app/preflight/checks.go
old='if len(testIP) == net.IPv6len {'
new='if testIP.To4() == nil { // shimshift lab: IPv6 only (kubernetes/kubernetes#135013)'
# Already fixed, or written upstream with net.JoinHostPort (which brackets IPv6 only), as in 1.33 and
# later (k8s.io/kubernetes v1.33.13 cmd/kubeadm/app/preflight/checks.go, HTTPProxyCIDRCheck).
if grep -qF "$new" "$file" || grep -qF 'net.JoinHostPort(testIP.String(), "1234")' "$file"; then
  exit 0
fi
grep -qF "$old" "$file" || { echo "$file: the HTTPProxyCIDR check is not as expected: $old" >&2; exit 1; }
chmod u+w "$file"
sed -i "s|$(printf '%s' "$old" | sed 's/[][\.*^$|]/\\&/g')|$new|" "$file"
grep -qF "$new" "$file"
