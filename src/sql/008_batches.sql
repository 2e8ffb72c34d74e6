-- 008: several uploads of patients, or several bookings, in one transaction.
--
-- The pool (src/pg.c) sends the calls of a batchable statement that queue
-- up while their connections are busy as one call of a *_many function: one
-- round trip and one commit for all of them, each answered after it. A card
-- or a booking costs PostgreSQL about half as much that way, most of a
-- one-call transaction's cost being the transaction itself (its start and
-- commit, the WAL flush, the set-up of each PL/pgSQL expression, which lives
-- per transaction).
--
-- Each function takes every lock its calls will wait for first, in one
-- order, so that two batches never wait for each other in a circle; the
-- single-call functions then find them held. (Should locks taken elsewhere
-- still close a circle, the deadlock detector fails one batch, and the pool
-- runs its calls again one by one.) A call that found no company is a batch
-- of one.

-- ---- POST /patients ----

-- The advisory locks an upload takes: one per identifier the item has, each
-- kind in a key space of its own (the lock's first half), so that two kinds
-- never meet on one lock. Uploads that may concern one person or one card
-- wait for each other on them.
CREATE FUNCTION mip_patient_lock_keys(item jsonb) RETURNS TABLE (kind int, k int)
LANGUAGE sql IMMUTABLE AS $$
    SELECT t.kind, hashtext(t.v) FROM (VALUES
        (3301, item->>'snils'),
        (3302, CASE WHEN (item->>'is_enp')::boolean THEN item->>'polis_key' END),
        (3303, CASE WHEN item->>'doc_type' = '14' THEN (item->>'doc_series') || '|' || (item->>'doc_number') END),
        (3304, (item->>'family_key') || '|' || (item->>'name_key') || '|' || (item->>'patronymic_key')
               || '|' || (item->>'birthday')),
        (3305, (item->>'guid')::uuid::text),
        (3306, (item->'attachment'->>'guid')::uuid::text)) AS t (kind, v)
    WHERE t.v IS NOT NULL
$$;

-- Stores items[i] with alloweds[i] (a text[] literal, or null: any LPU) by
-- mip_patient_upload and returns its answer as row i, in order, all in the
-- caller's transaction. The locks of every item first, by kind, then key
-- (the volatile call runs after the sort); mip_patient_upload takes none
-- itself.
CREATE FUNCTION mip_patient_upload_many(items jsonb, alloweds jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(l.kind, l.k)
       FROM jsonb_array_elements(items) AS i (item), mip_patient_lock_keys(i.item) AS l
      ORDER BY l.kind, l.k;
    FOR n IN 0 .. jsonb_array_length(items) - 1 LOOP
        RETURN NEXT mip_patient_upload(items->n, (alloweds->>n)::text[]);
    END LOOP;
END
$$;

-- ---- bookings (seeds 001 and 002) ----

-- The lock that queues two bookings of one person and speciality (rule
-- 4008), so that the second sees the first's.
CREATE FUNCTION mip_book_spec_key(p_person uuid, p_spec text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended('book:' || p_person || ':' || p_spec, 0)
$$;

-- Books qs[i] by mip_book and returns its answer as row i, in order. The
-- locks first: the cells asked for, by guid, then the speciality locks of
-- the rule, by key (mip_book takes a cell before a speciality, so this
-- order is the one every booking follows).
CREATE FUNCTION mip_book_many(qs jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM cells cl
      JOIN jsonb_array_elements(qs) AS q (q)
        ON cl.resource_guid = (q.q->>'resource')::uuid
       AND cl.begin_at = to_timestamp((q.q->>'begin')::float8)
     ORDER BY cl.guid FOR UPDATE OF cl;
    PERFORM pg_advisory_xact_lock(s.k)
       FROM (SELECT DISTINCT mip_book_spec_key((q.q->>'person')::uuid, r.spec_code) AS k
               FROM jsonb_array_elements(qs) AS q (q)
               JOIN resources r ON r.guid = (q.q->>'resource')::uuid
              WHERE (q.q->'rules'->>'one_per_spec')::boolean) AS s
      ORDER BY s.k;
    FOR n IN 0 .. jsonb_array_length(qs) - 1 LOOP
        RETURN NEXT mip_book(qs->n);
    END LOOP;
END
$$;
