# shellcheck shell=bash
# Private PostgreSQL 15 and Redis instances for development and tests.
# Sourced by scripts/run, tests/servers.sh and tests/e2e.sh; defines functions
# only. Every instance lives under a state directory of its own, listens on
# 127.0.0.1 alone and keeps its unix sockets inside that directory, so it never
# meets the system's services or another run.

STORES_PG_BIN=${STORES_PG_BIN:-/usr/lib/postgresql/15/bin}

_stores_log() { printf '%s\n' "stores: $*" >&2; }

# True while PID runs. A zombie counts as gone: a daemon that exits is
# reparented to PID 1, which on some machines (containers, microVMs) never
# reaps it, and kill -0 alone would then wait for it forever.
_stores_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

_stores_abs() { (cd "$1" && pwd -P); }

# True when PID runs with DIR as its working directory: Redis (--dir) and
# the postmaster (its data directory) both move there, so a pid file left
# by a crash or a reboot, whose number now belongs to another process, is
# never taken for ours (nor signalled).
_stores_ours() {
    local pid=$1 dir=$2
    _stores_alive "$pid" && [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$dir" ]]
}

# Removes DATA's postmaster.pid when its process is not this cluster's.
_stores_pg_stale_pid() {
    local data=$1 pid
    [[ -s $data/postmaster.pid ]] || return 0
    pid=$(head -n 1 "$data/postmaster.pid")
    _stores_ours "$pid" "$data" && return 0
    _stores_log "removing a stale postmaster.pid (pid $pid is not this cluster's)"
    rm -f "$data/postmaster.pid"
}

# PostgreSQL refuses to run as root. As root the cluster belongs to the
# `postgres` system user (the postgresql package creates it) and its tools run
# through runuser; otherwise they run as the caller. The cd keeps the tools
# from complaining about a working directory that user cannot read.
_stores_pg_as() {
    local dir=$1
    shift
    if [[ $(id -u) -eq 0 ]]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

# As root, make DIR reachable by the postgres user. The cluster stays inside
# the state directory (so a run's state is one tree that rm -rf removes, and
# ./var/pg is found again by the next run) rather than in a place of the
# postgres user's own; the price is the search (x) bit for "others" on the
# ancestors that lack it, e.g. a mktemp -d directory (0700) or /root. Only x is
# added: it lets postgres pass through to a path it already knows, and lists
# or reads nothing.
_stores_pg_reach() {
    local dir=$1 d
    chown postgres: "$dir"
    runuser -u postgres -- test -w "$dir" 2>/dev/null && return 0
    d=$(dirname "$dir")
    while :; do
        if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
            _stores_log "chmod o+x $d (so the postgres user can reach $dir)"
            chmod o+x "$d"
        fi
        [[ $d == / ]] && break
        d=$(dirname "$d")
    done
    runuser -u postgres -- test -w "$dir" || {
        _stores_log "the postgres user still cannot write to $dir"
        return 1
    }
}

# stores_pg_conninfo PORT: libpq conninfo of the private cluster's app role.
# hostaddr, not host: no name lookup, and it never falls back to a socket.
stores_pg_conninfo() {
    printf 'hostaddr=127.0.0.1 port=%s dbname=mipgw user=mipgw\n' "$1"
}

# stores_pg_start DIR PORT: creates the cluster under DIR on first use, starts
# it (a no-op when it already runs) and makes sure role and database mipgw
# exist. DIR holds the socket and the server log; DIR/data the cluster.
stores_pg_start() {
    local dir=$1 port=$2 data
    [[ -x $STORES_PG_BIN/pg_ctl ]] || {
        _stores_log "no PostgreSQL 15 in $STORES_PG_BIN (run scripts/deps)"
        return 1
    }
    mkdir -p "$dir"
    dir=$(_stores_abs "$dir")
    data=$dir/data
    # The socket path must fit in sun_path (107 bytes).
    if ((${#dir} + 20 > 107)); then
        _stores_log "state dir path too long for a unix socket: $dir"
        return 1
    fi
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || {
            _stores_log "running as root needs the postgres system user (install postgresql)"
            return 1
        }
        _stores_pg_reach "$dir"
    fi

    if [[ ! -f $data/PG_VERSION ]]; then
        # Made aside and renamed when whole, so that an interrupted initdb
        # leaves nothing that looks like a cluster.
        _stores_log "initdb $data"
        rm -rf "$data.new"
        # A directory there without PG_VERSION is no cluster (an initdb of
        # an older version of this script, cut short): kept aside, not
        # deleted, and out of the way.
        if [[ -e $data ]]; then
            _stores_log "$data is not a whole cluster; moving it to $data.broken.$$"
            mv "$data" "$data.broken.$$"
        fi
        _stores_pg_as "$dir" "$STORES_PG_BIN/initdb" -D "$data.new" --auth=trust \
            --encoding=UTF8 --locale=C.UTF-8 -U postgres >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            return 1
        }
        mv "$data.new" "$data"
    fi
    # Our settings live in a file of their own, rewritten at every start
    # (the port and the socket dir may change between runs). Checked at
    # every start too: a cluster made by an older version of this script
    # that was stopped right after initdb lacks the line.
    grep -qx "include = 'mipgw-local.conf'" "$data/postgresql.conf" ||
        printf "\ninclude = 'mipgw-local.conf'\n" >>"$data/postgresql.conf"

    # fsync stays on: bookings must survive a crash, and the benchmarks compare
    # against pgbench on this very cluster, so it must be an honest one.
    cat >"$data/mipgw-local.conf" <<EOF
# Written by scripts/lib/stores.sh at each start; edits are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = ${STORES_PG_SHARED_BUFFERS:-256MB}
fsync = on
EOF
    [[ $(id -u) -ne 0 ]] || chown postgres: "$data/mipgw-local.conf"

    _stores_pg_stale_pid "$data"
    if _stores_pg_as "$dir" "$STORES_PG_BIN/pg_ctl" status -D "$data" >/dev/null 2>&1; then
        _stores_log "PostgreSQL already running in $data"
    else
        _stores_log "starting PostgreSQL on 127.0.0.1:$port ($data)"
        _stores_pg_as "$dir" "$STORES_PG_BIN/pg_ctl" start -w -t 60 -s -D "$data" \
            -l "$dir/postgresql.log" || {
            _stores_log "PostgreSQL did not start; end of $dir/postgresql.log:"
            tail -n 30 "$dir/postgresql.log" >&2 || true
            return 1
        }
    fi

    # Idempotent: \gexec runs each CREATE only when the SELECT returns it.
    "$STORES_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres <<'EOF' >/dev/null
SELECT 'CREATE ROLE mipgw LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mipgw') \gexec
SELECT 'CREATE DATABASE mipgw OWNER mipgw' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mipgw') \gexec
EOF
}

# stores_pg_stop DIR: fast shutdown (rolls back open transactions, no wait for
# clients); a no-op when the cluster is absent or stopped.
stores_pg_stop() {
    local dir=$1 data
    [[ -f $dir/data/PG_VERSION ]] || return 0
    dir=$(_stores_abs "$dir")
    data=$dir/data
    _stores_pg_stale_pid "$data"
    _stores_pg_as "$dir" "$STORES_PG_BIN/pg_ctl" status -D "$data" >/dev/null 2>&1 || return 0
    _stores_log "stopping PostgreSQL ($data)"
    _stores_pg_as "$dir" "$STORES_PG_BIN/pg_ctl" stop -w -t 60 -s -m fast -D "$data"
}

# PING through DIR's socket: a Redis of someone else's on the same port
# must not pass for ours (ours may have failed to bind it).
_stores_redis_ping() {
    local port=$1 dir=$2
    if command -v redis-cli >/dev/null 2>&1; then
        [[ $(redis-cli -s "$dir/redis.sock" ping 2>/dev/null) == PONG ]]
    else
        # Without redis-cli, a raw PING over bash's /dev/tcp.
        (
            exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
            printf 'PING\r\n' >&3
            IFS= read -r -t 2 reply <&3 && [[ $reply == +PONG* ]]
        ) 2>/dev/null
    fi
}

# stores_redis_start DIR PORT [persist]: starts Redis with its data, pid file,
# log and socket in DIR. Without "persist" nothing is saved (tests start from
# empty); with it an append-only file keeps state between runs.
stores_redis_start() {
    local dir=$1 port=$2 persist=${3:-} pid i
    local -a save=(--save '' --appendonly no)
    command -v redis-server >/dev/null 2>&1 || {
        _stores_log "no redis-server (run scripts/deps)"
        return 1
    }
    mkdir -p "$dir"
    dir=$(_stores_abs "$dir")
    if [[ -s $dir/redis.pid ]]; then
        pid=$(<"$dir/redis.pid")
        if _stores_ours "$pid" "$dir"; then
            _stores_log "Redis already running ($dir, pid $pid)"
            return 0
        fi
        rm -f "$dir/redis.pid"
    fi
    [[ $persist == persist ]] && save=(--save '' --appendonly yes --appendfsync everysec)
    _stores_log "starting Redis on 127.0.0.1:$port ($dir)"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
        --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        "${save[@]}" </dev/null || {
        tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
        return 1
    }
    # Ready once it answers PING (loading an append-only file answers LOADING).
    for ((i = 0; i < 300; i++)); do
        _stores_redis_ping "$port" "$dir" && return 0
        sleep 0.1
    done
    _stores_log "Redis did not answer on port $port; end of $dir/redis.log:"
    tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    return 1
}

# stores_redis_stop DIR: SIGTERM (Redis flushes its append-only file on it),
# waits up to 30 s, then SIGKILL.
stores_redis_stop() {
    local dir=$1 pid i
    [[ -s $dir/redis.pid ]] || return 0
    dir=$(_stores_abs "$dir")
    pid=$(<"$dir/redis.pid")
    if _stores_ours "$pid" "$dir"; then
        _stores_log "stopping Redis ($dir)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            _stores_alive "$pid" || break
            sleep 0.1
        done
        if _stores_alive "$pid"; then
            _stores_log "Redis (pid $pid) ignored SIGTERM for 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/redis.pid"
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    if command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null; then
        return 0
    fi
    # No python3: probe upward from a random base; a refused connection
    # means no listener.
    local base=$((20000 + RANDOM % 30000)) p
    for ((p = base; p < base + 1000; p++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    _stores_log "no free port found from $base"
    return 1
}

# wait_http URL TIMEOUT: true once URL answers 2xx, false after TIMEOUT seconds.
wait_http() {
    local url=$1 timeout=$2 deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
