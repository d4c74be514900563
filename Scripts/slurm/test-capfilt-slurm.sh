#!/usr/bin/env bash
# The real capfilt under the shipped capfilt.sbatch on the local Slurm cluster, against a one-process run:
#   sudo bash Scripts/slurm/test-capfilt-slurm.sh .build/debug/capfilt
#
#  1. starts the cluster (local-cluster.sh; a no-op when it is up),
#  2. writes a 40-row JSONL corpus in 8 units (block_size 5) with the tiny fixture models
#     (Scripts/make-worker-corpus.py), and two specs of the same bytes in ref/ and slurm/,
#  3. runs `capfilt run` once, one process, into ref/out (the reference),
#  4. submits capfilt.sbatch as an array of 4 (`sbatch --array=0-3`, SPEC and CAPFILT in the environment)
#     into slurm/out, waits until a task is RUNNING and holds a unit (its lease names the task's worker and a
#     live pid), scancels that one task, waits until it is CANCELLED and its capfilt has exited,
#  5. brings it back: `scontrol requeue JOB_TASK` (or, with TEST_RESTART=resubmit or when the requeue is
#     refused, `CAPFILT_WORKERS=4 sbatch --array=INDEX capfilt.sbatch`, as the script's comments say),
#  6. waits until no task is pending or running, checks that every task ended COMPLETED 0:0, runs
#     `capfilt merge slurm/out` only if no worker merged, and compares the two datasets byte for byte
#     (every file under shards/ and capfilt_run.json; Scripts/compare-datasets.sh).
# Prints a summary; exit 0 only when everything held and the bytes are identical. The cluster is left up.
# Settings: TEST_TIMEOUT (seconds for the array to finish after the restart, 420), TEST_DIR (work folder,
# default a new one under /var/tmp, kept afterwards), TEST_RESTART=requeue|resubmit (requeue),
# TEST_LEASE_SECONDS (adds `job: {lease_seconds: N}` to both specs; default: capfilt's 120).
# Also checks that the cancelled capfilt stops at a committed batch and exits 130 within KillWait (30 s);
# when it does not, the rest still runs and the test ends FAIL.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scripts=$(dirname "$here")
t0=$SECONDS
say() { printf 'test-capfilt-slurm [%3ds]: %s\n' $(( SECONDS - t0 )) "$*" >&2; }

