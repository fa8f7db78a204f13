#!/usr/bin/env bash
# A one-node Slurm cluster with accounting (slurmdbd + MariaDB) on this machine, for dlbench's tests of
# `--executor slurm` and for trying the cluster docs as a new user would.
#
#   scripts/slurm-cluster.sh up       install what is missing (apt), write the configs, start every daemon
#   scripts/slurm-cluster.sh down     stop the daemons this script started (and cancel the jobs still queued)
#   scripts/slurm-cluster.sh status   say whether the cluster is up (exit 0) or not (exit 3)
#   scripts/slurm-cluster.sh env      print the `export SLURM_CONF=...` line clients need
#
# Everything (configs, munge key and socket, spool and state folders, logs, pid files, the MariaDB data folder)
# lives in one state folder, ${DLBENCH_SLURM_DIR:-/tmp/dlbench-slurm}; nothing is written to /etc. Needs root and
# apt (Debian/Ubuntu). Exit status: 0 done, 1 a step failed (its log tail is printed), 2 this machine cannot run it
# (not root, no apt, not Linux). The last line on stderr of a failure gives the reason in one line.
set -euo pipefail

DIR=${DLBENCH_SLURM_DIR:-/tmp/dlbench-slurm}
CLUSTER=${DLBENCH_SLURM_CLUSTER:-dlbench}
WAIT_S=${DLBENCH_SLURM_WAIT_S:-60}
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd) # start order; `down` stops them in reverse

ETC=$DIR/etc
LOG=$DIR/log
RUN=$DIR/run
SPOOL=$DIR/spool
MUNGE_DIR=$DIR/munge
DB_DIR=$DIR/mysql
MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2
DB_SOCKET=$DB_DIR/mariadbd.sock
NODE=$(hostname -s)
export SLURM_CONF=$ETC/slurm.conf

say() { echo "slurm-cluster: $*"; }

env_line() { printf 'export SLURM_CONF=%q' "$SLURM_CONF"; }

STARTING= # set while `up` starts daemons: a failure then stops them again

# A step failed: show the end of the log that explains it, stop what a failed `up` started (it would only hold
# memory), then give the reason as the last line.
die() {
    local reason=$1 log=${2:-}
    if [[ -n $log && -s $log ]]; then
        echo "--- last lines of $log ---" >&2
        tail -n 25 "$log" >&2
        echo "---" >&2
    elif [[ -n $log ]]; then
        echo "($log is empty)" >&2
    fi
    if [[ -n $STARTING ]]; then
        STARTING=
        stop_all >&2
    fi
    echo "slurm-cluster: FAILED: $reason" >&2
    exit 1
}

cannot_run() {
    echo "slurm-cluster: cannot run here: $*" >&2
    exit 2
}

require_machine() {
    [[ $(uname -s) == Linux ]] || cannot_run "needs Linux (this is $(uname -s))"
    [[ $(id -u) -eq 0 ]] || cannot_run "needs root (the daemons run as root and apt installs them)"
    [[ $DIR != *[[:space:]]* ]] || cannot_run "the state folder '$DIR' has a space (slurm.conf cannot name it)"
}

# Each daemon's pid file: munged drops to the munge user, so its own sits in a folder that user owns; mariadbd's is
# written by this script (it stays in the foreground).
pid_file() {
    case $1 in
        munged) echo "$MUNGE_DIR/munged.pid" ;;
        *) echo "$RUN/$1.pid" ;;
    esac
}

# Whether a process runs (an exited daemon stays a zombie until init reaps it, which may take a second or two).
alive() {
    local stat
    stat=$(cat /proc/"$1"/stat 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z ]]
}

# The pid of a daemon this script started, if it is still running (a recycled pid with another name is ignored).
daemon_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -s $file ]] || return 1
    pid=$(tr -dc 0-9 <"$file")
    [[ -n $pid && -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$1" ]] && alive "$pid" || return 1
    echo "$pid"
}

node_idle_or_busy() { [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) =~ ^(idle|mixed|allocated|completing)$ ]]; }

# Up: every daemon runs and the node takes jobs.
is_up() {
    local d
    for d in "${DAEMONS[@]}"; do daemon_pid "$d" >/dev/null || return 1; done
    node_idle_or_busy
}

# Poll `check` (a function or command) until it succeeds, at most WAIT_S seconds.
wait_for() {
    local what=$1 log=$2
    shift 2
    local deadline=$((SECONDS + WAIT_S))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what not ready after ${WAIT_S}s" "$log"
        sleep 0.5
    done
}

