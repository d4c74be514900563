#!/usr/bin/env bash
# Tests the shipped capfilt.sbatch on the local Slurm cluster with fake-capfilt.sh in place of capfilt
# (set CAPFILT=/path/to/capfilt and SPEC=... to run the real one instead; then only the Slurm side is
# checked here: every task COMPLETED, the cancelled one requeued).
#   sudo bash Scripts/slurm/test-sbatch.sh            # scancel one running task, scontrol requeue it
#   sudo bash Scripts/slurm/test-sbatch.sh --timelimit # also: a task reaching --time is requeued by the
#                                                      # script's SIGUSR1 trap and resumes (about 3 min)
# Checks: capfilt itself receives Slurm's SIGTERM and exits 130, the script waits for it, the task comes
# back with the same worker index and count, resumes its unit (no step done twice), every task ends
# COMPLETED 0:0 and exactly one merge happens.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TIMEOUT_S=${TEST_TIMEOUT:-480}
t0=$SECONDS
say() { printf 'test-sbatch [%3ds]: %s\n' $(( SECONDS - t0 )) "$*" >&2; }
fail() {
  say "FAIL: $*"
  { squeue -a 2>&1 || true; for f in "$dir"/out/events "$dir"/capfilt-*.out; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; } >&2
  exit 1
}
state() { scontrol -o show job "$1" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
field() { scontrol -o show job "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
wait_gone() { # jobid timeout
  local deadline=$(( SECONDS + $2 ))
  while [ "$(squeue -h -j "$1" 2>/dev/null | wc -l)" -gt 0 ]; do
    [ $SECONDS -lt $deadline ] || fail "job $1 still has tasks queued or running after $2 s"
    sleep 1
  done
}

bash "$here/local-cluster.sh" 2>/dev/null
t0=$SECONDS
dir=$(mktemp -d /tmp/slurm-test-sbatch.XXXXXX)
chmod 0755 "$dir"
fake=0
if [ -z "${CAPFILT:-}" ]; then
  fake=1
  export CAPFILT=$here/fake-capfilt.sh
  export SPEC=$dir/spec
  printf 'out=%s\nunits=6\nsteps=6\nstep_s=1\nlease_s=60\n' "$dir/out" > "$SPEC"
fi
say "work folder $dir, CAPFILT=$CAPFILT"

# --- scancel one running task, then scontrol requeue it ------------------------------------------------
job=$(cd "$dir" && sbatch --parsable --array=0-3 "$here/capfilt.sbatch"); job=${job%%;*}
say "submitted $job: capfilt.sbatch --array=0-3 (2 run at once on 2 CPUs)"
victim=""; deadline=$(( SECONDS + 60 ))
while [ -z "$victim" ]; do
  [ $SECONDS -lt $deadline ] || fail "no task running after 60 s"
  for t in $(squeue -h -j "$job" -t RUNNING -o %i); do
    i=${t#*_}
    if [ $fake -eq 0 ] || grep -q "^start .*worker=$i " "$dir/out/events" 2>/dev/null; then victim=$i; break; fi
  done
  [ -n "$victim" ] || sleep 0.5
done
sleep 2
say "scancel ${job}_$victim while it runs"
scancel "${job}_$victim"
deadline=$(( SECONDS + 60 ))
until [ "$(state "${job}_$victim")" = CANCELLED ]; do
  [ $SECONDS -lt $deadline ] || fail "task not CANCELLED 60 s after scancel"; sleep 0.5
done
say "CANCELLED; requeue with scontrol requeue ${job}_$victim"
scontrol requeue "${job}_$victim"
wait_gone "$job" "$TIMEOUT_S"
say "array $job finished"

for i in 0 1 2 3; do
  [ "$(state "${job}_$i")" = COMPLETED ] && [ "$(field "${job}_$i" ExitCode)" = 0:0 ] \
    || fail "task ${job}_$i: $(state "${job}_$i") $(field "${job}_$i" ExitCode)"
done
[ "$(field "${job}_$victim" Restarts)" = 1 ] || fail "task $victim Restarts=$(field "${job}_$victim" Restarts)"
log=$dir/capfilt-${job}_$victim.out
grep -q "SIGTERM: waiting for capfilt" "$log" || fail "the script did not see SIGTERM"
grep -q "interrupted (130)" "$log" || fail "the cancelled run did not end with 130"
grep -q "worker $victim of 4, 1 thread(s), host .* restart 1" "$log" || fail "the rerun is not worker $victim of 4, restart 1"
if [ $fake -eq 1 ]; then
  ev=$dir/out/events
  grep -q "^term worker=$victim .*restart=0" "$ev" || fail "capfilt itself did not receive SIGTERM"
  grep -q "^interrupted unit=.* worker=$victim .*restart=0" "$ev" || fail "capfilt did not stop at a step"
  grep -q "^start workers=4 threads=1 worker=$victim .*restart=1" "$ev" || fail "no rerun of worker $victim"
  for u in 0 1 2 3 4 5; do [ "$(cat "$dir/out/progress/$u")" = 6 ] || fail "unit $u has $(cat "$dir/out/progress/$u") steps"; done
  [ "$(grep -c '^merge by' "$ev")" = 1 ] || fail "expected one merge, saw $(grep -c '^merge by' "$ev")"
  [ "$(wc -l < "$dir/out/merged")" = 6 ] || fail "merged output incomplete"
  say "capfilt got SIGTERM itself, exited 130 at a step boundary; rerun resumed: $(grep -E "^(resume|takeover)" "$ev" | tr '\n' ';')"
  say "$(grep '^merge by' "$ev")"
fi
say "PASS: scancel + scontrol requeue of ${job}_$victim; all 4 tasks COMPLETED 0:0 ($(( SECONDS - t0 ))s)"

# --- time limit: --signal=B:USR1@T makes the script requeue itself -------------------------------------
if [ "${1:-}" = "--timelimit" ]; then
  [ $fake -eq 1 ] || fail "--timelimit needs the fake capfilt"
  t1=$SECONDS
  rm -rf "$dir/out"
  printf 'out=%s\nunits=1\nsteps=70\nstep_s=1\nlease_s=60\n' "$dir/out" > "$SPEC"
  # 70 s of work under a 1-minute limit, so no run can finish without the trap; SIGUSR1 50 s before the
  # limit (Slurm checks limits periodically and may send it early or late): each run does about 10-40 s
  # of work, so two to six runs, each held about 35 s after its requeue.
  job=$(cd "$dir" && sbatch --parsable --array=0 --time=1 --signal=B:USR1@50 "$here/capfilt.sbatch"); job=${job%%;*}
  say "submitted $job: one task, --time=1 --signal=B:USR1@50, 70 s of work"
  wait_gone "$job" "$TIMEOUT_S"
  log=$dir/capfilt-${job}_0.out
  [ "$(state "${job}_0")" = COMPLETED ] || fail "time-limit task ended $(state "${job}_0")"
  [ "$(field "${job}_0" Restarts)" -ge 1 ] || fail "time-limit task was not requeued"
  grep -q "time limit near (SIGUSR1)" "$log" || fail "no SIGUSR1 trap in $log"
  grep -q "^resume unit=0 worker=0 .*restart=1" "$dir/out/events" || fail "the rerun did not resume unit 0"
  [ "$(cat "$dir/out/progress/0")" = 70 ] || fail "unit 0 has $(cat "$dir/out/progress/0") steps"
  say "PASS: time limit -> SIGUSR1 -> scontrol requeue -> SIGTERM -> 130 -> rerun resumed at step $(grep -o 'interrupted unit=0 step=[0-9]*' "$dir/out/events" | head -1 | cut -d= -f3) ($(( SECONDS - t1 ))s)"
fi
