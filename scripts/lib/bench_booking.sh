# bench_booking.sh - the booking scenarios of scripts/bench, sourced by it:
# their data set, their probes, and pgbench's yardstick. Uses the bench's
# globals: work, conninfo, gw_url, root, connections, wrk_threads, duration,
# SCHEDULE_TZ, SCHEDULE_HORIZON, and its say, s_url, s_script, s_args.
# shellcheck shell=bash disable=SC2154

# A bench LPU (МКОД 9800001) with BOOKING_PATIENTS patients (a card each)
# and BOOKING_RESOURCES resources, each of its own speciality, so that one
# patient may book each once (rule 4008), with cells every 10 minutes
# 08:00-20:00 from tomorrow to the horizon; booked has BOOKED_RESOURCES more
# resources whose cells of the first two days are all booked, each by
# patient (its index mod BOOKING_PATIENTS). RPGU tokens for every patient, in
# order. pgbench's table for its one-row inserts.
BOOKING_PATIENTS=2000
BOOKING_RESOURCES=200
BOOKED_RESOURCES=10
booking_loaded=
booking_load() {
    [[ -z $booking_loaded ]] || return 0
    local t0 t1
    t0=$EPOCHREALTIME
    psql -X -q "$conninfo" >"$work/booking-load.log" 2>&1 <<SQL || { cat "$work/booking-load.log" >&2; exit 1; }
\\set ON_ERROR_STOP on
BEGIN;
INSERT INTO lpus (guid, mcod, name) VALUES (gen_random_uuid(), '9800001', 'Бенч записи');
CREATE TABLE bench_patients (n int PRIMARY KEY, person uuid NOT NULL, card uuid NOT NULL);
INSERT INTO bench_patients SELECT n, gen_random_uuid(), gen_random_uuid()
  FROM generate_series(0, $BOOKING_PATIENTS - 1) n;
INSERT INTO persons (guid, family, name, family_key, name_key, birthday, gender)
SELECT person, 'Записев', 'Бенч', 'записев', 'бенч', date '1950-01-01' + n * 7, 1 + n % 2
  FROM bench_patients;
INSERT INTO medical_cards (guid, person_guid, lpu_guid, polis_number, polis_key)
SELECT card, person, l.guid, 'bench' || n, '|bench' || n
  FROM bench_patients, lpus l WHERE l.mcod = '9800001';
INSERT INTO resources (guid, lpu_guid, res_type, family, name, role, spec_code, spec_name, room)
SELECT gen_random_uuid(), l.guid, 'Doctor', 'Записев', 'Врач ' || n, 'Врач',
       CASE WHEN n < $BOOKING_RESOURCES THEN 'b' ELSE 'k' END || lpad(n::text, 4, '0'),
       'Бенч ' || n, n::text
  FROM lpus l, generate_series(0, $BOOKING_RESOURCES + $BOOKED_RESOURCES - 1) n
 WHERE l.mcod = '9800001';
INSERT INTO cells (guid, resource_guid, begin_at, end_at, busy_name, busy_type, access)
SELECT gen_random_uuid(), r.guid, t.b, t.b + interval '10 minutes', 'Прием по записи', 1,
       '{Registry,Doctor,Internet,DoctorOtherLpu}'
  FROM resources r JOIN lpus l ON l.guid = r.lpu_guid AND l.mcod = '9800001',
       generate_series(1, $SCHEDULE_HORIZON) d, generate_series(0, 71) s,
       LATERAL (SELECT (date_trunc('day', now() AT TIME ZONE '$SCHEDULE_TZ')
                        + make_interval(days => d, mins => 480 + 10 * s))
                       AT TIME ZONE '$SCHEDULE_TZ' AS b) t
 WHERE r.spec_code LIKE 'b%' OR d <= 2
 ORDER BY r.guid, t.b;
INSERT INTO bookings (guid, cell_guid, mkab_guid, person_guid, begin_at, spec_code, ticket)
SELECT gen_random_uuid(), c.guid, p.card, p.person, c.begin_at, c.spec_code, 'bench'
  FROM (SELECT c.guid, c.begin_at, r.spec_code,
               row_number() OVER (ORDER BY r.spec_code, c.begin_at) - 1 AS i
          FROM cells c JOIN resources r ON r.guid = c.resource_guid AND r.spec_code LIKE 'k%') c
  JOIN bench_patients p ON p.n = c.i % $BOOKING_PATIENTS;
CREATE TABLE bench_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                           at timestamptz NOT NULL DEFAULT now(), v text NOT NULL);
COMMIT;
VACUUM (ANALYZE) lpus, persons, medical_cards, resources, cells, bookings;
SQL
    psql -X -q -A -t "$conninfo" >"$work/booking-resources.txt" <<'SQL'
SELECT l.guid::text || r.guid::text FROM resources r JOIN lpus l ON l.guid = r.lpu_guid
 WHERE l.mcod = '9800001' AND r.spec_code LIKE 'b%' ORDER BY r.spec_code;
SQL
    psql -X -q -A -t "$conninfo" >"$work/booking-slots.txt" <<SQL
