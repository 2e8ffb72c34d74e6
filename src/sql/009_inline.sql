-- 009_inline.sql - SQL functions that PostgreSQL inlines into the query
-- that calls them. One that it cannot inline (declared IMMUTABLE over a
-- body that is only STABLE, or reading a table) is run by the SQL-function
-- executor, which parses and plans its body again at every call from a
-- PL/pgSQL statement or a prepared one: mip_book_spec_key alone took 14% of
-- PostgreSQL's CPU per booking. The bodies are unchanged in what they
-- answer; EXPLAIN VERBOSE under plan_cache_mode = force_generic_plan shows
-- each one inlined (tests/check_e2e_booking.c checks it).

-- `'book:' || p_person` is anytextcat, STABLE; the explicit cast is
-- immutable, and gives the same text, so the same lock keys.
CREATE OR REPLACE FUNCTION mip_book_spec_key(p_person uuid, p_spec text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended('book:' || p_person::text || ':' || p_spec, 0)
$$;

-- to_char is STABLE, and a FROM is never inlined: the offset is written out
-- where it is used (the planner inlines a cheap argument used several times).
CREATE OR REPLACE FUNCTION mip_local_ts(ts timestamptz, tz text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE tz, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN (ts AT TIME ZONE tz) < (ts AT TIME ZONE 'UTC') THEN '-' ELSE '+' END
        || to_char(abs(extract(epoch FROM (ts AT TIME ZONE tz) - (ts AT TIME ZONE 'UTC')))::int / 3600,
                   'FM00') || ':'
        || to_char(abs(extract(epoch FROM (ts AT TIME ZONE tz) - (ts AT TIME ZONE 'UTC')))::int % 3600 / 60,
                   'FM00')
$$;

-- jsonb_build_object and to_jsonb are STABLE.
CREATE OR REPLACE FUNCTION refdata_result(p_item jsonb, p_status text, p_msgs text[] DEFAULT '{}')
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('i', p_item->'i', 's', p_status, 'm', to_jsonb(p_msgs))
$$;

-- mip_ticket and mip_visits read tables, so they cannot be inlined; as
-- PL/pgSQL functions their query is planned once per connection, not at
-- every call. The queries are 006's, unchanged.

CREATE OR REPLACE FUNCTION mip_ticket(p_booking uuid, tz text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT jsonb_build_object(
            'lpu', l.attrs || jsonb_build_object(
                'guid', l.guid, 'mcod', l.mcod, 'name', l.name,
                'isChildrenPoliclinic', l.is_children, 'isActive', l.is_active,
                'status', jsonb_build_object('name', 'Online',
                                             'lastChangeTime', mip_local_ts(l.updated_at, tz),
                                             'ping', 0)),
            'num', b.ticket,
            'room', r.room,
            'flat', r.floor,
            'busyType', jsonb_build_object('name', c.busy_name, 'type', c.busy_type,
                                           'code', nullif(c.busy_code, '')),
            'ticketGuid', b.guid,
            'timeTableGuid', c.guid,
            'docFio', mip_short_fio(r),
            'docGuid', r.guid,
            'resType', r.res_type,
            'doctorRole', r.role,
            'speciality', r.spec_name,
            'beginTime', mip_local_ts(c.begin_at, tz),
            'endTime', mip_local_ts(c.end_at, tz),
            'dateOfAppointment', mip_local_ts(b.created_at, tz),
            'source', coalesce(array_position(ARRAY['Internet', 'Infomat', 'CallCenter', 'Doctor',
                                                    'DoctorOtherLPU', 'Registry'], b.source), 0),
            'login', b.login,
            'sourceName', b.source,
            'history', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'element', h.element,
                           'elementGuid', b.guid,
                           'oldValue', h.old_value,
                           'newValue', h.new_value,
                           'editor', h.editor,
                           'date', mip_local_ts(h.at, tz),
                           'client', jsonb_build_object('mnem', h.client,
                                                        'name', coalesce(a.name, ''),
                                                        'description', ''))
                           ORDER BY h.id)
                  FROM booking_history h
                  LEFT JOIN client_applications a ON a.mnem = h.client
                 WHERE h.booking_guid = b.guid), '[]'::jsonb))
          FROM bookings b
          JOIN cells c ON c.guid = b.cell_guid
          JOIN resources r ON r.guid = c.resource_guid
          JOIN lpus l ON l.guid = r.lpu_guid
         WHERE b.guid = p_booking
    );
END
$$;

CREATE OR REPLACE FUNCTION mip_visits(p_person uuid, tz text, lim int) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_agg(v ORDER BY t DESC), '[]'::jsonb)
          FROM (SELECT mip_ticket(b.guid, tz)
                       || jsonb_build_object('visitId', m.lpu_guid::text || b.guid::text,
                                             'status', b.status) AS v,
                       b.begin_at AS t
                  FROM bookings b JOIN medical_cards m ON m.guid = b.mkab_guid
                 WHERE b.person_guid = p_person
                 ORDER BY b.begin_at DESC LIMIT lim) s
    );
END
$$;
