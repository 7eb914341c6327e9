#!/usr/bin/env bash
# A real single-node SLURM cluster on a Debian machine without systemd or cgroups, for CI and for
# trying `--profile slurm` locally (docs/scaling.md, "A SLURM cluster on one machine").
#
#   scripts/slurm-up.sh [up]   install what is missing, start what is not running; prints "ready"
#   scripts/slurm-up.sh status what runs (exit 0 only when the node accepts jobs)
#   scripts/slurm-up.sh down   stop the daemons this script started, by their recorded pids
#
# Idempotent: `up` on a running cluster only checks it. Needs root (apt-get, daemons as root).
# Daemons: munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd. slurmdbd (with MariaDB) is
# there for `sacct`, the plugin's default job-status command: without accounting, sacct fails
# and snakemake-executor-plugin-slurm silently drops its jobs and waits forever.
#
# Knobs (QL_ prefix: SLURM_* variables are read by srun/sbatch themselves):
#   QL_SLURM_BASE     state, logs, pids, database      (default /var/tmp/quantlab-slurm)
#   QL_SLURM_DB_PORT  MariaDB port on 127.0.0.1        (default 3306; change it if taken)
#   QL_SLURM_CPUS     CPUs the node offers             (default: nproc)
set -euo pipefail

BASE=${QL_SLURM_BASE:-/var/tmp/quantlab-slurm}
DB_PORT=${QL_SLURM_DB_PORT:-3306}
CPUS=${QL_SLURM_CPUS:-$(nproc)}
DB_PASS=quantlab-ci # reachable on 127.0.0.1 only; the database holds job accounting, nothing else
NODE=$(hostname -s)  # NodeName must be the short host name slurmd runs on
RUN=$BASE/run
LOG=$BASE/log
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
STAMP="# written by quantlab scripts/slurm-up.sh"
PACKAGES="slurm-wlm munge slurmdbd mariadb-server"

