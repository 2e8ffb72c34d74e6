-- 006: booking (issue 4). A booking holds a cell; 002 made the table and
-- its one rule that must hold whatever any cache says (one booking per cell
-- unless cancelled). Here: what a booking carries, its history, the rule
-- that a referral is used by one booking at a time, and the functions the
-- gateway calls, one per request, each one transaction.
--
-- The gateway checks the request's shape, the horizon and the token before
-- it calls; the functions check everything that needs the data, in the
-- order docs/api.md gives, and answer {"e": <reason>, ...} for a refusal or
-- the booking. They never raise for a refusal: a raise would cost every
-- call a subtransaction to catch.

CREATE SEQUENCE booking_tickets;

ALTER TABLE bookings
    ADD COLUMN ticket       text NOT NULL DEFAULT '',
    -- copies of the cell's begin and the resource's speciality, so that the
    -- one-booking-per-speciality rule is one index probe
    ADD COLUMN begin_at     timestamptz,
    ADD COLUMN spec_code    text NOT NULL DEFAULT '',
    ADD COLUMN email        text,
    ADD COLUMN phone        text,
    ADD COLUMN email_agree  boolean,
    ADD COLUMN source       text NOT NULL DEFAULT '',   -- client application's mnemonic
    ADD COLUMN login        text NOT NULL DEFAULT '';   -- who booked it

-- A referral is used up by its booking, and freed again by a cancellation.
CREATE UNIQUE INDEX bookings_one_per_referral ON bookings (referral_guid)
    WHERE status <> 'cancelled' AND referral_guid IS NOT NULL;
-- A person's active bookings of a speciality (rule 4008).
CREATE INDEX bookings_person_spec ON bookings (person_guid, spec_code) WHERE status = 'active';

-- DocumentHistory of seed 002: every booking and cancellation, who, when
-- and through which client application.
CREATE TABLE booking_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_guid    uuid NOT NULL REFERENCES bookings (guid),
    at              timestamptz NOT NULL DEFAULT now(),
    element         text NOT NULL,            -- 'status'
    old_value       text NOT NULL DEFAULT '',
    new_value       text NOT NULL,
    editor          text NOT NULL DEFAULT '',
    client          text NOT NULL DEFAULT ''  -- client application's mnemonic
);
CREATE INDEX booking_history_booking ON booking_history (booking_guid);

