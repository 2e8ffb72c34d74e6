#!/usr/bin/env bash
# Private PostgreSQL and Redis for the tests, under one state directory.
#   tests/servers.sh STATE_DIR start        pick free ports, start both, write STATE_DIR/env
#   tests/servers.sh STATE_DIR stop         stop both (the state stays)
#   tests/servers.sh STATE_DIR pg-stop|pg-start|redis-stop|redis-start
#                                           stop or restart one store on the same port and
#                                           data, for tests that take a store away mid-run
# STATE_DIR/env is shell syntax: PG_PORT, REDIS_PORT, MIPGW_PG_CONNINFO,
# MIPGW_REDIS_HOST, MIPGW_REDIS_PORT.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/stores.sh
. "$here/../scripts/lib/stores.sh"

usage() {
    echo "usage: $0 STATE_DIR start|stop|pg-start|pg-stop|redis-start|redis-stop" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
state=$1
cmd=$2

load_env() {
    [[ -f $state/env ]] || {
        echo "$0: $state/env missing: run '$0 $state start' first" >&2
        exit 1
    }
    # shellcheck source=/dev/null
    . "$state/env"
}

case $cmd in
start)
    mkdir -p "$state"
    state=$(cd "$state" && pwd -P)
    if [[ -f $state/env ]]; then
        load_env # a second start reuses the ports already handed out
    else
        # Ports are picked one at a time, each after the previous store is
        # listening, so the two can never get the same one.
        PG_PORT=$(free_port)
        REDIS_PORT=
    fi
    stores_pg_start "$state/pg" "$PG_PORT"
    [[ -n $REDIS_PORT ]] || REDIS_PORT=$(free_port)
    stores_redis_start "$state/redis" "$REDIS_PORT"
    cat >"$state/env.tmp" <<EOF
PG_PORT=$PG_PORT
REDIS_PORT=$REDIS_PORT
MIPGW_PG_CONNINFO='$(stores_pg_conninfo "$PG_PORT")'
MIPGW_REDIS_HOST=127.0.0.1
MIPGW_REDIS_PORT=$REDIS_PORT
EOF
    mv "$state/env.tmp" "$state/env"
    ;;
stop)
    # Both are attempted even when the first fails, so nothing is left running.
    rc=0
    stores_redis_stop "$state/redis" || rc=1
    stores_pg_stop "$state/pg" || rc=1
    exit "$rc"
    ;;
pg-start)
    load_env
    stores_pg_start "$state/pg" "$PG_PORT"
    ;;
pg-stop)
    stores_pg_stop "$state/pg"
    ;;
redis-start)
    load_env
    stores_redis_start "$state/redis" "$REDIS_PORT"
    ;;
redis-stop)
    stores_redis_stop "$state/redis"
    ;;
*)
    usage
    ;;
esac