say() { echo "[slurm-up $(date -u +%T)] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# running NAME: the recorded pid is alive AND is that daemon (a pid file that outlived its process,
# e.g. across a reboot or a killed session, may name an unrelated process by now)
running() { [ -s "$RUN/$1.pid" ] && [ "$(cat "/proc/$(cat "$RUN/$1.pid")/comm" 2>/dev/null)" = "$1" ]; }
until_ok() { # until_ok SECONDS command...: retry quietly until it succeeds or time runs out
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
port_open() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

daemon() { # daemon NAME command...: run a foreground daemon detached, remember its pid
  local name=$1; shift
  setsid "$@" >"$LOG/$name.out" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  say "started $name (pid $!)"
}

stop() { # stop NAME: SIGTERM, wait up to 10 s, then SIGKILL; only pids this script recorded
  local pid
  if running "$1"; then
    pid=$(cat "$RUN/$1.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$RUN/$1.pid"
}

install_packages() {
  local p missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  say "apt-get install$missing"
  # Without systemd, the packages' postinst scripts would start munge, mariadb and the SLURM
  # daemons through /etc/init.d with stock configs. A policy-rc.d that exits 101 forbids it
  # (this machine kind ships one; other images may not).
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local ok=1
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >"$LOG/apt.log" 2>&1 || {
    say "apt-get install failed; apt-get update and one more try"
    # shellcheck disable=SC2086
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; } \
      >>"$LOG/apt.log" 2>&1 || ok=0
  }
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$ok" = 1 ] || die "apt-get install failed, see $LOG/apt.log"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  install -d -o munge -g munge -m 0755 /run/munge # absent in a bare container
  if [ ! -s /etc/munge/munge.key ]; then          # Debian's postinst normally made one
    say "creating /etc/munge/munge.key"
    mungekey -c -f -k /etc/munge/munge.key 2>/dev/null ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  munge_works && return 0
  # munged refuses root without --force: run it as munge; it daemonizes and writes its pid
  runuser -u munge -- /usr/sbin/munged
  until_ok 15 munge_works || die "munged did not start"
  cp /run/munge/munged.pid "$RUN/munged.pid"
  say "started munged (pid $(cat "$RUN/munged.pid"))"
}

install_conf() { # install_conf FILE MODE < content: replace FILE if different; 0 = changed
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 1
  fi
  # keep a copy of a config this script did not write
  if [ -e "$1" ] && ! grep -qF "$STAMP" "$1"; then cp "$1" "$1.before-quantlab"; fi
  install -D -m "$2" -o root -g root "$tmp" "$1"
  rm -f "$tmp"
}

start_accounting() {
  local data=$BASE/mysql sock=$RUN/mysqld/mysqld.sock
  install -d -o mysql -g mysql "$RUN/mysqld" "$LOG/mysql" # mariadbd writes its log as mysql
  if [ ! -d "$data/mysql" ]; then
    install -d -o mysql -g mysql "$data"
    mariadb-install-db --user=mysql --datadir="$data" --auth-root-authentication-method=socket \
      --skip-test-db >"$LOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed, see $LOG/mariadb-install.log"
  fi
  if ! running mariadbd; then
    port_open "$DB_PORT" && die "port $DB_PORT is taken: set QL_SLURM_DB_PORT"
    daemon mariadbd mariadbd --user=mysql --datadir="$data" --socket="$sock" --pid-file="$RUN/mysqld/mysqld.pid" \
      --bind-address=127.0.0.1 --port="$DB_PORT" --log-error="$LOG/mysql/mariadb.err" --innodb-buffer-pool-size=64M
    until_ok 60 mariadb-admin -S "$sock" -u root ping || die "mariadbd did not start, see $LOG/mysql/mariadb.err"
  fi
  mariadb -S "$sock" -u root -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  # slurmdbd refuses a config that is not 0600 and owned by its SlurmUser
  if install_conf "$DBD_CONF" 0600 <<EOF; then stop slurmdbd; fi
$STAMP
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.daemon.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  if ! running slurmdbd; then
    daemon slurmdbd slurmdbd -D
    until_ok 60 port_open 6819 || die "slurmdbd did not start, see $LOG/slurmdbd.log"
  fi
}

write_slurm_conf() { # 0 = changed
  # RealMemory above what the machine has drains the node ("Low RealMemory"): offer 90 % of it
  local mem_mb
  mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  install_conf "$CONF" 0644 <<EOF
$STAMP
ClusterName=quantlab
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# No cgroups. Track a job's processes by process group, not by parent pid (linuxproc): a job's
# snakemake survives the SIGTERM of a cancel, is reparented to init when its shell dies, and
# linuxproc's SIGKILL then misses it; the process group still holds it. No task binding;
# CPU use from /proc (sacct TotalCPU).
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem would otherwise hold all the node's memory
DefMemPerCPU=1000
ReturnToService=2
# finished jobs stay visible to squeue for 10 minutes
MinJobAge=600
InactiveLimit=0
KillWait=5
Waittime=0
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$RUN/slurmctld.daemon.pid
SlurmdPidFile=$RUN/slurmd.daemon.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1; }
node_ready() { case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; esac; return 1; }

up() {
  local t0=$SECONDS
  [ "$(id -u)" = 0 ] || die "needs root (apt-get, munged, slurmd)"
  mkdir -p "$RUN" "$LOG" "$BASE/state" "$BASE/spool"
  install_packages
  start_munge
  start_accounting
  if write_slurm_conf; then
    say "wrote $CONF"
    stop slurmd
    stop slurmctld
  fi
  if ! running slurmctld; then
    daemon slurmctld slurmctld -D
    until_ok 60 scontrol ping || die "slurmctld did not start, see $LOG/slurmctld.log"
  fi
  sacctmgr -i add cluster quantlab >/dev/null 2>&1 || true # slurmctld registers it too; harmless twice
  running slurmd || daemon slurmd slurmd -D -N "$NODE"
  local deadline=$((SECONDS + 60))
  until node_ready; do
    case "$(node_state)" in # a node left down by an earlier, killed slurmd
      down* | drain* | fail*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || die "node $NODE is '$(node_state)', see $LOG/slurmd.log"
    sleep 0.3
  done
  timeout 60 srun -t 1 -N 1 true || die "a one-second srun job failed"
  until_ok 30 sacct -n -X -S now-1hours || die "sacct does not answer, see $LOG/slurmdbd.log"
  say "cluster up in $((SECONDS - t0)) s: node $NODE, $CPUS CPUs, partition debug, base $BASE"
  echo ready
}

down() {
  local name
  for name in slurmd slurmctld slurmdbd mariadbd munged; do stop "$name"; done
}

status() {
  local name
  for name in munged mariadbd slurmdbd slurmctld slurmd; do
    if running "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: not running"; fi
  done
  sinfo 2>/dev/null || true
  node_ready
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 [up|down|status]" ;;
esac
