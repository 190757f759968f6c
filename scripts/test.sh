#!/usr/bin/env bash
# The whole suite: lint, unit, integration (real containers), molecule scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
step() { printf '\033[1m== %s\033[0m\n' "$*"; }
results=.state/test-results
mkdir -p "$results"

step "lint"
scripts/lint.sh
step "unit + integration tests"
pytest -q tests --junitxml="$results/pytest.xml"
scenarios=0
for scenario in molecule/*/molecule.yml; do
  name="$(basename "$(dirname "$scenario")")"
  step "molecule scenario $name"
  molecule test -s "$name"
  scenarios=$((scenarios + 1))
done
# one closing line for the whole suite (any failure above has already stopped the script)
tests="$(python3 -c 'import sys, xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); s=r if r.tag=="testsuite" else r[0]; print(int(s.get("tests"))-int(s.get("skipped",0)))' "$results/pytest.xml")"
echo "summary: $((tests + scenarios)) passed, 0 failed"