SELECT to_char(d, 'YYYY-MM-DD') || ' ' || to_char(t, 'HH24:MI')
  FROM generate_series(1, $SCHEDULE_HORIZON) n,
       LATERAL (SELECT (now() AT TIME ZONE '$SCHEDULE_TZ')::date + n AS d) dd,
       generate_series(timestamp '2000-01-01 08:00', timestamp '2000-01-01 19:50',
                       interval '10 minutes') t
 ORDER BY d, t;
SQL
    psql -X -q -A -t -F ' ' "$conninfo" >"$work/booked-cells.txt" <<SQL
SELECT l.guid::text || r.guid::text, to_char(c.begin_at AT TIME ZONE '$SCHEDULE_TZ', 'YYYY-MM-DD'),
       to_char(c.begin_at AT TIME ZONE '$SCHEDULE_TZ', 'HH24:MI'), p.n
  FROM bookings b JOIN cells c ON c.guid = b.cell_guid
  JOIN resources r ON r.guid = c.resource_guid JOIN lpus l ON l.guid = r.lpu_guid
  JOIN bench_patients p ON p.person = b.person_guid
 WHERE l.mcod = '9800001' AND r.spec_code LIKE 'k%';
SQL
    # One curl, one kept-alive connection, the patients in order.
    psql -X -q -A -t "$conninfo" >"$work/booking-token-urls.txt" <<SQL
SELECT 'url = "$gw_url/auth/rpgu/token?personguid=' || person || '"' FROM bench_patients ORDER BY n;
SQL
    curl -s -K "$work/booking-token-urls.txt" -w '\n' |
        sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' >"$work/booking-tokens.txt"
    if [[ $(wc -l <"$work/booking-tokens.txt") -ne $BOOKING_PATIENTS ]]; then
        say "booking data: got $(wc -l <"$work/booking-tokens.txt") tokens of $BOOKING_PATIENTS"
        exit 1
    fi
    t1=$EPOCHREALTIME
    say "booking data: $BOOKING_PATIENTS patients with tokens," \
        "$(wc -l <"$work/booking-resources.txt") resources x $(wc -l <"$work/booking-slots.txt") free cells," \
        "$(wc -l <"$work/booked-cells.txt") booked cells, in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    booking_loaded=1
}

# booking_probe LABEL TOKEN DOCTOR_ID DAY TIME: one booking request, shown.
booking_probe() {
    local code body
    body="{\"lpu_code\":\"9800001\",\"doctor_id\":\"$3\",\"day\":\"$4\",\"time\":\"$5\"}"
    code=$(curl -s -o "$work/probe-$1.txt" -w '%{http_code}' -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' -d "$body" "$gw_url/api/v2/iemk/doctors/entry" || true)
    say "probe ($1): POST /api/v2/iemk/doctors/entry -> $code: $(head -c 200 "$work/probe-$1.txt")"
}

booking_args() {
    booking_load
    s_url=$gw_url
    s_script=$root/bench/booking.lua
    s_args=("$work/booking-tokens.txt" "$work/booking-resources.txt" "$work/booking-slots.txt"
        "$work/booked-cells.txt")
    export BENCH_THREADS=$wrk_threads
}

# shellcheck disable=SC2317  # called as "scenario_$name"
scenario_booking() {
    local day time
    booking_args
    # The probe books the last slot of the first resource, which no run reaches.
    read -r day time < <(tail -n 1 "$work/booking-slots.txt")
    booking_probe booking "$(head -n 1 "$work/booking-tokens.txt")" \
        "$(head -n 1 "$work/booking-resources.txt")" "$day" "$time"
}

# shellcheck disable=SC2317  # called as "scenario_$name"
scenario_booked() {
    local doctor day time holder
    booking_args
    read -r doctor day time holder <"$work/booked-cells.txt"
    booking_probe booked "$(sed -n "$(((holder + 1) % BOOKING_PATIENTS + 1))p" "$work/booking-tokens.txt")" \
        "$doctor" "$day" "$time"
}

# PostgreSQL's committed and rolled-back transactions so far, all databases
# (this query's own included).
pg_xacts() {
    psql -X -q -A -t "$conninfo" -c 'SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database'
}

# pgbench's one-row durable insert, at the wrk run's concurrency and
# threads, for as long: its transactions per second into pgb_tps[LABEL].
declare -A pgb_tps
run_pgbench() {
    printf 'INSERT INTO bench_insert (v) VALUES (:client_id);\n' >"$work/pgbench-insert.sql"
    pgbench -n -M prepared -c "$connections" -j "$wrk_threads" -T "$duration" \
        -f "$work/pgbench-insert.sql" "$conninfo" >"$work/pgbench-$1.txt" 2>&1 || {
        say "pgbench failed:"
        cat "$work/pgbench-$1.txt" >&2
        exit 1
    }
    pgb_tps[$1]=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench-$1.txt" | tail -n 1)
    printf '  pgbench one-row insert: %s tps\n' "${pgb_tps[$1]}"
}
