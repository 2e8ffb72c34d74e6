-- 008: several patients' uploads in one transaction.
--
-- The pool (src/pg.c) sends the POST /patients calls that queue up while
-- their connections are busy as one call of mip_patient_upload_many: one
-- round trip and one commit for all of them, each answered after it. A card costs PostgreSQL about
-- half as much that way, most of it what each transaction pays whatever it
-- does (its start and commit, the WAL flush, the set-up of each PL/pgSQL
-- expression, which lives per transaction).

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
-- caller's transaction. Every lock of every item is taken first, in one
-- order (kind, then key; the volatile call runs after the sort), so that
-- two batches never wait for each other in a circle on them;
-- mip_patient_upload takes none itself. (Row locks could still meet in a
-- circle, in theory: the deadlock detector then fails one batch, and the
-- pool runs its calls one by one.) A single upload is a batch of one.
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