-- A timestamp as the vendor writes it: local time of zone tz with its
-- offset, 2018-12-27T17:00:00+03:00.
CREATE FUNCTION mip_local_ts(ts timestamptz, tz text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE tz, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN o < interval '0' THEN '-' ELSE '+' END
        || to_char(abs(extract(epoch FROM o))::int / 3600, 'FM00') || ':'
        || to_char(abs(extract(epoch FROM o))::int % 3600 / 60, 'FM00')
      FROM (SELECT (ts AT TIME ZONE tz) - (ts AT TIME ZONE 'UTC') AS o) t
$$;

-- "Фамилия И. О." of a resource (a room: its name alone).
CREATE FUNCTION mip_short_fio(r resources) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT trim(r.family
        || CASE WHEN r.name <> '' THEN ' ' || left(r.name, 1) || '.' ELSE '' END
        || CASE WHEN r.patronymic <> '' THEN ' ' || left(r.patronymic, 1) || '.' ELSE '' END)
$$;

-- TicketVisitWithLpu of seed 002 for one booking: the LPU with its status
-- and every field its MIS uploaded, the cell, the resource, the booking
-- and its history.
CREATE FUNCTION mip_ticket(p_booking uuid, tz text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
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
$$;

-- What a booking call answers on success: the booking, whether it was one
-- the patient already held (a retry), where its cell is, and with "full"
-- its TicketVisitWithLpu.
CREATE FUNCTION mip_book_answer(b bookings, q jsonb, existing boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('booking', b.guid, 'ticket', b.ticket, 'existing', existing)
        || CASE WHEN (q->>'full')::boolean
                THEN jsonb_build_object('visit', mip_ticket(b.guid, q->>'tz'))
                ELSE '{}'::jsonb END
$$;

-- The answer for a cell a booking holds: the booking itself to the patient
-- who holds it (a retry), 4009 to anyone else.
CREATE FUNCTION mip_book_held(b bookings, p_person uuid, q jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN b.person_guid = p_person AND b.status = 'active'
                THEN mip_book_answer(b, q, true)
                ELSE jsonb_build_object('e', 'cell_taken', 'holder', b.person_guid) END
$$;

-- One booking. q: person, lpu, mcod (seed 001: must be the LPU's), resource,
-- begin (epoch seconds), referral (optional), email, phone, email_agree,
-- source, login, tz, full, and rules {internet, self_block, children,
-- children_age, age_limits, dispensary, referral_only, one_per_spec}, each
-- rule on when true. Refusals: {"e": reason} with what its message needs.
-- Few statements, each doing much: every statement of a PL/pgSQL function
-- costs a round of the executor, and a booking is the hot write.
CREATE FUNCTION mip_book(q jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    p_person   uuid := q->>'person';
    p_lpu      uuid := q->>'lpu';
    p_resource uuid := q->>'resource';
    p_begin    timestamptz := to_timestamp((q->>'begin')::float8);
    p_referral uuid := q->>'referral';
    rules      jsonb := q->'rules';
    tz         text := q->>'tz';
    f   record;   -- the LPU, the resource, the card and the person at once
    c   record;   -- the cell, locked, and the booking that holds it
    b   bookings;
    ref referrals;
    cell_day date;
    age int;
BEGIN
    SELECT l.mcod, l.is_children, r.guid AS res, r.spec_code, r.age_min, r.age_max,
           r.gender AS res_gender, r.dispensary_only, r.referral_only,
           m.guid AS card, m.is_closed, m.black_label, p.birthday, p.gender
      INTO f
      FROM lpus l
      LEFT JOIN resources r ON r.guid = p_resource AND r.lpu_guid = l.guid AND r.is_active
      LEFT JOIN medical_cards m ON m.person_guid = p_person AND m.lpu_guid = l.guid
      LEFT JOIN persons p ON p.guid = p_person
     WHERE l.guid = p_lpu AND l.is_active;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('e', 'no_lpu');
    ELSIF q ? 'mcod' AND f.mcod <> q->>'mcod' THEN
        RETURN jsonb_build_object('e', 'lpu_mismatch');
    ELSIF f.res IS NULL THEN
        RETURN jsonb_build_object('e', 'no_resource');
    ELSIF f.card IS NULL THEN
        RETURN jsonb_build_object('e', 'no_card');
    ELSIF f.is_closed THEN
        RETURN jsonb_build_object('e', 'card_closed');
    END IF;

    -- The cell, locked, and whether a booking holds it: 4009 (or, for the
    -- same patient, the booking it holds) without more work. The lock
    -- queues concurrent bookings of one cell here, so that the second sees
    -- the first's booking; and an MIS upload that moves the cell (it locks
    -- the row first, 004) either waits for this booking and sees it, or
    -- moves the cell first, and then this row no longer matches the time
    -- asked for (no_cell). The booking is read after the lock is granted,
    -- hence its own statement.
    SELECT cl.guid, cl.begin_at, cl.busy_type, cl.access INTO c
      FROM cells cl WHERE cl.resource_guid = p_resource AND cl.begin_at = p_begin FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('e', 'no_cell');
    END IF;
    SELECT * INTO b FROM bookings WHERE cell_guid = c.guid AND status <> 'cancelled';
    IF FOUND THEN
        RETURN mip_book_held(b, p_person, q);
    END IF;
    IF c.begin_at <= now() THEN
        RETURN jsonb_build_object('e', 'cell_past');
    END IF;
    IF (rules->>'internet')::boolean AND (c.busy_type <> 1 OR NOT 'Internet' = ANY (c.access)) THEN
        RETURN jsonb_build_object('e', 'cell_closed');
    END IF;

    IF (rules->>'self_block')::boolean AND f.black_label THEN
        RETURN jsonb_build_object('e', 'self_block');
    END IF;
    cell_day := (c.begin_at AT TIME ZONE tz)::date;
    age := extract(year FROM age(cell_day, f.birthday))::int;
    IF (rules->>'children')::boolean AND f.is_children
       AND age >= (rules->>'children_age')::int THEN
        RETURN jsonb_build_object('e', 'children');
    END IF;
    IF (rules->>'age_limits')::boolean
       AND (age < coalesce(f.age_min, 0) OR age > coalesce(f.age_max, 1000)
            OR (f.res_gender IS NOT NULL AND f.res_gender IS DISTINCT FROM f.gender)) THEN
        RETURN jsonb_build_object('e', 'age_limits');
    END IF;
    IF (rules->>'dispensary')::boolean AND f.dispensary_only
       AND NOT EXISTS (SELECT 1 FROM dispensary
                        WHERE resource_guid = p_resource AND person_guid = p_person) THEN
        RETURN jsonb_build_object('e', 'dispensary');
    END IF;

    IF p_referral IS NOT NULL THEN
        -- Unknown, someone else's, for another LPU or resource, out of its
        -- dates, or used: one answer (4031), as the seeds give one code.
        SELECT * INTO ref FROM referrals WHERE guid = p_referral;
        IF NOT FOUND OR ref.person_guid <> p_person OR ref.lpu_to_guid <> p_lpu
           OR (ref.resource_guid IS NOT NULL AND ref.resource_guid <> p_resource)
           OR (ref.resource_guid IS NULL AND ref.spec_code <> f.spec_code)
           OR cell_day < ref.issued_on OR cell_day > ref.valid_until
           OR EXISTS (SELECT 1 FROM bookings WHERE referral_guid = p_referral
                                               AND status <> 'cancelled') THEN
            RETURN jsonb_build_object('e', 'referral');
        END IF;
    ELSIF (rules->>'referral_only')::boolean AND f.referral_only THEN
        RETURN jsonb_build_object('e', 'referral_required');
    END IF;

    IF (rules->>'one_per_spec')::boolean THEN
        -- Two bookings of one person and speciality at once must not both
        -- pass the look-up below: they queue on this lock until commit (and
        -- the look-up is a statement of its own, for a snapshot taken after
        -- the wait).
        PERFORM pg_advisory_xact_lock(mip_book_spec_key(p_person, f.spec_code));  -- 008
        SELECT * INTO b FROM bookings
         WHERE person_guid = p_person AND spec_code = f.spec_code AND status = 'active'
           AND begin_at > now()
         ORDER BY begin_at LIMIT 1;
        IF FOUND THEN
            RETURN jsonb_build_object('e', 'one_per_spec',
                'fio', (SELECT mip_short_fio(x) FROM resources x JOIN cells y
                          ON y.resource_guid = x.guid WHERE y.guid = b.cell_guid),
                'time', to_char(b.begin_at AT TIME ZONE tz, 'DD.MM.YYYY HH24:MI'));
        END IF;
    END IF;

    -- The booking, its history and the card's e-mail (the patient's latest)
    -- in one statement. Should a booking of the cell have come in all the
    -- same (the row lock above makes that a bug), the unique index lets
    -- one insert and the other inserts nothing, without an error (and so
    -- without a subtransaction), and answers as a booked cell does.
    WITH nb AS (
        INSERT INTO bookings (guid, cell_guid, mkab_guid, person_guid, referral_guid, ticket,
                              begin_at, spec_code, email, phone, email_agree, source, login)
        VALUES (gen_random_uuid(), c.guid, f.card, p_person, p_referral,
                to_char(nextval('booking_tickets'), 'FM000000'), c.begin_at, f.spec_code,
                q->>'email', q->>'phone', (q->>'email_agree')::boolean,
                coalesce(q->>'source', ''), coalesce(q->>'login', ''))
        ON CONFLICT (cell_guid) WHERE status <> 'cancelled' DO NOTHING
        RETURNING *
    ), h AS (
        INSERT INTO booking_history (booking_guid, element, old_value, new_value, editor, client)
        SELECT guid, 'status', '', 'active', login, source FROM nb
    ), e AS (
        UPDATE medical_cards SET email = q->>'email', updated_at = now()
         WHERE guid = f.card AND q->>'email' IS NOT NULL AND email IS DISTINCT FROM q->>'email'
           AND EXISTS (SELECT FROM nb)
    )
    SELECT * INTO b FROM nb;
    IF NOT FOUND THEN
        SELECT * INTO b FROM bookings WHERE cell_guid = c.guid AND status <> 'cancelled';
        RETURN mip_book_held(b, p_person, q);
    END IF;
    RETURN mip_book_answer(b, q, false);
END
$$;

-- A cancellation. q: person, lpu, booking, source, login, rules
-- {delete_old_time, delete_visit_status}. Someone else's booking is not
-- found, as an unknown one is. Cancelling a cancelled booking again answers
-- as the first time did.
CREATE FUNCTION mip_cancel(q jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    rules jsonb := q->'rules';
    b bookings;
    res uuid;
BEGIN
    SELECT bk.* INTO b FROM bookings bk
      JOIN medical_cards m ON m.guid = bk.mkab_guid
     WHERE bk.guid = (q->>'booking')::uuid AND m.lpu_guid = (q->>'lpu')::uuid
       AND bk.person_guid = (q->>'person')::uuid
       FOR UPDATE OF bk;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('e', 'no_booking');
    END IF;
    SELECT resource_guid INTO res FROM cells WHERE guid = b.cell_guid;
    IF b.status = 'cancelled' THEN
        RETURN jsonb_build_object('resource', res, 'begin', extract(epoch FROM b.begin_at)::bigint,
                                  'again', true);
    END IF;
    IF (rules->>'delete_visit_status')::boolean AND b.status = 'visited' THEN
        RETURN jsonb_build_object('e', 'visited');
    END IF;
    IF (rules->>'delete_old_time')::boolean AND b.begin_at <= now() THEN
        RETURN jsonb_build_object('e', 'past');
    END IF;
    UPDATE bookings SET status = 'cancelled', updated_at = now() WHERE guid = b.guid;
    INSERT INTO booking_history (booking_guid, element, old_value, new_value, editor, client)
    VALUES (b.guid, 'status', b.status, 'cancelled', coalesce(q->>'login', ''),
            coalesce(q->>'source', ''));
    RETURN jsonb_build_object('resource', res, 'begin', extract(epoch FROM b.begin_at)::bigint,
                              'again', false);
END
$$;

-- A person's bookings, the latest first: TicketVisitWithLpu each, with the
-- visit's id (LPU guid + booking guid, as the entry answer gives it) and
-- its status.
CREATE FUNCTION mip_visits(p_person uuid, tz text, lim int) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(v ORDER BY t DESC), '[]'::jsonb)
      FROM (SELECT mip_ticket(b.guid, tz)
                   || jsonb_build_object('visitId', m.lpu_guid::text || b.guid::text,
                                         'status', b.status) AS v,
                   b.begin_at AS t
              FROM bookings b JOIN medical_cards m ON m.guid = b.mkab_guid
             WHERE b.person_guid = p_person
             ORDER BY b.begin_at DESC LIMIT lim) s
$$;
