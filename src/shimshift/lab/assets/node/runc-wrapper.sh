#!/bin/bash
# shimshift lab: runc in a lab node cannot LOWER a process's oom_score_adj, because CAP_SYS_RESOURCE
# is outside this VM's capability bounding set (even the host's Docker cannot). dockershim and
# cri-dockerd ask -998 for every pod sandbox, the kubelet -997 for Guaranteed pods; runc would fail
# with "write /proc/self/oom_score_adj: permission denied". Negative values are raised to 0 here,
# in the bundle's config.json (and an exec's process.json), before the real runc runs.
# For the same reason a privileged container (kubeadm's kube-proxy is one) asks for every capability,
# CAP_SYS_RESOURCE included, and runc fails with "unable to apply caps: operation not permitted" (as
# `docker run --privileged` does on this VM): that one capability is taken out of its lists.
adapt() {
  sed -i -E -e 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' \
    -e 's/"CAP_SYS_RESOURCE",//g' -e 's/,"CAP_SYS_RESOURCE"//g' -e 's/\["CAP_SYS_RESOURCE"\]/[]/g' "$1"
}
prev=
for a in "$@"; do
  case $prev in
    --bundle|-b) [ -f "$a/config.json" ] && adapt "$a/config.json" ;;
    --process|-p) [ -f "$a" ] && adapt "$a" ;;
  esac
  case $a in
    --bundle=*) f=${a#--bundle=}/config.json; [ -f "$f" ] && adapt "$f" ;;
  esac
  prev=$a
done
exec /usr/sbin/runc.real "$@"
