#!/usr/bin/env bash
# make molecule: every molecule scenario, in lanes that run side by side.
#
#   tests/molecule-lanes.sh "SCENARIO SCENARIO ..." "SCENARIO ..." ...
#
# Each argument is a lane: its scenarios run one after another (molecule test
# -s NAME); the lanes run at the same time. Every scenario has its own test
# host, network and volumes (named after the scenario), so two lanes never
# share anything but the CPU. A scenario spends much of its time waiting on
# systemd, podman and its own health checks, so two lanes on two cores take
# about two thirds of the time one lane takes, without changing what runs.
#
# Each scenario's output goes to .build/molecule/NAME.log and is printed whole
# when the scenario ends. Exits non-zero when any scenario failed (the others
# still run), or when a scenario under molecule/ is in no lane.
#
# BESIDE="lint sanity unit" (make test) also runs those make targets, one
# after another, while the lanes run, at the lowest CPU and I/O priority (nice
# 19, ionice idle): they use what the lanes leave idle (a few tenths of a
# core while the scenarios wait on systemd, podman and health checks, and a
# whole core once the shorter lane is done), so they add next to nothing to
# the lanes' time instead of the four to five minutes they take before them.
# Their output is printed whole when each ends (.build/molecule/make-NAME.log),
# and they are in the results table.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
logs=.build/molecule
mkdir -p "$logs"
molecule=${MOLECULE:-.venv/bin/molecule}

planned=$(printf '%s\n' "$@" | tr ' ' '\n' | sed '/^$/d' | sort)
present=$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml | cut -d/ -f2 | sort)
missing=$(comm -13 <(echo "$planned") <(echo "$present"))
if [ -n "$missing" ]; then
  echo "molecule scenarios in no lane (add them to MOLECULE_LANES in the Makefile): $missing" >&2
  exit 2
fi

lane() { # SCENARIOS
  local name start rc
  for name in $1; do
    start=$(date +%s)
    "$molecule" test -s "$name" >"$logs/$name.log" 2>&1
    rc=$?
    {
      echo "===== molecule scenario $name: rc=$rc, $(($(date +%s) - start)) s ====="
      cat "$logs/$name.log"
      echo "===== end of scenario $name: rc=$rc ====="
    } | flock "$logs/.print" cat
    echo "$name $rc $(($(date +%s) - start))" >>"$logs/results"
  done
}

beside() { # MAKE_TARGETS
  local target start rc
  for target in $1; do
    start=$(date +%s)
    nice -n 19 ionice -c 3 "${MAKE:-make}" --no-print-directory "$target" >"$logs/make-$target.log" 2>&1
    rc=$?
    {
      echo "===== make $target: rc=$rc, $(($(date +%s) - start)) s (beside the lanes, nice 19) ====="
      cat "$logs/make-$target.log"
      echo "===== end of make $target: rc=$rc ====="
    } | flock "$logs/.print" cat
    echo "make-$target $rc $(($(date +%s) - start))" >>"$logs/results"
  done
}

: >"$logs/results"
started=$(date +%s)
pids=()
if [ -n "${BESIDE:-}" ]; then
  beside "$BESIDE" &
  pids+=($!)
fi
for scenarios in "$@"; do
  lane "$scenarios" &
  pids+=($!)
done
wait "${pids[@]}"

echo
echo "molecule scenarios ($# lanes${BESIDE:+, and make $BESIDE beside them}, $(($(date +%s) - started)) s in all):"
status=0
while read -r name rc seconds; do
  printf '  %-20s %6s s   %s\n' "$name" "$seconds" "$([ "$rc" = 0 ] && echo passed || echo "FAILED (rc=$rc)")"
  [ "$rc" = 0 ] || status=1
done <"$logs/results"
exit $status
