#!/usr/bin/env bash
# Every test, unit and end-to-end, plus the linters. The end-to-end tier brings the lab up itself
# (building what it lacks) and fails, never skips, when it cannot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
