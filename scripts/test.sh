#!/usr/bin/env bash
# The whole suite: lint, then the pytest suite (unit + integration, real containers) and every
# molecule scenario, side by side in QB_TEST_JOBS lanes (default 2); every scenario has its own
# hosts and network. The jobs are mostly CPU-bound (a module call per task and host, and the
# emulated VM), so two lanes gain only their waits (apt, services starting, the drills' faults).
# Three lanes were measured slower: the three largest jobs started together (patching, db_ha,
# the VM) took 2305, 1988 and 1942 s (ba476af); with two lanes, 1612, 1024 and 1246 s (fe99cae,
# the VM started beside patching's verify once db_ha ended). Each job
# logs to .state/test-results/<job>.log; a failed job's last lines are printed, no new job is
# started after it, and the running ones are let finish (they remove their hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
step() { printf '\033[1m== %s\033[0m\n' "$*"; }
results=.state/test-results
durations="$results/durations.tsv"
lanes="${QB_TEST_JOBS:-2}"
mkdir -p "$results"
[[ "$lanes" =~ ^[1-9][0-9]*$ ]] || { echo "QB_TEST_JOBS must be a whole number >= 1, got '$lanes'" >&2; exit 2; }
suite_start=$SECONDS

step "lint"
scripts/lint.sh
lint_s=$((SECONDS - suite_start))

# Longest first, so that the lanes end together: the durations of the last run on this machine
# where there are some, else the estimates below. They set the order on a clean clone rather than
# predict it: the ten-host patching scenario (which also holds the observability checks) and
# db_ha start first, and the VM only after db_ha, beside patching's verify rather than its
# converge (the run cited above).
declare -A estimate=([patching]=1400 [db_ha]=900 [lowlatency]=850 [vpn_mesh]=600 [pytest]=450 [alertmanager_cluster]=190 [base]=80)
if [[ -s "$durations" ]]; then
  while read -r name seconds; do estimate[$name]=$seconds; done <"$durations"
fi
all=(pytest)
for scenario in molecule/*/molecule.yml; do all+=("$(basename "$(dirname "$scenario")")"); done
mapfile -t queue < <(for name in "${all[@]}"; do echo "${estimate[$name]:-600} $name"; done | sort -rn | cut -d' ' -f2)

run_job() {
  if [[ $1 == pytest ]]; then
    pytest -q tests --junitxml="$results/pytest.xml"
  else
    molecule test -s "$1"
  fi
}

declare -A running=() started=() took=()
failed=()
next=0
step "${#queue[@]} jobs in $lanes lanes, longest first: ${queue[*]}"
while ((next < ${#queue[@]} || ${#running[@]})); do
  while ((next < ${#queue[@]} && ${#running[@]} < lanes && ${#failed[@]} == 0)); do
    name="${queue[next]}"
    next=$((next + 1))
    run_job "$name" >"$results/$name.log" 2>&1 &
    running[$!]=$name
    started[$name]=$SECONDS
    echo "   started $name (log: $results/$name.log)"
  done
  ((${#running[@]})) || break
  rc=0
  wait -n -p pid "${!running[@]}" || rc=$?
  name="${running[$pid]}"
  unset "running[$pid]"
  took[$name]=$((SECONDS - started[$name]))
  if ((rc == 0)); then
    echo "   $name passed in ${took[$name]} s$( [[ $name == pytest ]] && printf ' (%s)' "$(tail -n 1 "$results/$name.log")")"
  else
    failed+=("$name")
    echo "   $name FAILED (rc $rc) after ${took[$name]} s; the end of its log:"
    tail -n 150 "$results/$name.log" | sed 's/^/   | /'
    if ((${#running[@]})); then echo "   no new job starts; waiting for: ${running[*]}"; fi
  fi
done

# wall time per stage, kept for the next run's lane order
{ for name in "${!took[@]}"; do echo "$name ${took[$name]}"; done; } | sort >"$durations.new"
if ((${#failed[@]} == 0)); then mv "$durations.new" "$durations"; fi
step "wall time per stage"
printf '   %-16s %5s s\n' lint "$lint_s"
for name in "${queue[@]}"; do
  if [[ -n "${took[$name]:-}" ]]; then printf '   %-16s %5s s\n' "$name" "${took[$name]}"; fi
done
printf '   %-16s %5s s (%s lanes)\n' total "$((SECONDS - suite_start))" "$lanes"
# the whole run's stages for `make bench` (which reports the last suite run, never starts one)
{
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "finished $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "lanes $lanes"
  echo "failed ${#failed[@]}"
  echo "lint $lint_s"
  for name in "${queue[@]}"; do if [[ -n "${took[$name]:-}" ]]; then echo "$name ${took[$name]}"; fi; done
  echo "total $((SECONDS - suite_start))"
} >"$results/last-run.tsv"
if ((${#failed[@]})); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi

# one closing line for the whole suite: pytest's tests and one per scenario
tests="$(python3 -c 'import sys, xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); s=r if r.tag=="testsuite" else r[0]; print(int(s.get("tests"))-int(s.get("skipped",0)))' "$results/pytest.xml")"
echo "summary: $((tests + ${#queue[@]} - 1)) passed, 0 failed"
