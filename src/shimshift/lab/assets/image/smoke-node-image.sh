#!/usr/bin/env bash
# Boot one node from the node image and check what the lab relies on; removes everything it made.
# usage: smoke-node-image.sh IMAGE IMAGES_TAR
# Names: shimshift-imgtest-{node,net,docker}. Exit 0 only if every check passed.
set -uo pipefail
image=$1 images_tar=$2
node=shimshift-imgtest-node net=shimshift-imgtest-net vol=shimshift-imgtest-docker
failed=0
cleanup() {
  docker rm -f "$node" > /dev/null 2>&1
  docker volume rm "$vol" > /dev/null 2>&1
  docker network rm "$net" > /dev/null 2>&1
}
trap cleanup EXIT
cleanup
in_node() { docker exec "$node" "$@"; }
check() {  # check DESCRIPTION COMMAND...: run in the node, report
  local what=$1 out
  shift
  if out=$(in_node "$@" 2>&1); then
    printf 'ok    %s: %s\n' "$what" "$(head -c 200 <<< "$out" | tr '\n' ' ')"
  else
    printf 'FAIL  %s: %s\n' "$what" "$(tail -c 600 <<< "$out" | tr '\n' ' ')"
    failed=1
  fi
}

docker network create "$net" > /dev/null
docker volume create "$vol" > /dev/null
started=$(date +%s.%N)
docker run -d --name "$node" --hostname "$node" --network "$net" \
  --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
  --security-opt apparmor=unconfined --cgroupns=private --tmpfs /run --tmpfs /tmp \
  -v "$vol:/var/lib/docker" "$image" > /dev/null

state=
for _ in $(seq 120); do
  state=$(in_node systemctl is-system-running 2>/dev/null) && break
  case "$state" in degraded|running) break;; esac
  sleep 1
done
printf 'boot: %s after %.1fs\n' "$state" "$(echo "$(date +%s.%N) - $started" | bc)"
[ "$state" = running ] || { in_node systemctl --failed --no-legend; failed=1; }

check "docker active" systemctl is-active docker
check "docker cgroup driver" sh -c 'docker info -f "{{.CgroupDriver}} {{.Driver}} cgroup v{{.CgroupVersion}}" | grep "^systemd "'
check "ip_forward" sh -c 'test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 && echo 1'
check "sshd active" systemctl is-active ssh
check "own host keys" sh -c 'ls /etc/ssh/ssh_host_ed25519_key.pub && ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'
check "machine-id" sh -c 'test -s /etc/machine-id && cat /etc/machine-id'
check "kubelet version" sh -c 'kubelet --version | grep -x "Kubernetes v1.23.17"'
check "kubeadm version" sh -c 'kubeadm version -o short | grep -x v1.23.17'
check "kubectl version" sh -c 'kubectl version --client --short 2>/dev/null | grep v1.23.17'
check "kubelet enabled (waits for kubeadm)" sh -c 'systemctl is-enabled kubelet && systemctl show -p ExecStart kubelet | grep -o "KUBELET_KUBEADM_ARGS"'
check "cri-dockerd version" cri-dockerd --version
check "cri-docker units disabled" sh -c '! systemctl is-enabled cri-docker.socket cri-docker.service'
check "cni bin dir" sh -c 'ls /opt/cni/bin/bridge /opt/cni/bin/host-local /opt/cni/bin/loopback /opt/cni/bin/portmap'
check "preflight tools" sh -c 'for t in conntrack ip iptables mount nsenter ebtables ethtool socat tc touch; do command -v $t > /dev/null || { echo missing $t; exit 1; }; done; echo all found'
check "no apt timers" sh -c '! systemctl is-enabled apt-daily.timer'

loaded=$(date +%s.%N)
if docker exec -i "$node" docker load < "$images_tar" > /tmp/shimshift-imgtest-load.log 2>&1; then
  printf 'ok    docker load in the node: %.1fs, %s\n' "$(echo "$(date +%s.%N) - $loaded" | bc)" \
    "$(grep -c 'Loaded image' /tmp/shimshift-imgtest-load.log) images"
else
  echo "FAIL  docker load: $(cat /tmp/shimshift-imgtest-load.log)"; failed=1
fi
check "busybox runs" docker run --rm --network none shimshift.local/busybox:1.0 sh -c 'echo hello from busybox'
check "etcd runs" sh -c 'docker run --rm --network none registry.k8s.io/etcd:3.5.6-0 etcd --version | head -1'
check "kube-apiserver on PATH" docker run --rm --network none registry.k8s.io/kube-apiserver:v1.23.17 kube-apiserver --version
check "kube-controller-manager on PATH" docker run --rm --network none registry.k8s.io/kube-controller-manager:v1.23.17 kube-controller-manager --version
check "kube-scheduler on PATH" docker run --rm --network none registry.k8s.io/kube-scheduler:v1.23.17 kube-scheduler --version
check "pause stops on SIGTERM with 0" sh -c 'id=$(docker run -d --network none registry.k8s.io/pause:3.6); sleep 1; docker stop -t 5 $id > /dev/null; docker inspect -f "{{.State.ExitCode}}" $id | grep -x 0; docker rm $id > /dev/null'
check "pause reaps zombies" sh -c 'id=$(docker run -d --network none registry.k8s.io/pause:3.6); sleep 1;
  docker run --rm --network none --pid container:$id shimshift.local/busybox:1.0 sh -c "sleep 0.2 & exec true" ; sleep 1;
  z=$(ps -eo stat,ppid | awk -v p=$(docker inspect -f "{{.State.Pid}}" $id) "\$2 == p && \$1 ~ /Z/" | wc -l); docker rm -f $id > /dev/null; test "$z" = 0 && echo "no zombies"'
check "cri-dockerd starts from its units" sh -c 'systemctl start cri-docker.socket cri-docker.service && sleep 2 && systemctl is-active cri-docker.service && test -S /run/cri-dockerd.sock && echo socket ok; systemctl stop cri-docker.service cri-docker.socket'
exit $failed
