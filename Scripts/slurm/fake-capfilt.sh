#!/usr/bin/env bash
# A stand-in for the capfilt CLI with the same command line and exit statuses, used only to test
# capfilt.sbatch on a real Slurm before the real multi-worker capfilt exists. No models, no images:
#   fake-capfilt.sh run SPEC [--worker I --workers N] [--threads T]   (else SLURM_ARRAY_TASK_ID/COUNT)
#   fake-capfilt.sh merge OUT
# SPEC is key=value lines: out=DIR units=U steps=K step_s=S lease_s=L.
# Each unit is K steps of S seconds; a step is "committed" by writing its count. Units are claimed with a
# lease (a claim folder whose owner file is refreshed after every step); a claim left by the same worker
# (a rerun of the same task) is resumed, a claim older than L seconds is taken over. SIGTERM/SIGINT: stop
# after the current step and exit 130. The worker that finds every unit done first runs the merge.
# Everything it does is appended to OUT/events.
set -uo pipefail
cmd=${1:-}; shift || true
merge() { # out
  local o=$1 u
  for u in $(seq 0 $((units - 1))); do [ -e "$o/done/$u" ] || { echo "merge: unit $u not done" >&2; return 1; }; done
  for u in $(seq 0 $((units - 1))); do echo "unit $u steps $(cat "$o/progress/$u")"; done > "$o/merged.tmp"
  mv "$o/merged.tmp" "$o/merged"
  echo "merge by ${me:-hand}" >> "$o/events"
}
case $cmd in
  run) spec=$1; shift ;;
  merge) out=$1; units=$(ls "$out/claims" | wc -l); merge "$out"; exit $? ;;
  *) echo "usage: fake-capfilt.sh run SPEC | merge OUT" >&2; exit 1 ;;
esac
worker=${SLURM_ARRAY_TASK_ID:-${JOB_COMPLETION_INDEX:-}}; workers=${SLURM_ARRAY_TASK_COUNT:-}; threads=1
while [ $# -gt 0 ]; do
  case $1 in
    --worker) worker=$2; shift 2 ;; --workers) workers=$2; shift 2 ;; --threads) threads=$2; shift 2 ;;
    *) echo "fake-capfilt: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -n "$worker" ] && [ -n "$workers" ] && [ "$worker" -lt "$workers" ] || { echo "fake-capfilt: bad worker $worker/$workers" >&2; exit 1; }
out="" units=0 steps=0 step_s=1 lease_s=30
while IFS='=' read -r k v; do
  case $k in out) out=$v ;; units) units=$v ;; steps) steps=$v ;; step_s) step_s=$v ;; lease_s) lease_s=$v ;; esac
done < "$spec"
me="w$worker"
mkdir -p "$out/claims" "$out/progress" "$out/done"
ev() { echo "$* worker=$worker pid=$$ restart=${SLURM_RESTART_COUNT:-0}" >> "$out/events"; }
stop=0
trap 'stop=1; ev term' TERM
trap 'stop=1; ev int' INT
ev "start workers=$workers threads=$threads"

claim() { # prints a unit this worker now holds, or nothing
  local u c now age
  now=$(date +%s)
  for u in $(seq 0 $((units - 1))); do
    [ -e "$out/done/$u" ] && continue
    c=$out/claims/$u
    if mkdir "$c" 2>/dev/null; then echo "$me" > "$c/owner"; echo "$u"; return; fi
    [ "$(cat "$c/owner" 2>/dev/null)" = "$me" ] && { ev "resume unit=$u"; echo "$u"; return; }
    age=$(( now - $(stat -c %Y "$c/owner" 2>/dev/null || echo "$now") ))
    if [ "$age" -gt "$lease_s" ]; then
      ev "takeover unit=$u from=$(cat "$c/owner") age=${age}s"; echo "$me" > "$c/owner"; echo "$u"; return
    fi
  done
}
while :; do
  u=$(claim)
  [ -n "$u" ] || break
  p=$(cat "$out/progress/$u" 2>/dev/null || echo 0)
  while [ "$p" -lt "$steps" ]; do
    [ $stop -eq 0 ] || { ev "interrupted unit=$u step=$p"; exit 130; }
    sleep "$step_s" & wait $!
    [ $stop -eq 0 ] || { ev "interrupted unit=$u step=$p"; exit 130; }
    [ "$(cat "$out/claims/$u/owner")" = "$me" ] || { ev "lost unit=$u"; continue 2; }
    p=$((p + 1)); echo "$p" > "$out/progress/$u.tmp"; mv "$out/progress/$u.tmp" "$out/progress/$u"
    touch "$out/claims/$u/owner"
  done
  touch "$out/done/$u"; ev "done unit=$u"
done
all=1
for u in $(seq 0 $((units - 1))); do [ -e "$out/done/$u" ] || all=0; done
if [ $all -eq 1 ] && mkdir "$out/merge.lock" 2>/dev/null; then merge "$out" || exit 1; fi
ev "exit 0"
exit 0
