#!/bin/bash
# shimshift lab: runc in a lab node cannot LOWER a process's oom_score_adj, because CAP_SYS_RESOURCE
# is outside this VM's capability bounding set (even the host's Docker cannot). dockershim and
# cri-dockerd ask -998 for every pod sandbox, the kubelet -997 for Guaranteed pods; runc would fail
# with "write /proc/self/oom_score_adj: permission denied". Negative values are raised to 0 here,
# in the bundle's config.json (and an exec's process.json), before the real runc runs.
prev=
for a in "$@"; do
  case $prev in
    --bundle|-b) [ -f "$a/config.json" ] && sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$a/config.json" ;;
    --process|-p) [ -f "$a" ] && sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$a" ;;
  esac
  case $a in
    --bundle=*) f=${a#--bundle=}/config.json; [ -f "$f" ] && sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$f" ;;
  esac
  prev=$a
done
exec /usr/sbin/runc.real "$@"
