#!/bin/sh
# shimshift lab: the kubelet (protectKernelDefaults=false, the default) WRITES kernel.panic=10,
# kernel.panic_on_oops=1 and vm.overcommit_memory=1 at start and refuses to run when it cannot
# ("Failed to start ContainerManager ... /proc/sys/kernel/panic: read-only file system"). These are
# not namespaced: writing them would change the VM that hosts the lab (where kernel.panic=1 and
# panic_on_oops=0). Each node instead gets private files holding the values the kubelet wants,
# bind-mounted over the read-only /proc/sys entries, so the kubelet reads them, finds them right,
# and writes nothing.
set -eu
dir=/run/shimshift-lab/sysctl
mkdir -p "$dir"
for kv in kernel/panic=10 kernel/panic_on_oops=1 vm/overcommit_memory=1; do
  key=${kv%%=*}
  file=$dir/$(echo "$key" | tr / .)
  echo "${kv#*=}" > "$file"
  grep -q " /proc/sys/$key " /proc/self/mountinfo || mount --bind "$file" "/proc/sys/$key"
done
