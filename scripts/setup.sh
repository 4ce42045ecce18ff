#!/usr/bin/env bash
# Prepare a fresh machine of this kind: Debian packages, a running Docker Engine, the Python venv (from
# requirements.lock).
# Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

debian_packages=(docker.io iptables debootstrap etcd-server containernetworking-plugins openssh-client openssh-server sudo
                 busybox-static socat conntrack iproute2 git gcc libc6-dev
                 chromium)  # chromium: headless, for the test that opens the HTML report
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Docker Engine: this kind of machine has the client only; start Debian's dockerd when none answers.
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  mkdir -p /var/log/shimshift
  nohup dockerd >/var/log/shimshift/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start, see /var/log/shimshift/dockerd.log" >&2; exit 1; }
fi

if [ ! -x "$root/.venv/bin/python" ]; then
  python3 -m venv "$root/.venv"
fi
# The lock only (docs/dependencies.md): every package pinned, each file checked against its hash, wheels only
# (an sdist would build in an isolated environment that fetches its build tools unpinned).
pip=("$root/.venv/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" --require-hashes --only-binary :all: -r "$root/requirements.lock"
# Then the checkout itself, editable, built by the setuptools the lock just installed.
"${pip[@]}" --no-deps --no-build-isolation -e "$root"
echo "setup: ready"
