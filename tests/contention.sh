#!/usr/bin/env bash
# Contention test, run by `make check` (top_srcdir and top_builddir come from
# TESTS_ENVIRONMENT; the working directory is the build directory): starts
# scripts/cluster (two gateways behind nginx, one PostgreSQL, one Redis, all
# on free ports under a temporary state directory), adds an MIS login, and
# runs tests/check_contention against nginx. Everything is stopped on every
# way out; the surviving gateway must still be running at the end.
#   KEEP_STATE=1   keep the state directory (logs, data) afterwards
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
# shellcheck source=scripts/lib/stores.sh
. "$srcdir/scripts/lib/stores.sh"

gw=$builddir/src/mipgw
suite=$builddir/tests/check_contention
cluster=$srcdir/scripts/cluster
# 99 is automake's "hard error": a broken setup, not a failing test.
for f in "$gw" "$suite"; do
    [[ -x $f ]] || { echo "contention: $f is not built" >&2; exit 99; }
done
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] ||
    { echo "contention: no nginx (scripts/deps installs it)" >&2; exit 99; }

# Only the log level of the caller's MIPGW_* settings passes, as in e2e.sh.
while IFS= read -r name; do
    [[ $name == MIPGW_LOG_LEVEL ]] || unset "$name"
done < <(compgen -e | grep '^MIPGW_' || true)

state=$(mktemp -d "${TMPDIR:-/tmp}/mipgw-contention.XXXXXX")
result=99

# shellcheck disable=SC2317  # called through the EXIT trap
finish() {
    local rc=$result f
    trap - EXIT INT TERM
    set +e
    "$cluster" stop "$state"
    if [[ $rc -ne 0 ]]; then
        for f in "$state"/gw*.log "$state"/gw*.stderr "$state"/nginx/error.log "$state"/setup.log; do
            [[ -s $f ]] || continue
            echo "---- last 30 lines of $f" >&2
            tail -n 30 "$f" >&2
        done
    fi
    if [[ ${KEEP_STATE:-0} == 1 ]]; then
        echo "contention: state kept in $state" >&2
    else
        rm -rf "$state"
    fi
    exit "$rc"
}
trap finish EXIT
trap 'result=1; exit' INT TERM

# What the gateways run with. Locks live 1 s, so that the kill test waits
# little for a dead gateway's locks to expire; token rate limits are off
# (every token comes through nginx, from one address); cheap MIS hashes, as
# in e2e.sh.
export MIPGW_DEMO_MODE=1 MIPGW_HTTP_WORKERS=2
export MIPGW_BOOKING_LOCK_TTL_MS=1000
export MIPGW_RATELIMIT_TOKEN_PER_ADDR=0
export MIPGW_MIS_HASH_M_COST_KIB=4096 MIPGW_MIS_HASH_T_COST=1

CLUSTER_BIN=$gw "$cluster" start --gateways 2 --port 0 "$state"
# shellcheck source=/dev/null
. "$state/env"

login=storm-470102
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$password" | MIPGW_PG_CONNINFO=$MIPGW_PG_CONNINFO "$gw" user add "$login" --lpu 470102 \
    >>"$state/setup.log" 2>&1 || { echo "contention: mipgw user add failed" >&2; exit 99; }

echo "contention: nginx on 127.0.0.1:$NGINX_PORT, gateways on $GW1_PORT and $GW2_PORT (state in $state)"
result=0
MIPGW_TEST_HOST=127.0.0.1 MIPGW_TEST_PORT=$NGINX_PORT \
    MIPGW_TEST_PG_CONNINFO=$MIPGW_PG_CONNINFO MIPGW_TEST_REDIS_PORT=$REDIS_PORT \
    MIPGW_TEST_MIS_LOGIN=$login MIPGW_TEST_MIS_PASSWORD=$password \
    MIPGW_TEST_KILL_PID=$GW1_PID MIPGW_TEST_LOCK_TTL_MS=$MIPGW_BOOKING_LOCK_TTL_MS \
    CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-240} \
    "$suite" || result=1

# The kill test killed gateway 1; gateway 2 must have come through.
if ! _stores_alive "$GW2_PID"; then
    echo "contention: FAIL: gateway 2 (pid $GW2_PID) is not running after the storms" >&2
    result=1
fi
exit "$result"
