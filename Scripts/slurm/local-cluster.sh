#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine: munged, slurmctld and slurmd, no systemd, no cgroups.
#
#   sudo bash Scripts/slurm/local-cluster.sh        # install if missing, configure, start, wait for idle
#   sudo bash Scripts/slurm/stop-cluster.sh         # stop the three daemons
#
# Idempotent: when the three daemons are already running and the node answers in sinfo, it prints
# "already up" and changes nothing (pass --restart to stop them first and apply a new configuration). Otherwise it installs slurm-wlm and munge from Debian (only if
# missing), writes /etc/slurm/slurm.conf (the previous one, if it was not written by this script, is kept
# as slurm.conf.orig), creates a munge key if there is none, starts whatever daemon is not running and
# waits (bounded) until the node is idle. On failure it prints the tail of each daemon's log.
#
# Settings (environment):
#   SLURM_LOCAL_DIR   state, spool and pid files   (default /var/spool/slurm-local)
#   SLURM_LOCAL_LOGS  daemon logs                   (default /var/log/slurm-local)
#   SLURM_LOCAL_WAIT  seconds to wait for the node  (default 60)
#   SLURM_LOCAL_CPUS  CPUs of the node              (default: what slurmd -C detects, else nproc)
#   SLURM_LOCAL_CRED_EXPIRE     job credential lifetime = delay before a requeued job may start (30)
#   SLURM_LOCAL_SCHED_INTERVAL  seconds between scheduling passes (5; Slurm's default is 60)
set -euo pipefail

STATE_DIR=${SLURM_LOCAL_DIR:-/var/spool/slurm-local}
LOG_DIR=${SLURM_LOCAL_LOGS:-/var/log/slurm-local}
WAIT_S=${SLURM_LOCAL_WAIT:-60}
CRED_S=${SLURM_LOCAL_CRED_EXPIRE:-30}
SCHED_S=${SLURM_LOCAL_SCHED_INTERVAL:-5}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by capfilt Scripts/slurm/local-cluster.sh"
NODE=$(hostname -s)

log() { echo "local-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "must run as root (no sudo found)"
  exec sudo -E bash "$0" "$@"
fi

# A process is alive when its pid file names a live process of the expected name.
alive() { # name pidfile
  local pid
  [ -s "$2" ] || return 1
  pid=$(cat "$2" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$1" ]
}
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=$STATE_DIR/slurmctld.pid
SLURMD_PID=$STATE_DIR/slurmd.pid

node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1; }
node_ready() { case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac; }

show_logs() {
  for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] || { log "(no $f)"; continue; }
    echo "----- tail of $f -----" >&2
    tail -n 25 "$f" >&2
  done
}

print_where() {
  log "config:  $CONF"
  log "logs:    $LOG_DIR/slurmctld.log  $LOG_DIR/slurmd.log  /var/log/munge/munged.log"
  log "state:   $STATE_DIR"
}

if [ "${1:-}" = "--restart" ]; then
  log "--restart: stopping the daemons first"
  bash "$(dirname "$0")/stop-cluster.sh"
fi
if command -v sinfo >/dev/null && alive munged "$MUNGE_PID" && alive slurmctld "$CTLD_PID" \
   && alive slurmd "$SLURMD_PID" && node_ready; then
  log "already up: node $NODE is $(node_state)"
  print_where
  exit 0
fi

# ---- install ---------------------------------------------------------------------------------------
packages=(slurm-wlm munge)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for b in munged munge unmunge slurmctld slurmd sinfo sbatch scontrol; do
  command -v "$b" >/dev/null || die "$b not found after installing ${packages[*]}"
done

# ---- munge -----------------------------------------------------------------------------------------
id munge >/dev/null 2>&1 || die "user munge missing (the munge package creates it)"
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! alive munged "$MUNGE_PID"; then
  log "starting munged"
  rm -f /run/munge/munged.socket.2 /run/munge/munged.socket.2.lock "$MUNGE_PID"
  runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" \
    || { show_logs; die "munged did not start"; }
fi
for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
munge -n | unmunge >/dev/null || { show_logs; die "munge does not encode/decode (munge -n | unmunge)"; }

# ---- slurm.conf ------------------------------------------------------------------------------------
install -d -m 0755 "$CONF_DIR" "$STATE_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d" "$LOG_DIR"
if [ -n "${SLURM_LOCAL_CPUS:-}" ]; then
  cpus=$SLURM_LOCAL_CPUS
