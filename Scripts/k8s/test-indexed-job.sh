#!/usr/bin/env bash
# The Indexed Job of Scripts/k8s/capfilt-job.yaml without a cluster: its exact command lines, run on this
# machine the way the Job controller would run its pods, against a one-process run.
#   bash Scripts/k8s/test-indexed-job.sh .build/debug/capfilt
#
#  1. validates the manifest with check-manifest.py, and with `kubectl apply --dry-run=client` when a kubectl
#     is installed (it needs an API server even for a client dry run: reported, not a failure),
#  2. reads from the manifest the command line of every index (check-manifest.py --commands:
#     `JOB_COMPLETION_INDEX=i capfilt run /data/spec.yaml --workers N --threads T`), completions,
#     parallelism, backoffLimitPerIndex and the exit codes podFailurePolicy ignores, and puts the shared
#     volume's mount path (/data) on a folder here: `capfilt` becomes CAPFILT_BINARY, /data/... DIR/pvc/...
#  3. writes a 64-row JSONL corpus in 8 units (Scripts/make-worker-corpus.py) and two specs of the same
#     bytes, DIR/ref/spec.yaml and DIR/pvc/spec.yaml, and runs the reference: one process into DIR/ref/out,
#  4. plays the Job controller: starts "pods" (lowest pending index first, at most `parallelism` at once),
#     each in its own UTS namespace with its own host name capfilt-INDEX-ATTEMPT (as pods are on other hosts
#     than each other: a dead pod's lease must expire, it is not seen as a dead local process) when
#     `unshare --uts` works (root), else all on this host; kills the first pod seen holding a unit with
#     SIGKILL half a second later (if it still holds it), and, as backoffLimitPerIndex does, starts a new pod for that
#     index (an exit code that podFailurePolicy ignores, 130, is retried without counting; other failures
#     count against the index's limit),
#  5. when every index has succeeded, runs `capfilt merge` only if no pod merged, and compares the datasets
#     byte for byte (every file under shards/ and capfilt_run.json; Scripts/compare-datasets.sh).
# Exit 0 only when all of that held and the bytes are identical.
# Settings: TEST_TIMEOUT (seconds for the pods, 300), TEST_DIR (work folder, default a new one under
# /var/tmp, kept), TEST_LEASE_SECONDS (the specs' job.lease_seconds, 10: how long a killed pod's unit stays
# claimed before the next pod or another worker takes it over; capfilt's default 120 would make this slow).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scripts=$(dirname "$here")
manifest=$here/capfilt-job.yaml
t0=$SECONDS
say() { printf 'test-indexed-job [%3ds]: %s\n' $(( SECONDS - t0 )) "$*" >&2; }