port_busy() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# The first port from $1 on that nothing listens on and that is not among the ones already taken ($2...).
free_port() {
    local port=$1
    shift
    while port_busy "$port" || [[ " $* " == *" $port "* ]]; do port=$((port + 1)); done
    echo "$port"
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        say "packages already installed (${PACKAGES[*]})"
        return
    fi
    command -v apt-get >/dev/null || cannot_run "needs apt-get to install ${missing[*]}"
    local start=$SECONDS policy=/usr/sbin/policy-rc.d made_policy=
    # Keep the packages' own services (system MariaDB on 3306, system slurmctld) from starting.
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    say "installing ${missing[*]} (apt)"
    local ok=1
    {
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o DPkg::Lock::Timeout=120 "${missing[@]}"
    } >"$DIR/apt.log" 2>&1 || ok=
    [[ -n $made_policy ]] && rm -f "$policy"
    [[ -n $ok ]] || die "apt-get install ${missing[*]} failed" "$DIR/apt.log"
    say "installed in $((SECONDS - start))s"
}

make_folders() {
    mkdir -p "$ETC" "$LOG" "$RUN" "$SPOOL/slurmctld" "$SPOOL/slurmd" "$MUNGE_DIR" "$DB_DIR"
    chmod 755 "$DIR" "$ETC" "$LOG" "$RUN"
    chown -R munge:munge "$MUNGE_DIR" # -R: the users may have been recreated with new ids since
    chmod 755 "$MUNGE_DIR" # clients (any user) reach the munge socket through it
    chown -R mysql:mysql "$DB_DIR"
    chmod 750 "$DB_DIR"
    local f
    for f in munged.log mariadbd.log; do touch "$LOG/$f"; done
    chown munge:munge "$LOG/munged.log"
    chown mysql:mysql "$LOG/mariadbd.log"
}

make_munge_key() {
    local key=$MUNGE_DIR/munge.key
    if [[ ! -s $key ]]; then
        (umask 077 && head -c 1024 /dev/urandom >"$key")
        say "created munge key $key"
    fi
    chown munge:munge "$key"
    chmod 400 "$key"
}

# Ports are chosen afresh on each `up` (the configs are rewritten), so a busy default never blocks the cluster.
choose_ports() {
    DB_PORT=$(free_port 3306)
    CTLD_PORT=$(free_port 6817 "$DB_PORT")
    SLURMD_PORT=$(free_port 6818 "$DB_PORT" "$CTLD_PORT")
    DBD_PORT=$(free_port 6819 "$DB_PORT" "$CTLD_PORT" "$SLURMD_PORT")
}

write_slurm_conf() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    cat >"$ETC/slurm.conf" <<EOF
# Written by dlbench scripts/slurm-cluster.sh; rewritten on each \`up\`.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=30
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
MailProg=/bin/true
MpiDefault=none
# No systemd, no cgroups: plain /proc process tracking.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
# Short scheduling passes, so a requeued job starts soon after its credential delay (tests wait on it).
SchedulerParameters=sched_interval=10,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem_mb / cpus < 1024 ? mem_mb / cpus : 1024))
ReturnToService=2
# Batch jobs may be requeued (scontrol requeue, submitit's timeout and preemption handling).
JobRequeue=1
# Time limits are enforced at once, and a job past its limit is killed a few seconds after SIGTERM.
OverTimeLimit=0
KillWait=5
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# Clients reach slurmdbd through the munge socket named here (AuthInfo covers only slurmctld and slurmd).
AccountingStoragePass=$MUNGE_SOCKET
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 644 "$ETC/slurm.conf"
}

write_slurmdbd_conf() {
    (
        umask 077
        cat >"$ETC/slurmdbd.conf" <<EOF
# Written by dlbench scripts/slurm-cluster.sh; rewritten on each \`up\`.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(<"$ETC/db.pass")
StorageLoc=slurm_acct_db
EOF
    )
    chown root:root "$ETC/slurmdbd.conf"
    chmod 600 "$ETC/slurmdbd.conf"
}

munge_works() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }

start_munged() {
    runuser -u munge -- munged 9>&- --key-file="$MUNGE_DIR/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$(pid_file munged)" --log-file="$LOG/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
        >>"$LOG/munged.log" 2>&1 || die "munged did not start" "$LOG/munged.log"
    wait_for "munged" "$LOG/munged.log" munge_works
    say "munged running (socket $MUNGE_SOCKET)"
}

sql() { mariadb --no-defaults -S "$DB_SOCKET" -u root -e "$1"; }

start_mariadb() {
    if [[ ! -d $DB_DIR/data/mysql ]]; then
        say "initialising MariaDB data folder $DB_DIR/data"
        mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" --skip-test-db \
            --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 ||
            die "mariadb-install-db failed" "$LOG/mariadb-install.log"
    fi
    setsid mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" --socket="$DB_SOCKET" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --log-error="$LOG/mariadbd.log" \
        --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 </dev/null >>"$LOG/mariadbd.log" 2>&1 9>&- &
    echo $! >"$(pid_file mariadbd)"
    wait_for "MariaDB" "$LOG/mariadbd.log" mariadb-admin --no-defaults -S "$DB_SOCKET" -u root ping
    if [[ ! -s $ETC/db.pass ]]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ETC/db.pass")
    fi
    local pass
    pass=$(<"$ETC/db.pass")
    sql "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
         CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
         ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" >>"$LOG/mariadbd.log" 2>&1 ||
        die "creating database slurm_acct_db and its user failed" "$LOG/mariadbd.log"
    say "MariaDB running on 127.0.0.1:$DB_PORT (data $DB_DIR/data, database slurm_acct_db)"
}