else
  cpus=$(slurmd -C 2>/dev/null | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n1)
  [ -n "$cpus" ] || cpus=$(nproc)
  [ "$cpus" -le "$(nproc)" ] || cpus=$(nproc)
fi
# RealMemory a bit under what is available now, in whole GiB so that reruns write the same file as
# long as memory does not move much. Memory is not a consumable resource here (CR_CPU), so this only
# has to be at most what slurmd finds, or the node would be drained as "Low RealMemory".
avail_mb=$(awk '/^MemAvailable:/ {print int($2/1024)}' /proc/meminfo)
mem_mb=$(( (avail_mb * 9 / 10) / 1024 * 1024 ))
[ "$mem_mb" -ge 512 ] || mem_mb=$(( avail_mb * 9 / 10 ))

new_conf=$(cat <<EOF
$MARK
# One node ($NODE), CPUs=$cpus, partition debug. Rerunning the script rewrites this file.
ClusterName=capfilt-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# No cgroups in this container: track job processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
# Scheduling passes every few seconds instead of once a minute (a requeued task starts sooner).
SchedulerParameters=sched_interval=$SCHED_S,bf_interval=$SCHED_S
# A requeued job may start only after the job credential lifetime, cred_expire (default 120 s):
# shortened here so that a requeued task restarts within about half a minute on this one node.
AuthInfo=cred_expire=$CRED_S
# Schedule single CPUs, so two 1-CPU tasks run at once on one node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job is cancelled, preempted or requeued.
KillWait=30
# Seconds a finished job stays visible in squeue/scontrol (there is no accounting database).
MinJobAge=600
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
# No mail here; the default /bin/mail is not installed and slurmctld would log an error.
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  log "keeping the existing $CONF as $CONF.orig"
  cp -p "$CONF" "$CONF.orig"
fi
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
  printf '%s\n' "$new_conf" > "$CONF.tmp" && mv "$CONF.tmp" "$CONF"
  log "wrote $CONF (node $NODE, CPUs=$cpus, RealMemory=${mem_mb}M)"
  # A daemon already running would keep the old configuration: restart it.
  for d in slurmd:"$SLURMD_PID" slurmctld:"$CTLD_PID"; do
    if alive "${d%%:*}" "${d#*:}"; then
      log "restarting ${d%%:*} for the new configuration"
      kill "$(cat "${d#*:}")"
      for _ in $(seq 1 50); do alive "${d%%:*}" "${d#*:}" || break; sleep 0.2; done
    fi
  done
fi

# ---- daemons ---------------------------------------------------------------------------------------
for port in 6817 6818; do
  if ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && ! { alive slurmctld "$CTLD_PID" || alive slurmd "$SLURMD_PID"; }; then
    die "port $port is in use by another process: $(ss -ltnpH "sport = :$port" 2>/dev/null)"
  fi
done
if ! alive slurmctld "$CTLD_PID"; then
  log "starting slurmctld"
  slurmctld || { show_logs; die "slurmctld did not start"; }
fi
if ! alive slurmd "$SLURMD_PID"; then
  log "starting slurmd"
  slurmd || { show_logs; die "slurmd did not start"; }
fi

resumed=0
deadline=$(( SECONDS + WAIT_S ))
while :; do
  st=$(node_state || true)
  if node_ready; then break; fi
  # A node left DOWN or DRAINED by an earlier run of this cluster: once slurmd answers, resume it.
  case "$st" in
    down*|drain*|fail*)
      if [ $resumed -eq 0 ] && alive slurmd "$SLURMD_PID"; then
        log "node is $st: resuming it"
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        resumed=1
      fi ;;
  esac
  if [ $SECONDS -ge $deadline ]; then
    log "node $NODE is not idle after ${WAIT_S}s (state: ${st:-no answer from slurmctld})"
    scontrol show node "$NODE" 2>&1 | sed 's/^/  /' >&2 || true
    show_logs
    die "the cluster did not come up"
  fi
  alive slurmctld "$CTLD_PID" || { show_logs; die "slurmctld exited"; }
  alive slurmd "$SLURMD_PID" || { show_logs; die "slurmd exited"; }
  sleep 1
done
log "up: node $NODE is $(node_state), partition debug, CPUs=$cpus"
print_where
