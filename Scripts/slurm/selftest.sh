#!/usr/bin/env bash
# Proves the local Slurm cluster runs a requeueable job array the way capfilt.sbatch uses it:
#   1. sbatch --array=0-3 --requeue a bash payload that writes one file per task after sleeping a bit,
#   2. waits until one task is RUNNING (and its payload has started), scancels just that task (JOB_TASK),
#   3. puts it back: `scontrol requeue JOB_TASK` (same job, same array size; Slurm lets a cancelled task be
#      requeued), or, if that is refused, resubmits that one index with sbatch --array=<index>,
#   4. waits (bounded) until no task of the array is pending or running, and checks every task's output,
#      final state and exit code, and that the cancelled task saw SIGTERM and ran again.
# Exit 0 only if all of that holds. Starts the cluster first (local-cluster.sh, a no-op when it is up).
#   sudo bash Scripts/slurm/selftest.sh
# Settings: SELFTEST_SLEEP (seconds each task sleeps, 8), SELFTEST_TIMEOUT (seconds for the whole array
# after the requeue, 300), SELFTEST_DIR (work folder, default a new one under /tmp, kept afterwards),
# SELFTEST_MODE=resubmit (skip scontrol requeue and test the resubmission path).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SLEEP_S=${SELFTEST_SLEEP:-8}
TIMEOUT_S=${SELFTEST_TIMEOUT:-300}
TASKS=4

t0=$SECONDS
say() { printf 'selftest [%3ds]: %s\n' $(( SECONDS - t0 )) "$*" >&2; }
fail() {
  say "FAIL: $*"
  { echo "--- squeue"; squeue -a 2>&1 || true
    echo "--- scontrol show job $job"; scontrol -o show job "$job" 2>&1 || true
    for f in "$dir"/slurm-*.out "$dir"/events; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done
    echo "--- tail of slurmctld.log"; tail -n 20 /var/log/slurm-local/slurmctld.log 2>&1 || true
  } >&2
  exit 1
}

bash "$here/local-cluster.sh"
t0=$SECONDS

dir=${SELFTEST_DIR:-$(mktemp -d /tmp/slurm-selftest.XXXXXX)}
mkdir -p "$dir"
chmod 0755 "$dir"
cat > "$dir/payload.sh" <<'EOF'
#!/usr/bin/env bash
# One array task: note the start, sleep, then write out.<index>. On SIGTERM (scancel, requeue, preemption)
# note it and exit 130, the status capfilt uses for "interrupted".
i=$SLURM_ARRAY_TASK_ID
d=$SELFTEST_WORK
trap 'echo "term $i restart=${SLURM_RESTART_COUNT:-0} job=$SLURM_JOB_ID" >> "$d/events"; exit 130' TERM
echo "start $i restart=${SLURM_RESTART_COUNT:-0} array=$SLURM_ARRAY_JOB_ID job=$SLURM_JOB_ID count=$SLURM_ARRAY_TASK_COUNT" >> "$d/events"
touch "$d/started.$i.${SLURM_RESTART_COUNT:-0}"
sleep "$SELFTEST_SLEEP" & wait $!
echo "done $i restart=${SLURM_RESTART_COUNT:-0} count=$SLURM_ARRAY_TASK_COUNT" > "$d/out.$i.tmp"
mv "$d/out.$i.tmp" "$d/out.$i"
echo "end $i restart=${SLURM_RESTART_COUNT:-0}" >> "$d/events"
EOF
chmod +x "$dir/payload.sh"
say "work folder $dir"

job=$(SELFTEST_WORK=$dir SELFTEST_SLEEP=$SLEEP_S sbatch --parsable --export=ALL \
        --array=0-$((TASKS - 1)) --requeue --cpus-per-task=1 --open-mode=append \
        -J capfilt-selftest -D "$dir" -o "$dir/slurm-%A_%a.out" "$dir/payload.sh")
job=${job%%;*}
say "submitted array job $job (tasks 0-$((TASKS - 1)), ${SLEEP_S}s each, 1 CPU each)"

