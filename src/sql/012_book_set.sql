-- 012: a batch of bookings checked and written by one statement.
--
-- mip_book_many (008) called mip_book once per booking: about a dozen
-- PL/pgSQL statements each, every one a round of the executor. The
-- bookings that pass every rule are the hot path; here they are all
-- checked by one query and written by one statement (the bookings, their
-- history and the cards' e-mail). On the bench's data, batches of 32 in
-- one session without fsync went from about 230 to 150 µs of PostgreSQL's
-- time a booking; under the bench's load, from about 195 to 150 µs of its
-- CPU (docs/benchmarks.md). Every other booking of the batch still goes
-- through mip_book, which finds the refusal and says which one in the
-- order docs/api.md gives, or books it where the query was more careful
-- than it needed to be (a time zone or an age limit it cannot compare).
--
-- The answers are those of one mip_book call after another, in the order
-- of the batch, but for the order of the ticket numbers within the batch
-- (the query's bookings take theirs first). The query takes only the
-- bookings that share no cell, no person and no referral with an earlier
-- booking of the batch, and whose cell the batch holds locked, so nothing
-- it writes changes what an earlier booking would have been answered; the
-- others run afterwards through mip_book, in order, and see what it wrote,
-- as they would have seen it one by one.
--
-- PL/pgSQL would plan the query again at every call with the batch's own
-- values (a custom plan, about 12 ms for this one), because the generic
-- plan's estimate over a JSON argument looks dearer; the generic plan is
-- the right one for every batch, so the function asks for it.
CREATE OR REPLACE FUNCTION mip_book_many(qs jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    n int := jsonb_array_length(qs);
    locked uuid[];       -- the cells the batch holds
    booked bookings[];   -- booked[k]: what the query booked for qs[k], or null
BEGIN
    -- The locks first, in the order a single mip_book takes them: the
    -- cells by guid, the speciality locks of rule 4008 by key, then the
    -- cards whose e-mail a booking may set, by guid (the query sets them in
    -- an order of its own, which two batches must not meet in a circle).
    -- A cell made after the first statement is not in `locked`: its
    -- booking goes to mip_book, which locks it.
    SELECT array_agg(g) INTO locked
      FROM (SELECT cl.guid AS g FROM cells cl
              JOIN jsonb_array_elements(qs) AS q (q)
                ON cl.resource_guid = (q.q->>'resource')::uuid
               AND cl.begin_at = to_timestamp((q.q->>'begin')::float8)
             ORDER BY cl.guid FOR UPDATE OF cl) s;
    PERFORM pg_advisory_xact_lock(s.k)
       FROM (SELECT DISTINCT mip_book_spec_key((q.q->>'person')::uuid, r.spec_code) AS k
               FROM jsonb_array_elements(qs) AS q (q)
               JOIN resources r ON r.guid = (q.q->>'resource')::uuid
              WHERE (q.q->'rules'->>'one_per_spec')::boolean) AS s
      ORDER BY s.k;
    PERFORM 1 FROM medical_cards m
      JOIN jsonb_array_elements(qs) AS q (q)
        ON m.person_guid = (q.q->>'person')::uuid AND m.lpu_guid = (q.q->>'lpu')::uuid
     WHERE q.q->>'email' IS NOT NULL
     ORDER BY m.guid FOR NO KEY UPDATE OF m;

    -- Each condition is one of mip_book's refusals turned around; a
    -- booking that fails any (or where one is unknown) is left to mip_book.
    WITH q AS (
        SELECT t.i, t.q, (t.q->>'person')::uuid AS person, (t.q->>'lpu')::uuid AS lpu,
               (t.q->>'resource')::uuid AS resource,
               to_timestamp((t.q->>'begin')::float8) AS begin_at,
               (t.q->>'referral')::uuid AS referral, t.q->'rules' AS rules
          FROM jsonb_array_elements(qs) WITH ORDINALITY AS t (q, i)
    ), ok AS MATERIALIZED (
        SELECT q.i, q.q, q.person, q.referral, gen_random_uuid() AS guid, c.guid AS cell,
               c.begin_at, m.guid AS card, r.spec_code
          FROM q
          JOIN lpus l ON l.guid = q.lpu AND l.is_active
                     AND (NOT q.q ? 'mcod' OR l.mcod = q.q->>'mcod')
          JOIN resources r ON r.guid = q.resource AND r.lpu_guid = l.guid AND r.is_active
          JOIN medical_cards m ON m.person_guid = q.person AND m.lpu_guid = l.guid
                              AND NOT m.is_closed
          JOIN persons p ON p.guid = q.person
          JOIN cells c ON c.resource_guid = q.resource AND c.begin_at = q.begin_at
                      AND c.guid = ANY (locked)
          CROSS JOIN LATERAL (
              SELECT d AS day, extract(year FROM age(d, p.birthday))::int AS age
                FROM (SELECT (c.begin_at AT TIME ZONE (q.q->>'tz'))::date AS d) x) a
         WHERE NOT EXISTS (SELECT 1 FROM q AS e
                            WHERE e.i < q.i
                              AND (e.person = q.person OR e.referral = q.referral
                                   OR (e.resource = q.resource AND e.begin_at = q.begin_at)))
           AND NOT EXISTS (SELECT 1 FROM bookings b
                            WHERE b.cell_guid = c.guid AND b.status <> 'cancelled')
           AND c.begin_at > now()
           AND NOT ((q.rules->>'internet')::boolean
                    AND (c.busy_type <> 1 OR NOT 'Internet' = ANY (c.access)))
           AND NOT ((q.rules->>'self_block')::boolean AND m.black_label)
           AND NOT ((q.rules->>'children')::boolean AND l.is_children
                    AND a.age >= (q.rules->>'children_age')::int)
           AND NOT ((q.rules->>'age_limits')::boolean
                    AND (a.age < coalesce(r.age_min, 0) OR a.age > coalesce(r.age_max, 1000)
                         OR (r.gender IS NOT NULL AND r.gender IS DISTINCT FROM p.gender)))
           AND NOT ((q.rules->>'dispensary')::boolean AND r.dispensary_only
                    AND NOT EXISTS (SELECT 1 FROM dispensary d
                                     WHERE d.resource_guid = q.resource
                                       AND d.person_guid = q.person))
           AND CASE WHEN q.referral IS NULL
                    THEN NOT ((q.rules->>'referral_only')::boolean AND r.referral_only)
                    ELSE EXISTS (SELECT 1 FROM referrals f
                                  WHERE f.guid = q.referral AND f.person_guid = q.person
                                    AND f.lpu_to_guid = q.lpu
                                    AND (f.resource_guid = q.resource
                                         OR (f.resource_guid IS NULL
                                             AND f.spec_code = r.spec_code))
                                    AND a.day BETWEEN f.issued_on AND f.valid_until)
                         AND NOT EXISTS (SELECT 1 FROM bookings b
                                          WHERE b.referral_guid = q.referral
                                            AND b.status <> 'cancelled')
               END
           AND NOT ((q.rules->>'one_per_spec')::boolean
                    AND EXISTS (SELECT 1 FROM bookings b
                                 WHERE b.person_guid = q.person AND b.spec_code = r.spec_code
                                   AND b.status = 'active' AND b.begin_at > now()))
    ), nb AS (
        -- The cells are locked and free, so nothing conflicts; should
        -- something all the same, its booking is not made here and
        -- mip_book answers it as a taken cell.
        INSERT INTO bookings (guid, cell_guid, mkab_guid, person_guid, referral_guid, ticket,
                              begin_at, spec_code, email, phone, email_agree, source, login)
        SELECT guid, cell, card, person, referral,
               to_char(nextval('booking_tickets'), 'FM000000'), begin_at, spec_code,
               q->>'email', q->>'phone', (q->>'email_agree')::boolean,
               coalesce(q->>'source', ''), coalesce(q->>'login', '')
          FROM ok ORDER BY i
        ON CONFLICT (cell_guid) WHERE status <> 'cancelled' DO NOTHING
        RETURNING *
    ), h AS (
        INSERT INTO booking_history (booking_guid, element, old_value, new_value, editor, client)
        SELECT guid, 'status', '', 'active', login, source FROM nb
    ), e AS (
        -- the card's e-mail becomes the patient's latest (one booking per
        -- person here, so one per card)
        UPDATE medical_cards m SET email = ok.q->>'email', updated_at = now()
          FROM ok JOIN nb ON nb.guid = ok.guid
         WHERE m.guid = ok.card AND ok.q->>'email' IS NOT NULL
           AND m.email IS DISTINCT FROM ok.q->>'email'
    )
    SELECT array_agg(x.b ORDER BY t.i) INTO booked
      FROM generate_series(1, n) AS t (i)
      LEFT JOIN (SELECT ok.i, nb::bookings AS b FROM ok JOIN nb ON nb.guid = ok.guid) x
        ON x.i = t.i;

    -- The answers, in order; a statement apart from the write, so that a
    -- TicketVisitWithLpu (mip_book_answer with "full") sees the booking.
    FOR k IN 1 .. n LOOP
        IF (booked[k]).guid IS NOT NULL THEN  -- (a row IS NOT NULL only when every field is)
            RETURN NEXT mip_book_answer(booked[k], qs->(k - 1), false);
        ELSE
            RETURN NEXT mip_book(qs->(k - 1));
        END IF;
    END LOOP;
END
$$;