[ $# -eq 1 ] || { echo "usage: test-indexed-job.sh CAPFILT_BINARY" >&2; exit 2; }
bin=$(readlink -f "$1")
[ -x "$bin" ] || { echo "test-indexed-job: $1 is not an executable" >&2; exit 2; }
TIMEOUT_S=${TEST_TIMEOUT:-300}
LEASE_S=${TEST_LEASE_SECONDS:-10}
dir="" pods=()
declare -A pid attempt failures state

ppid_of() { sed 's/.*) [A-Za-z] \([0-9]*\) .*/\1/' "/proc/$1/stat" 2>/dev/null; }   # no procps needed
fail() {
  say "FAIL: $*"
  for i in "${!pid[@]}"; do   # the capfilt of every pod still running (each a child of its pod's subshell)
    [ "${state[$i]}" = running ] || continue
    for c in /proc/[0-9]*; do [ "$(ppid_of "${c#/proc/}")" = "${pid[$i]}" ] && kill -KILL "${c#/proc/}" 2>/dev/null; done
  done
  {
    for f in "$dir"/ref.log "$dir"/pods/*.log; do [ -f "$f" ] && { echo "----- $f"; tail -n 30 "$f"; }; done
    [ -d "$dir/pvc/out" ] && { echo "----- capfilt status $dir/pvc/out"; "$bin" status "$dir/pvc/out" 2>&1 || true; }
  } >&2
  [ -z "$dir" ] || say "work folder kept: $dir"
  exit 1
}

# ---- the manifest ----------------------------------------------------------------------------------------
if ! python3 -c 'import yaml' 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing python3-yaml (check-manifest.py reads the manifest with PyYAML)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null \
      || fail "apt-get install python3-yaml failed"
  else
    fail "python3 has no yaml module: apt-get install python3-yaml"
  fi
fi
check=$(python3 "$here/check-manifest.py" "$manifest" 2>&1) || { echo "$check" >&2; fail "check-manifest.py found errors"; }
say "$(echo "$check" | tail -n1)"
kubectl_result="kubectl not installed: not checked with kubectl"
if command -v kubectl >/dev/null; then
  if out=$(timeout 60 kubectl apply --dry-run=client --validate=false -f "$manifest" 2>&1); then
    kubectl_result="kubectl apply --dry-run=client: $(echo "$out" | tr '\n' ';')"
  else
    kubectl_result="kubectl apply --dry-run=client could not check it: it needs an API server ($(echo "$out" | tail -n1 | cut -c1-160))"
  fi
fi
say "$kubectl_result"
facts=$(python3 "$here/check-manifest.py" --facts "$manifest") || fail "check-manifest.py --facts failed"
fact() { echo "$facts" | sed -n "s/^$1=//p" | head -n1; }
completions=$(fact completions) parallelism=$(fact parallelism) backoff=$(fact backoff_limit_per_index)
ignored=$(fact ignored_exit_codes) mount=$(fact shared_mount)
[ -n "$mount" ] || fail "the capfilt container mounts no PersistentVolumeClaim"

dir=${TEST_DIR:-$(mktemp -d /var/tmp/capfilt-k8s-test.XXXXXX)}
mkdir -p "$dir/pods"
python3 "$scripts/make-worker-corpus.py" "$dir" --samples 512 --block-size 64 --spec-dir ref --spec-dir pvc \
  --job-yaml "job:\n  lease_seconds: $LEASE_S" >&2 || fail "make-worker-corpus.py failed"
# The pods' command lines, with capfilt -> the binary and the volume's mount path -> DIR/pvc.
mapfile -t commands < <(python3 "$here/check-manifest.py" --commands "$manifest" | python3 -c '
import shlex, sys
binary, mount, local = sys.argv[1:]
for line in sys.stdin:
    argv = shlex.split(line)
    first = next(i for i, a in enumerate(argv) if "=" not in a)
    if argv[first] == "capfilt":
        argv[first] = binary
    argv = [local + a[len(mount):] if a == mount or a.startswith(mount.rstrip("/") + "/") else a for a in argv]
    print(shlex.join(argv))
' "$bin" "$mount" "$dir/pvc")
[ ${#commands[@]} -eq "$completions" ] || fail "expected $completions command lines, got ${#commands[@]}"
for i in $(seq 0 $((completions - 1))); do
  case ${commands[$i]} in "JOB_COMPLETION_INDEX=$i "*) ;; *) fail "command $i does not set JOB_COMPLETION_INDEX=$i: ${commands[$i]}" ;; esac
done
say "Indexed Job: $completions indexes, $parallelism at once, backoffLimitPerIndex $backoff, exit codes ignored: ${ignored:-none}; $mount -> $dir/pvc"
say "index 0 runs: ${commands[0]}"

say "reference: one process, capfilt run ref/spec.yaml --threads 1"
t_ref=$SECONDS
(cd "$dir/ref" && timeout 300 "$bin" run spec.yaml --threads 1) > "$dir/ref.log" 2>&1 || fail "reference run failed (status $?)"
t_ref=$(( SECONDS - t_ref ))
say "reference done in ${t_ref}s"

# ---- the Job controller ----------------------------------------------------------------------------------
own_hosts=0
unshare --uts -- true 2>/dev/null && own_hosts=1
[ $own_hosts -eq 1 ] || say "unshare --uts does not work here (not root?): every pod runs with this host's name"
# A pod: a subshell that runs the container's command (capfilt, in its own UTS namespace when possible) and
# writes its exit status, as the kubelet records the container's; the test kills the capfilt process itself.
start_pod() { # index
  local i=$1 name argv
  attempt[$i]=$(( ${attempt[$i]:--1} + 1 ))
  name=capfilt-$i-${attempt[$i]}
  eval "argv=(${commands[$i]})"
  (
    cd /
    if [ $own_hosts -eq 1 ]; then
      unshare --uts -- sh -c 'hostname "$0" && exec env "$@"' "$name" "${argv[@]}"
    else
      env "${argv[@]}"
    fi
    echo $? > "$dir/pods/$name.status"
  ) > "$dir/pods/$name.log" 2>&1 &
  pid[$i]=$! state[$i]=running
  pods+=("$name")
}
for i in $(seq 0 $((completions - 1))); do state[$i]=pending failures[$i]=0; done
victim="" victim_unit="" killed=""
t_job=$SECONDS deadline=$(( SECONDS + TIMEOUT_S ))
while :; do
  running=0 left=0
  for i in $(seq 0 $((completions - 1))); do
    if [ "${state[$i]}" = running ] && ! kill -0 "${pid[$i]}" 2>/dev/null; then
      wait "${pid[$i]}"
      name=capfilt-$i-${attempt[$i]}
      rc=$(cat "$dir/pods/$name.status" 2>/dev/null || echo 255)
      if [ $rc -eq 0 ]; then
        state[$i]=succeeded
      elif [[ " $ignored " == *" $rc "* ]]; then
        say "pod $name exited $rc (podFailurePolicy: Ignore): a new pod for index $i"; state[$i]=pending
      else
        failures[$i]=$(( failures[$i] + 1 ))
        if [ "${failures[$i]}" -gt "$backoff" ]; then
          state[$i]=failed; say "pod $name exited $rc: index $i failed for good (backoffLimitPerIndex $backoff)"
        else
          state[$i]=pending; say "pod $name exited $rc: failure ${failures[$i]} of index $i, a new pod (backoffLimitPerIndex $backoff)"
        fi
      fi
    fi
    case ${state[$i]} in running) running=$((running + 1)) ;; pending) left=$((left + 1)) ;; esac
  done
  for i in $(seq 0 $((completions - 1))); do
    [ "${state[$i]}" = pending ] && [ $running -lt "$parallelism" ] || continue
    start_pod "$i"; running=$((running + 1)); left=$((left - 1))
  done
  [ $running -gt 0 ] || [ $left -gt 0 ] || break
  # SIGKILL the first pod seen holding a unit, if it still holds it half a second later.
  if [ -z "$killed" ]; then
    while read -r unit holder_pid _ worker; do
      # the holder must be the capfilt of that index's running pod (a child of the pod's subshell)
      [ -n "$unit" ] && [ "${state[$worker]:-}" = running ] || continue
      [ "$(ppid_of "$holder_pid")" = "${pid[$worker]}" ] || continue
      sleep 0.5
      [ "$(python3 "$scripts/held-unit.py" "$dir/pvc/out" "$worker" | cut -d' ' -f1,2)" = "$unit $holder_pid" ] || break
      victim=$worker victim_unit=$unit killed=capfilt-$worker-${attempt[$worker]}
      say "SIGKILL pod $killed (pid $holder_pid) while it holds unit $unit"
      kill -KILL "$holder_pid"
      break
    done < <(python3 "$scripts/held-unit.py" "$dir/pvc/out")
  fi
  [ $SECONDS -lt $deadline ] || fail "pods still running after ${TIMEOUT_S}s"
  sleep 0.3
done
t_job=$(( SECONDS - t_job ))
for i in $(seq 0 $((completions - 1))); do [ "${state[$i]}" = succeeded ] || fail "index $i ${state[$i]}"; done
[ -n "$killed" ] || fail "no pod was seen holding a unit, so none was killed (the job ran too fast?)"
say "every index succeeded in ${t_job}s; pods: ${pods[*]}"

# ---- checks ----------------------------------------------------------------------------------------------
fate=$(grep -H -oE "(resuming|taking over) unit $victim_unit[^;]*" "$dir"/pods/*.log | sed "s|$dir/pods/||; s|\.log:| |" | head -n1)
merged_by=$(grep -l "capfilt: merging" "$dir"/pods/*.log 2>/dev/null | xargs -r -n1 basename | sed 's/\.log$//' | tr '\n' ' ')
if [ "$("$bin" status "$dir/pvc/out" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("merge_complete"))')" != True ]; then
  say "no pod merged: capfilt merge"
  timeout 120 "$bin" merge "$dir/pvc/out" > "$dir/merge.log" 2>&1 || { cat "$dir/merge.log" >&2; fail "capfilt merge failed"; }
  merged_by="capfilt merge by hand"
fi
result=$(bash "$scripts/compare-datasets.sh" "$dir/ref/out" "$dir/pvc/out") || { echo "$result" >&2; fail "datasets differ"; }

echo "test-indexed-job: PASS in $(( SECONDS - t0 ))s (reference ${t_ref}s, job ${t_job}s)"
echo "  manifest    $(echo "$check" | tail -n1 | sed 's/^check-manifest: //')"
echo "  kubectl     $kubectl_result"
echo "  job         $completions indexes, $parallelism at once, --threads from the manifest, lease ${LEASE_S}s, $([ $own_hosts -eq 1 ] && echo "one host name per pod" || echo "all pods on this host name")"
echo "  pods        ${pods[*]}"
echo "  killed      $killed (SIGKILL) while it held unit $victim_unit; index $victim rerun as capfilt-$victim-${attempt[$victim]}"
echo "  unit        $victim_unit: ${fate:-no resume or take-over line in the pod logs}"
echo "  merged by   ${merged_by:-?}"
echo "  dataset     $result, same as the one-process run"
echo "  work folder $dir"