# --- 2. one running task, cancel it --------------------------------------------------------------------
victim=""
deadline=$(( SECONDS + 60 ))
while [ -z "$victim" ]; do
  [ $SECONDS -lt $deadline ] || fail "no task of $job started running within 60 s"
  for t in $(squeue -h -j "$job" -t RUNNING -o %i 2>/dev/null); do
    i=${t#*_}
    if [ -e "$dir/started.$i.0" ]; then victim=$i; break; fi
  done
  [ -n "$victim" ] || sleep 0.5
done
running_at=$SECONDS
say "task ${job}_$victim is RUNNING; scancel ${job}_$victim"
scancel "${job}_$victim"
deadline=$(( SECONDS + 60 ))
while :; do
  st=$(scontrol -o show job "${job}_$victim" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$st" in CANCELLED) break ;; esac
  [ $SECONDS -lt $deadline ] || fail "task ${job}_$victim is $st 60 s after scancel"
  sleep 0.5
done
say "task ${job}_$victim is CANCELLED ($(( SECONDS - running_at ))s after scancel)"
[ ! -e "$dir/out.$victim" ] || fail "the cancelled task wrote its output before it was cancelled (raise SELFTEST_SLEEP)"
grep -q "^term $victim restart=0" "$dir/events" || fail "task $victim did not see SIGTERM before it ended"

# --- 3. put it back ------------------------------------------------------------------------------------
requeued_at=$SECONDS
extra=""
if [ "${SELFTEST_MODE:-requeue}" = requeue ] && out=$(scontrol requeue "${job}_$victim" 2>&1); then
  mechanism="scontrol requeue ${job}_$victim"
else
  [ "${SELFTEST_MODE:-requeue}" = requeue ] && say "scontrol requeue refused ($out); resubmitting index $victim"
  extra=$(SELFTEST_WORK=$dir SELFTEST_SLEEP=$SLEEP_S sbatch --parsable --export=ALL \
            --array="$victim" --requeue --cpus-per-task=1 --open-mode=append \
            -J capfilt-selftest -D "$dir" -o "$dir/slurm-%A_%a.out" "$dir/payload.sh")
  extra=${extra%%;*}
  mechanism="sbatch --array=$victim (new job $extra)"
fi
say "put back with: $mechanism"
[ -z "$extra" ] || say "note: a resubmitted task sees SLURM_ARRAY_TASK_COUNT=1, so capfilt needs --workers N then"

# --- 4. wait for the whole array -----------------------------------------------------------------------
deadline=$(( SECONDS + TIMEOUT_S ))
restarted_at=""
while :; do
  left=$(squeue -h -j "$job${extra:+,$extra}" -o %i 2>/dev/null | wc -l)
  if [ -z "$restarted_at" ] && ls "$dir"/started."$victim".* 2>/dev/null | grep -qv "\.0$"; then
    restarted_at=$SECONDS
    say "task $victim started again $(( restarted_at - requeued_at ))s after the requeue"
  elif [ -z "$restarted_at" ] && [ -n "$extra" ] && grep -q "^start $victim .*array=$extra " "$dir/events"; then
    restarted_at=$SECONDS
    say "task $victim started again (resubmitted) $(( restarted_at - requeued_at ))s after the requeue"
  fi
  [ "$left" -eq 0 ] && break
  [ $SECONDS -lt $deadline ] || fail "$left task(s) still pending or running ${TIMEOUT_S}s after the requeue"
  sleep 1
done
say "no task left in the queue"

# --- checks --------------------------------------------------------------------------------------------
for i in $(seq 0 $((TASKS - 1))); do
  [ -s "$dir/out.$i" ] || fail "task $i wrote no output"
  grep -q "^done $i " "$dir/out.$i" || fail "task $i output is wrong: $(cat "$dir/out.$i")"
  id=${job}_$i
  [ "$i" = "$victim" ] && [ -n "$extra" ] && id=${extra}_$i
  line=$(scontrol -o show job "$id")
  st=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$line")
  ec=$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<<"$line")
  [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ] || fail "task $id ended $st with exit code $ec"
done
if [ -z "$extra" ]; then
  grep -q "^done $victim restart=1 count=$TASKS" "$dir/out.$victim" \
    || fail "the requeued task's output does not show SLURM_RESTART_COUNT=1: $(cat "$dir/out.$victim")"
  restarts=$(scontrol -o show job "${job}_$victim" | sed -n 's/.* Restarts=\([0-9]*\).*/\1/p')
  [ "$restarts" = 1 ] || fail "task ${job}_$victim has Restarts=$restarts, expected 1"
fi
starts=$(grep -c "^start " "$dir/events")
[ "$starts" -eq $((TASKS + 1)) ] || fail "expected $((TASKS + 1)) task starts, saw $starts"

say "PASS: $TASKS tasks COMPLETED with exit 0, task $victim cancelled while running and put back with"
say "      '$mechanism'; restart $(( ${restarted_at:-$SECONDS} - requeued_at ))s after the requeue, total $(( SECONDS - t0 ))s"
