#!/usr/bin/env bash
# Bring the lab up at each release in turn and print how long each took (the long suite; not run in CI).
# usage: scripts/lab-releases.sh [VERSION...]   (default: every release `shimshift lab status` lists)
#   from a checkout: SHIMSHIFT=.venv/bin/shimshift PYTHON=.venv/bin/python scripts/lab-releases.sh
#
# For each release: `lab down`, then `lab up --version V` timed. A release whose artifacts are not cached
# yet is built first, inside that `lab up` (its progress lines say each build's time); run the script twice
# to get the warm `lab up` time too. Takes the lab lock through `lab up`/`lab down` like any user, and
# ends with the default lab (v1.23.17) taken down, so the machine's lab is never left at another release.
# Exits non-zero if any release did not come up; the table says which, and the log under
# ${LOGS:-/var/tmp/shimshift-lab-releases} says why.
set -uo pipefail
shimshift=${SHIMSHIFT:-shimshift}
python=${PYTHON:-python3}
logs=${LOGS:-/var/tmp/shimshift-lab-releases}
mkdir -p "$logs"
if [ $# -gt 0 ]; then
  versions=("$@")
else
  mapfile -t versions < <("$python" -c 'from shimshift.lab.releases import ADDONS; print("\n".join(ADDONS))')
fi
results=()
failed=0
for v in "${versions[@]}"; do
  "$shimshift" lab down > /dev/null 2>&1
  started=$(date +%s)
  if "$shimshift" lab up --version "${v#v}" > "$logs/lab-up-$v.log" 2>&1; then
    state=Ready
  else
    state="FAILED (see $logs/lab-up-$v.log)"
    failed=1
  fi
  took=$(( $(date +%s) - started ))
  built=$(grep -c '^ *[0-9]*s built ' "$logs/lab-up-$v.log" || true)
  results+=("$(printf '%-9s %6ss  %-5s %s' "$v" "$took" "$([ "$built" -gt 0 ] && echo cold || echo warm)" "$state")")
  printf '%s\n' "${results[-1]}"
done
"$shimshift" lab down > /dev/null 2>&1
printf '\n%-9s %7s  %-5s %s\n' release "lab up" cache result
printf '%s\n' "${results[@]}"
exit "$failed"