[ $# -eq 1 ] || { echo "usage: test-capfilt-slurm.sh CAPFILT_BINARY" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "test-capfilt-slurm: must run as root (it starts slurmctld, slurmd, munged)" >&2; exit 2; }
bin=$(readlink -f "$1")
[ -x "$bin" ] || { echo "test-capfilt-slurm: $1 is not an executable" >&2; exit 2; }
TIMEOUT_S=${TEST_TIMEOUT:-420}
RESTART=${TEST_RESTART:-requeue}
job="" job2="" victim="" dir=""
problems=()   # checks that fail without stopping the test (the bytes are still compared)

state() { scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n1; }
field() { scontrol -o show job "$1" 2>/dev/null | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | head -n1; }
fail() {
  say "FAIL: $*"
  {
    echo "----- squeue"; squeue -a 2>&1 || true
    for j in $job $job2; do echo "----- scontrol show job $j"; scontrol -o show job "$j" 2>&1 || true; done
    for f in "$dir"/ref.log "$dir"/slurm/capfilt-*.out; do [ -f "$f" ] && { echo "----- $f"; tail -n 40 "$f"; }; done
    [ -d "$dir/slurm/out" ] && { echo "----- capfilt status $dir/slurm/out"; "$bin" status "$dir/slurm/out" 2>&1 || true; }
    for f in /var/log/slurm-local/slurmctld.log /var/log/slurm-local/slurmd.log; do
      [ -f "$f" ] && { echo "----- tail of $f"; tail -n 30 "$f"; }
    done
  } >&2
  say "work folder kept: $dir"
  exit 1
}
# wait_for SECONDS WHAT COMMAND...: polls COMMAND every half second until it succeeds, or fails the test.
wait_for() {
  local limit=$1 what=$2 deadline=$(( SECONDS + $1 )); shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || fail "$what: not reached after ${limit}s"
    sleep 0.5
  done
}
no_tasks_left() { [ "$(squeue -h -j "$1" 2>/dev/null | wc -l)" -eq 0 ]; }

# ---- cluster, corpus, reference ------------------------------------------------------------------------
say "starting the local cluster (local-cluster.sh)"
cluster_log=$(mktemp)
bash "$here/local-cluster.sh" > "$cluster_log" 2>&1 || { cat "$cluster_log" >&2; fail "local-cluster.sh failed"; }
rm -f "$cluster_log"
dir=${TEST_DIR:-$(mktemp -d /var/tmp/capfilt-slurm-test.XXXXXX)}
mkdir -p "$dir"; chmod 0755 "$dir"
job_yaml=""
[ -z "${TEST_LEASE_SECONDS:-}" ] || job_yaml="job:\n  lease_seconds: $TEST_LEASE_SECONDS"
python3 "$scripts/make-worker-corpus.py" "$dir" --samples 40 --block-size 5 --spec-dir ref --spec-dir slurm --job-yaml "$job_yaml" >&2 \
  || fail "make-worker-corpus.py failed"
say "reference: one process, capfilt run ref/spec.yaml --threads 1"
t_ref=$SECONDS
(cd "$dir/ref" && timeout 300 "$bin" run spec.yaml --threads 1) > "$dir/ref.log" 2>&1 || fail "reference run failed (status $?)"
t_ref=$(( SECONDS - t_ref ))
say "reference done in ${t_ref}s"

# ---- the array, one task cancelled while it runs -------------------------------------------------------
export SPEC=$dir/slurm/spec.yaml CAPFILT=$bin
job=$(cd "$dir/slurm" && sbatch --parsable --array=0-3 "$here/capfilt.sbatch") || fail "sbatch refused the job"
job=${job%%;*}
[ "$(squeue -h -j "$job" -r 2>/dev/null | wc -l)" -eq 4 ] || fail "job $job does not have 4 tasks"
say "submitted $job: capfilt.sbatch --array=0-3 (CAPFILT=$bin)"
t_array=$SECONDS
find_victim() {
  local t i held
  for t in $(squeue -h -j "$job" -t RUNNING -o %i 2>/dev/null); do
    i=${t#*_}
    held=$(python3 "$scripts/held-unit.py" "$dir/slurm/out" "$i")
    if [ -n "$held" ]; then read -r victim_unit victim_pid _ <<< "$held"; victim=$i; return 0; fi
  done
  return 1
}
wait_for 120 "a RUNNING task holding a unit" find_victim
say "task ${job}_$victim is RUNNING and holds unit $victim_unit (capfilt pid $victim_pid): scancel ${job}_$victim"
scancel "${job}_$victim" || fail "scancel ${job}_$victim failed"
is_cancelled() {
  case $(state "${job}_$victim") in
    CANCELLED) return 0 ;;
    COMPLETED|FAILED) fail "task ${job}_$victim ended $(state "${job}_$victim") before the scancel reached it (the job ran too fast to cancel a task mid-run)" ;;
  esac
  return 1
}
wait_for 90 "task ${job}_$victim CANCELLED" is_cancelled
capfilt_gone() { ! kill -0 "$victim_pid" 2>/dev/null; }
wait_for 60 "capfilt of the cancelled task (pid $victim_pid) exited" capfilt_gone
log1=$dir/slurm/capfilt-${job}_$victim.out
how_ended=$(grep -oE "interrupted \(130\)|capfilt exited with status [0-9]+|done$" "$log1" | tail -n1)
if [ "$how_ended" = "interrupted (130)" ]; then
  how_ended="stopped at a committed batch and exited 130 on SIGTERM"
else
  how_ended="did NOT exit within KillWait=30s of SIGTERM: Slurm killed it (SIGKILL; no status in $log1)"
  problems+=("the cancelled task's capfilt $how_ended")
fi
say "CANCELLED; capfilt $how_ended"

