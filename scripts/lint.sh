#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
ruff check src tests plugins molecule scripts
scripts/role-docs.py --check
ansible-lint --profile production