cluster_registered() { sacctmgr -nP show cluster format=cluster | grep -qx "$CLUSTER"; }

start_slurmdbd() {
    write_slurmdbd_conf
    slurmdbd 9>&- >>"$LOG/slurmdbd.log" 2>&1 || die "slurmdbd did not start" "$LOG/slurmdbd.log"
    wait_for "slurmdbd" "$LOG/slurmdbd.log" sacctmgr -nP show cluster
    if ! cluster_registered; then
        sacctmgr -i add cluster "$CLUSTER" >>"$LOG/slurmdbd.log" 2>&1 ||
            die "sacctmgr add cluster $CLUSTER failed" "$LOG/slurmdbd.log"
    fi
    say "slurmdbd running on 127.0.0.1:$DBD_PORT, cluster '$CLUSTER' registered"
}

# The node is idle; a drain left by an earlier session (kept in the controller's state) is lifted.
node_idle() {
    local state
    state=$(sinfo -h -n "$NODE" -o %T)
    [[ $state == drain* ]] && scontrol update NodeName="$NODE" State=RESUME
    [[ $state == idle ]]
}

start_slurmctld_and_slurmd() {
    slurmctld 9>&- >>"$LOG/slurmctld.log" 2>&1 || die "slurmctld did not start" "$LOG/slurmctld.log"
    wait_for "slurmctld" "$LOG/slurmctld.log" scontrol ping
    say "slurmctld running on 127.0.0.1:$CTLD_PORT"
    slurmd 9>&- >>"$LOG/slurmd.log" 2>&1 || die "slurmd did not start" "$LOG/slurmd.log"
    wait_for "node $NODE idle in sinfo" "$LOG/slurmd.log" node_idle
    say "slurmd running, node $NODE idle in partition debug"
    wait_for "sacct" "$LOG/slurmdbd.log" sacct -n -X -S now-1hour
    say "sacct answers"
}

# Cancel what is still queued or running, so no job step outlives the daemons.
cancel_jobs() {
    daemon_pid slurmctld >/dev/null || return 0
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ') || return 0
    [[ -n ${jobs// /} ]] || return 0
    say "cancelling jobs $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while [[ -n $(squeue -h -o %A 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.5; done
}

stop_daemon() {
    local name=$1 pid
    pid=$(daemon_pid "$name") || {
        rm -f "$(pid_file "$name")"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        say "stopped $name (pid $pid, killed after 30s)"
    else
        say "stopped $name (pid $pid)"
    fi
    rm -f "$(pid_file "$name")"
}

stop_all() {
    cancel_jobs
    local i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_daemon "${DAEMONS[i]}"; done
}

cmd_up() {
    if is_up; then
        say "up already ($DIR); $(env_line)"
        return 0
    fi
    local start=$SECONDS
    mkdir -p "$DIR"
    install_packages
    stop_all # leftovers of a half-started cluster
    STARTING=1
    make_folders
    make_munge_key
    choose_ports
    write_slurm_conf
    say "wrote $ETC/slurm.conf (node $NODE, $(nproc) CPUs, ports ctld $CTLD_PORT, slurmd $SLURMD_PORT, dbd $DBD_PORT)"
    start_munged
    start_mariadb
    start_slurmdbd
    start_slurmctld_and_slurmd
    STARTING=
    say "up in $((SECONDS - start))s; $(env_line)"
}

cmd_down() {
    if [[ ! -d $DIR ]]; then
        say "down already (no $DIR)"
        return 0
    fi
    stop_all
    say "down"
}

cmd_status() {
    local d pid running=0
    for d in "${DAEMONS[@]}"; do
        if pid=$(daemon_pid "$d"); then
            say "$d running (pid $pid)"
            running=$((running + 1))
        else
            say "$d stopped"
        fi
    done
    if ((running == ${#DAEMONS[@]})) && is_up; then
        say "up ($DIR); $(env_line)"
        return 0
    fi
    say "not up"
    return 3
}

# One `up` or `down` at a time (parallel test workers may call `up` together); the lock sits beside the folder.
# Daemons are started with fd 9 closed, so they never hold it.
locked() {
    require_machine
    mkdir -p "$(dirname "$DIR")"
    exec 9>"$DIR.lock"
    flock -w 300 9 || die "another slurm-cluster.sh held $DIR.lock for 300s"
    "$@"
}

case ${1:-} in
    up) locked cmd_up ;;
    down) locked cmd_down ;;
    status) cmd_status ;;
    env) env_line && echo ;;
    *)
        echo "usage: $0 up|down|status|env   (state folder: $DIR, from DLBENCH_SLURM_DIR)" >&2
        exit 64
        ;;
esac