# ---- restart -------------------------------------------------------------------------------------------
restart=""
if [ "$RESTART" = requeue ]; then
  if out=$(scontrol requeue "${job}_$victim" 2>&1); then
    restart="scontrol requeue ${job}_$victim"
  else
    say "scontrol requeue refused ($out): resubmitting the index instead"
  fi
fi
if [ -z "$restart" ]; then
  job2=$(cd "$dir/slurm" && CAPFILT_WORKERS=4 sbatch --parsable --array="$victim" "$here/capfilt.sbatch") \
    || fail "resubmission refused"
  job2=${job2%%;*}
  restart="CAPFILT_WORKERS=4 sbatch --array=$victim (job $job2)"
fi
say "restarted: $restart"
both_done() { no_tasks_left "$job" && { [ -z "$job2" ] || no_tasks_left "$job2"; }; }
wait_for "$TIMEOUT_S" "every task ended" both_done
t_array=$(( SECONDS - t_array ))
say "array finished ${t_array}s after submission"

# ---- checks --------------------------------------------------------------------------------------------
tasks=""
for i in 0 1 2 3; do
  t=${job}_$i
  [ -n "$job2" ] && [ "$i" = "$victim" ] && t=${job2}_$i
  st=$(state "$t") ec=$(field "$t" ExitCode)
  [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ] || fail "task $t ended $st $ec"
  tasks+="$t "
done
log2=$log1 rerun="restart 1"
if [ -n "$job2" ]; then
  log2=$dir/slurm/capfilt-${job2}_$victim.out rerun="restart 0"
else
  [ "$(field "${job}_$victim" Restarts)" = 1 ] || fail "task ${job}_$victim has Restarts=$(field "${job}_$victim" Restarts), not 1"
fi
grep -q "SIGTERM: waiting for capfilt" "$log1" || fail "capfilt.sbatch of the cancelled task did not see SIGTERM ($log1)"
grep -q "worker $victim of 4, .* $rerun$" "$log2" || fail "the restarted run is not worker $victim of 4 ($log2)"
# What became of the cancelled task's unit: resumed by its own rerun, or taken over by another worker.
fate=$(grep -h "unit $victim_unit" "$dir"/slurm/capfilt-*.out | grep -oE "(resuming|taking over) unit $victim_unit[^;]*" | head -n1)
merged_by=$(grep -l "capfilt: merging" "$dir"/slurm/capfilt-*.out 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
if [ "$("$bin" status "$dir/slurm/out" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("merge_complete"))')" != True ]; then
  say "no worker merged: capfilt merge slurm/out"
  timeout 120 "$bin" merge "$dir/slurm/out" > "$dir/merge.log" 2>&1 || { cat "$dir/merge.log" >&2; fail "capfilt merge failed"; }
  merged_by="capfilt merge by hand"
fi
leftover=$(for c in /proc/[0-9]*/cmdline; do
  tr '\0' ' ' < "$c" 2>/dev/null | grep -qF "$bin run $dir/slurm/spec.yaml" && { c=${c#/proc/}; echo "${c%/cmdline}"; }
done)
[ -z "$leftover" ] || fail "capfilt processes still running after the array ended: $leftover"
result=$(bash "$scripts/compare-datasets.sh" "$dir/ref/out" "$dir/slurm/out") || { echo "$result" >&2; fail "datasets differ"; }

verdict=PASS
[ ${#problems[@]} -eq 0 ] || verdict=FAIL
echo "test-capfilt-slurm: $verdict in $(( SECONDS - t0 ))s (reference ${t_ref}s, array ${t_array}s)"
echo "  tasks       $tasks(capfilt.sbatch --array=0-3, 1 CPU each, all COMPLETED 0:0)"
echo "  cancelled   ${job}_$victim while it held unit $victim_unit; capfilt: $how_ended"
echo "  restart     $restart; unit $victim_unit: ${fate:-finished by its own rerun or another worker (no log line)}"
echo "  merged by   ${merged_by:-?}"
echo "  dataset     $result, same as the one-process run"
echo "  work folder $dir"
for p in "${problems[@]}"; do echo "  FAILED      $p"; done
[ ${#problems[@]} -eq 0 ] || { echo "----- $log1"; cat "$log1"; } >&2
[ ${#problems[@]} -eq 0 ]
