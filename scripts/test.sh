#!/usr/bin/env bash
# Every test, unit and end-to-end, plus the linters. The end-to-end tier brings the lab up itself
# (building what it lacks) and fails, never skips, when it cannot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
# The journey on the lab (tests/e2e/journey) takes the lab for half an hour: only its own command runs it
# (README, "The journey on the lab").
exec .venv/bin/python -m pytest -m "not journey_lab" "$@"
