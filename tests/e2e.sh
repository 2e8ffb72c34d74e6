#!/usr/bin/env bash
# End-to-end suite, run by `make check` (top_srcdir and top_builddir come from
# TESTS_ENVIRONMENT; the working directory is the build directory). It starts
# a private PostgreSQL and Redis (tests/servers.sh), migrates and loads the
# demo data, starts the gateway on a free port and runs tests/check_e2e
# against it. Afterwards the gateway must stop cleanly on SIGTERM and its logs
# must hold no token or whole document number.
#   KEEP_STATE=1   keep the temporary state directory (logs, data) afterwards
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
srcdir=$(cd "${top_srcdir:-$here/..}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
# shellcheck source=scripts/lib/stores.sh
. "$srcdir/scripts/lib/stores.sh"

gw=$builddir/src/mipgw
# The suites to run, in order (Makefile.am's E2E_SUITES), against one set
# of servers and one gateway.
read -r -a suites <<<"${E2E_SUITES:-tests/check_e2e}"
# 99 is automake's "hard error": a broken setup, not a failing test.
for f in "$gw" "${suites[@]/#/$builddir/}"; do
    [[ -x $f ]] || { echo "e2e: $f is not built" >&2; exit 99; }
done

# The caller's MIPGW_* settings would make the run depend on their shell;
# only the log level passes, for debugging.
while IFS= read -r name; do
    [[ $name == MIPGW_LOG_LEVEL ]] || unset "$name"
done < <(compgen -e | grep '^MIPGW_' || true)

state=$(mktemp -d "${TMPDIR:-/tmp}/mipgw-e2e.XXXXXX")
ctl=("$srcdir/tests/servers.sh" "$state")
gw_pid=
result=99

# Everything after the tests: stop the gateway and judge how it stopped,
# stop the stores, look for secrets in the logs, clean up.
# shellcheck disable=SC2317  # called through the EXIT trap
finish() {
    local rc=$result gw_rc i
    trap - EXIT INT TERM
    set +e
    if [[ -n $gw_pid ]]; then
        kill -TERM "$gw_pid" 2>/dev/null
        for ((i = 0; i < 150; i++)); do
            _stores_alive "$gw_pid" || break
            sleep 0.1
        done
        if _stores_alive "$gw_pid"; then
            echo "e2e: FAIL: the gateway did not exit within 15 s of SIGTERM" >&2
            kill -KILL "$gw_pid" 2>/dev/null
            wait "$gw_pid" 2>/dev/null
            rc=1
        else
            wait "$gw_pid"
            gw_rc=$?
            if [[ $gw_rc -ne 0 ]]; then
                echo "e2e: FAIL: the gateway exited with status $gw_rc after SIGTERM" >&2
                rc=1
            fi
        fi
    fi
    # Every tax id the cabinet stored in this run, to look for in the logs
    # below (read while PostgreSQL is still up).
    local tax_ids=$state/tax-ids.txt
    psql -X -q -A -t "${MIPGW_PG_CONNINFO:-}" -c \
        "SELECT tax_id FROM cabinet_user_requests UNION SELECT tax_id FROM cabinet_users" \
        >"$tax_ids" 2>/dev/null || : >"$tax_ids"
    "${ctl[@]}" stop

    # Logs must never hold a token (a JWT starts with base64 '{"' = "eyJ"), a
    # demo password, or a whole document number of the demo data: Ivanov's
    # polis and passport, Kozlov's old-style polis. The cabinet suite's
    # registration passwords, weak ones too, all start with "Reg1stratio" or
    # "Reg!stratio" in some case; no SMS text (it holds the code) may be
    # logged.
    local -a logs=()
    for f in "$state"/mipgw.log "$state"/mipgw.stderr "$state"/setup.log; do
        [[ -f $f ]] && logs+=("$f")
    done
    if ((${#logs[@]})); then
        local what pattern hits
        for what in 'token:eyJ' 'demo password:Demo-Only-Secret' \
            'registration password:[Rr][Ee][Gg][1!][Ss][Tt][Rr][Aa][Tt][Ii][Oo]' \
            'SMS code text:eHealth:|Код авторизації' \
            'polis 5000000000000041:5000000000000041' \
            'passport 123456:(^|[^0-9])123456([^0-9]|$)' \
            'polis 123456789:(^|[^0-9])123456789([^0-9]|$)'; do
            pattern=${what#*:}
            # Only file and line are shown: the line itself is the leak.
            hits=$(grep -nE -- "$pattern" "${logs[@]}" | cut -d: -f1,2 | head -n 5)
            if [[ -n $hits ]]; then
                echo "e2e: FAIL: the logs hold a ${what%%:*}, at:" >&2
                echo "$hits" >&2
                rc=1
            fi
        done
        # A whole tax id, as a word of its own.
        if [[ -s $tax_ids ]]; then
            hits=$(grep -nwF -f "$tax_ids" "${logs[@]}" | cut -d: -f1,2 | head -n 5)
            if [[ -n $hits ]]; then
                echo "e2e: FAIL: the logs hold a whole tax id, at:" >&2
                echo "$hits" >&2
                rc=1
            fi
        fi
    fi

    if [[ $rc -ne 0 ]]; then
        for f in "${logs[@]}"; do
            echo "---- last 50 lines of $f" >&2
            tail -n 50 "$f" >&2
        done
    fi
    if [[ ${KEEP_STATE:-0} == 1 ]]; then
        echo "e2e: state kept in $state" >&2
    else
        rm -rf "$state"
    fi
    exit "$rc"
}
trap finish EXIT
trap 'result=1; exit' INT TERM
# A failure of the gateway (as opposed to the harness, which stays 99).
fail() {
    echo "e2e: FAIL: $*" >&2
    result=1
    exit 1
}

"${ctl[@]}" start
# shellcheck source=/dev/null
. "$state/env"
export MIPGW_PG_CONNINFO MIPGW_REDIS_HOST MIPGW_REDIS_PORT
# Demo mode for every command: outside it the configuration demands a real
# signing key, which migrate and import load too.
export MIPGW_DEMO_MODE=1
# MIS password hashes of the suite's own logins cost less than production's
# (argon2id m=4 MiB, t=1 instead of 19 MiB, t=2): the suites verify many,
# also under the sanitizers, and the cost is a setting, not what is tested.
export MIPGW_MIS_HASH_M_COST_KIB=4096 MIPGW_MIS_HASH_T_COST=1
# The portals' key, so that portal-minted RPGU tokens can be tested; a test
# value, made up here, never a default of the code.
export MIPGW_TOKENS_PORTAL_KEY=e2e-portal-key-$RANDOM-$RANDOM-made-up-for-this-run-only

echo "e2e: migrate and import the demo data"
"$gw" migrate >>"$state/setup.log" 2>&1 || fail "mipgw migrate failed"
"$gw" import "$srcdir/etc/demo.json" >>"$state/setup.log" 2>&1 || fail "mipgw import failed"

port=$(free_port)
url=http://127.0.0.1:$port
echo "e2e: gateway on $url (state in $state)"
# The rate limits are raised for this gateway: the suite issues many tokens
# for the same few demo patients. The rate-limit tests start gateways of
# their own with low limits.
MIPGW_HTTP_LISTEN=127.0.0.1 MIPGW_HTTP_PORT=$port MIPGW_HTTP_WORKERS=2 \
    MIPGW_RATELIMIT_TOKEN_PER_ADDR=1000000 MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=1000000 \
    MIPGW_MIS_AUTH_CACHE_TTL_S=2 MIPGW_MIS_HASH_QUEUE_MAX=4 \
    MIPGW_LOG_FILE=$state/mipgw.log \
    "$gw" serve >"$state/mipgw.stderr" 2>&1 </dev/null &
gw_pid=$!

# /ready answers for the worker that took the connection, and each curl is
# a new connection the kernel may give to either worker: ready means ten in
# a row (on a busy machine one worker's pool can connect seconds after the
# other's).
deadline=$((SECONDS + 30))
streak=0
while ((streak < 10)); do
    if curl -fsS -o /dev/null --max-time 2 "$url/ready" 2>/dev/null; then
        streak=$((streak + 1))
        continue
    fi
    streak=0
    _stores_alive "$gw_pid" || fail "the gateway exited before it was ready"
    ((SECONDS < deadline)) || fail "the gateway was not ready within 30 s"
    sleep 0.2
done

echo "e2e: running ${suites[*]}"
# Check's default of 4 s per test is short for tests that restart a store,
# more so under the sanitizers; a tcase's own timeout still wins.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30}
export MIPGW_TEST_URL=$url MIPGW_TEST_HOST=127.0.0.1 MIPGW_TEST_PORT=$port \
    MIPGW_TEST_PG_CONNINFO=$MIPGW_PG_CONNINFO MIPGW_TEST_REDIS_PORT=$MIPGW_REDIS_PORT \
    MIPGW_TEST_CTL="${ctl[*]}" MIPGW_TEST_GW_PID=$gw_pid MIPGW_TEST_GW_LOG=$state/mipgw.log \
    MIPGW_TEST_BIN=$gw MIPGW_TEST_PORTAL_KEY=$MIPGW_TOKENS_PORTAL_KEY \
    MIPGW_TEST_STALLPROXY=$builddir/tests/stallproxy
# Every suite runs, even after one failed, so that one run shows all failures.
result=0
for suite in "${suites[@]}"; do
    echo "e2e: $suite"
    "$builddir/$suite" || result=1
done
exit "$result"
