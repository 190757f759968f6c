#!/usr/bin/env bash
# The whole suite: lint, unit, integration (real containers), molecule scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
step() { printf '\033[1m== %s\033[0m\n' "$*"; }

step "lint"
scripts/lint.sh
step "unit + integration tests"
pytest -q tests
step "molecule"
for scenario in molecule/*/molecule.yml; do
  name="$(basename "$(dirname "$scenario")")"
  step "molecule scenario $name"
  molecule test -s "$name"
done
