#!/usr/bin/env bash
# Stops the daemons started by local-cluster.sh: slurmd, slurmctld, then munged (by their pid files).
#   sudo bash Scripts/slurm/stop-cluster.sh           # stop; job and node state are kept for the next start
#   sudo bash Scripts/slurm/stop-cluster.sh --purge   # stop and delete the state (job records, spool)
# Does nothing for a daemon that is not running. Waits up to 20 s per daemon, then sends SIGKILL.
set -euo pipefail
STATE_DIR=${SLURM_LOCAL_DIR:-/var/spool/slurm-local}
purge=0
[ "${1:-}" = "--purge" ] && purge=1
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "stop-cluster: must run as root" >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi
stop() { # name pidfile
  local pid
  [ -s "$2" ] || { echo "stop-cluster: $1 not running (no $2)" >&2; return 0; }
  pid=$(cat "$2")
  if ! kill -0 "$pid" 2>/dev/null || [ "$(cat /proc/"$pid"/comm 2>/dev/null)" != "$1" ]; then
    echo "stop-cluster: $1 not running (stale $2)" >&2; rm -f "$2"; return 0
  fi
  echo "stop-cluster: stopping $1 (pid $pid)" >&2
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$2"; return 0; }; sleep 0.2; done
  echo "stop-cluster: $1 still running after 20 s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$2"
}
stop slurmd "$STATE_DIR/slurmd.pid"
stop slurmctld "$STATE_DIR/slurmctld.pid"
stop munged /run/munge/munged.pid
if [ $purge -eq 1 ]; then
  echo "stop-cluster: removing $STATE_DIR" >&2
  rm -rf "$STATE_DIR"
fi
