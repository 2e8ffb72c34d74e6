-- 004: bulk uploads of reference data (POST /mis/v1/..., and `mipgw import`).
-- One function per kind takes the items src/refdata.c validated and
-- normalized (a jsonb array; each item carries its index "i") and the МКОДs
-- the login may write for (NULL: any, for the importer), and answers in one
-- round trip with either {"forbidden": "<МКОД>"} -- nothing written, because
-- an item names an LPU the login does not own -- or {"results": [...]}, one
-- {"i", "s" (status), "m" (messages)} per item. Each item runs in its own
-- subtransaction: one failure never rolls back the others. Upserts change a
-- row (and its updated_at) only when a value differs, so a re-sent batch
-- is "Unchanged" throughout.

-- The МКОД of an LPU the login may not write for; NULL when it may, when
-- the LPU is unknown (that item is answered NotValid), or for the importer.
CREATE FUNCTION refdata_foreign(p_lpu uuid, p_mcods text[]) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT l.mcod FROM lpus l
     WHERE p_mcods IS NOT NULL AND l.guid = p_lpu AND NOT (l.mcod = ANY (p_mcods))
$$;

CREATE FUNCTION refdata_result(p_item jsonb, p_status text, p_msgs text[] DEFAULT '{}')
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('i', p_item->'i', 's', p_status, 'm', to_jsonb(p_msgs))
$$;

-- A failed statement as a message an MIS can act on. Constraint names say
-- which rule broke; anything else is reported without the row's values.
CREATE FUNCTION refdata_error(p_state text, p_constraint text, p_msg text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_constraint = 'cells_resource_begin'
            THEN 'begin: у ресурса уже есть другая ячейка с этим временем начала'
        WHEN p_constraint = 'lpus_mcod_key'
            THEN 'mcod: МКОД уже принадлежит другому ЛПУ'
        WHEN p_state = '23503'
            THEN 'На запись ссылаются другие данные (например, записи на приём): удалить её нельзя'
        WHEN p_state = '23514'
            THEN 'Значения не согласованы между собой: ' || coalesce(p_constraint, '')
        ELSE 'Ошибка сохранения (' || p_state || ')'
    END
$$;

-- LPUs: ownership of a new МКОД is checked by the caller; here the МКОД an
-- existing LPU has now, so that a login cannot take over another's LPU.
CREATE FUNCTION refdata_lpus(p_items jsonb, p_mcods text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    res jsonb[] := '{}';  -- appended in place; one jsonb at the end
    f text;
    n int;
    c text;
BEGIN
    SELECT refdata_foreign((x->>'guid')::uuid, p_mcods) INTO f
      FROM jsonb_array_elements(p_items) x
     WHERE refdata_foreign((x->>'guid')::uuid, p_mcods) IS NOT NULL LIMIT 1;
    IF f IS NOT NULL THEN
        RETURN jsonb_build_object('forbidden', f);
    END IF;
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        BEGIN
            INSERT INTO lpus AS l (guid, mcod, name, is_children, is_active, attrs)
            VALUES ((it->>'guid')::uuid, it->>'mcod', it->>'name', (it->>'is_children')::boolean,
                    (it->>'is_active')::boolean, it->'attrs')
            ON CONFLICT (guid) DO UPDATE SET mcod = EXCLUDED.mcod, name = EXCLUDED.name,
                is_children = EXCLUDED.is_children, is_active = EXCLUDED.is_active,
                attrs = EXCLUDED.attrs, updated_at = now()
             WHERE (l.mcod, l.name, l.is_children, l.is_active, l.attrs)
                   IS DISTINCT FROM (EXCLUDED.mcod, EXCLUDED.name, EXCLUDED.is_children,
                                     EXCLUDED.is_active, EXCLUDED.attrs);
            GET DIAGNOSTICS n = ROW_COUNT;
            res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Uploaded' END));
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
            res := array_append(res, refdata_result(it, 'Error', ARRAY[refdata_error(SQLSTATE, c, SQLERRM)]));
        END;
    END LOOP;
    RETURN jsonb_build_object('results', to_jsonb(res));
END
$$;

CREATE FUNCTION refdata_resources(p_items jsonb, p_mcods text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    res jsonb[] := '{}';  -- appended in place; one jsonb at the end
    f text;
    n int;
    c text;
BEGIN
    -- the LPU named, and the one an existing resource belongs to now
    SELECT coalesce(refdata_foreign((x->>'lpu_guid')::uuid, p_mcods),
                    refdata_foreign(r.lpu_guid, p_mcods)) INTO f
      FROM jsonb_array_elements(p_items) x
      LEFT JOIN resources r ON r.guid = (x->>'guid')::uuid
     WHERE coalesce(refdata_foreign((x->>'lpu_guid')::uuid, p_mcods),
                    refdata_foreign(r.lpu_guid, p_mcods)) IS NOT NULL LIMIT 1;
    IF f IS NOT NULL THEN
        RETURN jsonb_build_object('forbidden', f);
    END IF;
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        IF NOT EXISTS (SELECT 1 FROM lpus WHERE guid = (it->>'lpu_guid')::uuid) THEN
            res := array_append(res, refdata_result(it, 'NotValid',
                                         ARRAY['lpuGuid: ЛПУ ' || (it->>'lpu_guid') || ' не найдено']));
            CONTINUE;
        END IF;
        BEGIN
            INSERT INTO resources AS r (guid, lpu_guid, res_type, family, name, patronymic, role,
                                        spec_code, spec_name, room, floor, age_min, age_max, gender,
                                        dispensary_only, referral_only, is_active)
            VALUES ((it->>'guid')::uuid, (it->>'lpu_guid')::uuid, it->>'res_type', it->>'family',
                    it->>'name', it->>'patronymic', it->>'role', it->>'spec_code', it->>'spec_name',
                    it->>'room', (it->>'floor')::int, (it->>'age_min')::int, (it->>'age_max')::int,
                    (it->>'gender')::smallint, (it->>'dispensary_only')::boolean,
                    (it->>'referral_only')::boolean, (it->>'is_active')::boolean)
            ON CONFLICT (guid) DO UPDATE SET lpu_guid = EXCLUDED.lpu_guid,
                res_type = EXCLUDED.res_type, family = EXCLUDED.family, name = EXCLUDED.name,
                patronymic = EXCLUDED.patronymic, role = EXCLUDED.role,
                spec_code = EXCLUDED.spec_code, spec_name = EXCLUDED.spec_name,
                room = EXCLUDED.room, floor = EXCLUDED.floor, age_min = EXCLUDED.age_min,
                age_max = EXCLUDED.age_max, gender = EXCLUDED.gender,
                dispensary_only = EXCLUDED.dispensary_only, referral_only = EXCLUDED.referral_only,
                is_active = EXCLUDED.is_active, updated_at = now()
             WHERE (r.lpu_guid, r.res_type, r.family, r.name, r.patronymic, r.role, r.spec_code,
                    r.spec_name, r.room, r.floor, r.age_min, r.age_max, r.gender,
                    r.dispensary_only, r.referral_only, r.is_active)
                   IS DISTINCT FROM
                   (EXCLUDED.lpu_guid, EXCLUDED.res_type, EXCLUDED.family, EXCLUDED.name,
                    EXCLUDED.patronymic, EXCLUDED.role, EXCLUDED.spec_code, EXCLUDED.spec_name,
                    EXCLUDED.room, EXCLUDED.floor, EXCLUDED.age_min, EXCLUDED.age_max,
                    EXCLUDED.gender, EXCLUDED.dispensary_only, EXCLUDED.referral_only,
                    EXCLUDED.is_active);
            GET DIAGNOSTICS n = ROW_COUNT;
            res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Uploaded' END));
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
            res := array_append(res, refdata_result(it, 'Error', ARRAY[refdata_error(SQLSTATE, c, SQLERRM)]));
        END;
    END LOOP;
    RETURN jsonb_build_object('results', to_jsonb(res));
END
$$;

-- Cells. A cell held by a booking (status <> 'cancelled') keeps its
-- resource, begin and end, and is not deleted. The cell row is locked
-- first: a booking's foreign key takes a share lock on it, so a booking
-- made meanwhile is either seen here or waits for this upload.
CREATE FUNCTION refdata_cells(p_items jsonb, p_mcods text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    res jsonb[] := '{}';  -- appended in place; one jsonb at the end
    f text;
    n int;
    c text;
    old cells;
    g uuid;
    del boolean;
BEGIN
    SELECT coalesce(refdata_foreign(nr.lpu_guid, p_mcods), refdata_foreign(orr.lpu_guid, p_mcods)) INTO f
      FROM jsonb_array_elements(p_items) x
      LEFT JOIN resources nr ON nr.guid = (x->>'resource_guid')::uuid
      LEFT JOIN cells oc ON oc.guid = (x->>'guid')::uuid
      LEFT JOIN resources orr ON orr.guid = oc.resource_guid
     WHERE coalesce(refdata_foreign(nr.lpu_guid, p_mcods),
                    refdata_foreign(orr.lpu_guid, p_mcods)) IS NOT NULL LIMIT 1;
    IF f IS NOT NULL THEN
        RETURN jsonb_build_object('forbidden', f);
    END IF;
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        g := (it->>'guid')::uuid;
        del := coalesce((it->>'deleted')::boolean, false);
        IF NOT del AND NOT EXISTS (SELECT 1 FROM resources WHERE guid = (it->>'resource_guid')::uuid) THEN
            res := array_append(res, refdata_result(it, 'NotValid',
                       ARRAY['resourceGuid: ресурс ' || (it->>'resource_guid') || ' не найден']));
            CONTINUE;
        END IF;
        BEGIN
            SELECT * INTO old FROM cells WHERE guid = g FOR UPDATE;
            IF FOUND AND EXISTS (SELECT 1 FROM bookings WHERE cell_guid = g AND status <> 'cancelled')
               AND (del OR old.resource_guid <> (it->>'resource_guid')::uuid
                    OR old.begin_at <> (it->>'begin')::timestamptz
                    OR old.end_at <> (it->>'end')::timestamptz) THEN
                res := array_append(res, refdata_result(it, 'Error', ARRAY[CASE WHEN del
                    THEN 'deleted: на ячейку записан пациент, удалить её нельзя'
                    ELSE 'begin: на ячейку записан пациент, перенести её (resourceGuid, begin, end) нельзя'
                    END]));
                CONTINUE;
            END IF;
            IF del THEN
                DELETE FROM cells WHERE guid = g;
                GET DIAGNOSTICS n = ROW_COUNT;
                res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Deleted' END));
                CONTINUE;
            END IF;
            INSERT INTO cells AS x (guid, resource_guid, begin_at, end_at, busy_name, busy_type,
                                    busy_code, access)
            VALUES (g, (it->>'resource_guid')::uuid, (it->>'begin')::timestamptz,
                    (it->>'end')::timestamptz, it->>'busy_name', (it->>'busy_type')::smallint,
                    it->>'busy_code', ARRAY(SELECT jsonb_array_elements_text(it->'access')))
            ON CONFLICT (guid) DO UPDATE SET resource_guid = EXCLUDED.resource_guid,
                begin_at = EXCLUDED.begin_at, end_at = EXCLUDED.end_at,
                busy_name = EXCLUDED.busy_name, busy_type = EXCLUDED.busy_type,
                busy_code = EXCLUDED.busy_code, access = EXCLUDED.access, updated_at = now()
             WHERE (x.resource_guid, x.begin_at, x.end_at, x.busy_name, x.busy_type, x.busy_code,
                    x.access)
                   IS DISTINCT FROM
                   (EXCLUDED.resource_guid, EXCLUDED.begin_at, EXCLUDED.end_at, EXCLUDED.busy_name,
                    EXCLUDED.busy_type, EXCLUDED.busy_code, EXCLUDED.access);
            GET DIAGNOSTICS n = ROW_COUNT;
            res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Uploaded' END));
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
            res := array_append(res, refdata_result(it, 'Error', ARRAY[refdata_error(SQLSTATE, c, SQLERRM)]));
        END;
    END LOOP;
    RETURN jsonb_build_object('results', to_jsonb(res));
END
$$;

-- The person an item names: by SNILS (bare digits), person guid or card guid.
CREATE FUNCTION refdata_person(p_item jsonb) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_item ? 'person_snils'
            THEN (SELECT guid FROM persons WHERE snils = p_item->>'person_snils')
        WHEN p_item ? 'person_guid'
            THEN (SELECT guid FROM persons WHERE guid = (p_item->>'person_guid')::uuid)
        ELSE (SELECT person_guid FROM medical_cards WHERE guid = (p_item->>'mkab_guid')::uuid)
    END
$$;

CREATE FUNCTION refdata_person_field(p_item jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_item ? 'person_snils' THEN 'personSnils'
                WHEN p_item ? 'person_guid' THEN 'personGuid' ELSE 'mkabGuid' END
$$;

-- Referrals: the login must own the LPU that issued it or the one it is
-- to (either side's MIS may upload it), now and for an existing referral.
CREATE FUNCTION refdata_referrals(p_items jsonb, p_mcods text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    res jsonb[] := '{}';  -- appended in place; one jsonb at the end
    f text;
    n int;
    c text;
    person uuid;
    msgs text[];
    rs resources;
    del boolean;
BEGIN
    SELECT coalesce(CASE WHEN refdata_foreign((x->>'lpu_from_guid')::uuid, p_mcods) IS NOT NULL
                          AND refdata_foreign((x->>'lpu_to_guid')::uuid, p_mcods) IS NOT NULL
                         THEN refdata_foreign((x->>'lpu_to_guid')::uuid, p_mcods) END,
                    CASE WHEN refdata_foreign(o.lpu_from_guid, p_mcods) IS NOT NULL
                          AND refdata_foreign(o.lpu_to_guid, p_mcods) IS NOT NULL
                         THEN refdata_foreign(o.lpu_to_guid, p_mcods) END) INTO f
      FROM jsonb_array_elements(p_items) x
      LEFT JOIN referrals o ON o.guid = (x->>'guid')::uuid
     WHERE (refdata_foreign((x->>'lpu_from_guid')::uuid, p_mcods) IS NOT NULL
            AND refdata_foreign((x->>'lpu_to_guid')::uuid, p_mcods) IS NOT NULL)
        OR (refdata_foreign(o.lpu_from_guid, p_mcods) IS NOT NULL
            AND refdata_foreign(o.lpu_to_guid, p_mcods) IS NOT NULL)
     LIMIT 1;
    IF f IS NOT NULL THEN
        RETURN jsonb_build_object('forbidden', f);
    END IF;
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        del := coalesce((it->>'deleted')::boolean, false);
        IF del THEN
            BEGIN
                DELETE FROM referrals WHERE guid = (it->>'guid')::uuid;
                GET DIAGNOSTICS n = ROW_COUNT;
                res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Deleted' END));
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
                res := array_append(res, refdata_result(it, 'Error', ARRAY[refdata_error(SQLSTATE, c, SQLERRM)]));
            END;
            CONTINUE;
        END IF;
        msgs := '{}';
        person := refdata_person(it);
        IF person IS NULL THEN
            msgs := msgs || (refdata_person_field(it) || ': пациент не найден');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM lpus WHERE guid = (it->>'lpu_from_guid')::uuid) THEN
            msgs := msgs || ('lpuFromGuid: ЛПУ ' || (it->>'lpu_from_guid') || ' не найдено');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM lpus WHERE guid = (it->>'lpu_to_guid')::uuid) THEN
            msgs := msgs || ('lpuToGuid: ЛПУ ' || (it->>'lpu_to_guid') || ' не найдено');
        END IF;
        rs := NULL;
        IF it->>'resource_guid' IS NOT NULL THEN
            SELECT * INTO rs FROM resources WHERE guid = (it->>'resource_guid')::uuid;
            IF NOT FOUND OR rs.lpu_guid <> (it->>'lpu_to_guid')::uuid THEN
                msgs := msgs || ('resourceGuid: ресурс ' || (it->>'resource_guid')
                                 || ' не найден в ЛПУ lpuToGuid');
            END IF;
        END IF;
        IF cardinality(msgs) > 0 THEN
            res := array_append(res, refdata_result(it, 'NotValid', msgs));
            CONTINUE;
        END IF;
        BEGIN
            INSERT INTO referrals AS x (guid, number, person_guid, lpu_from_guid, lpu_to_guid,
                                        resource_guid, spec_code, spec_name, kind, issued_on,
                                        valid_until)
            VALUES ((it->>'guid')::uuid, it->>'number', person, (it->>'lpu_from_guid')::uuid,
                    (it->>'lpu_to_guid')::uuid, (it->>'resource_guid')::uuid,
                    coalesce(nullif(it->>'spec_code', ''), rs.spec_code, ''),
                    coalesce(nullif(it->>'spec_name', ''), rs.spec_name, ''),
                    it->>'kind', (it->>'issued_on')::date,
                    coalesce((it->>'valid_until')::date,
                             (it->>'issued_on')::date + (it->>'valid_days')::int))
            ON CONFLICT (guid) DO UPDATE SET number = EXCLUDED.number,
                person_guid = EXCLUDED.person_guid, lpu_from_guid = EXCLUDED.lpu_from_guid,
                lpu_to_guid = EXCLUDED.lpu_to_guid, resource_guid = EXCLUDED.resource_guid,
                spec_code = EXCLUDED.spec_code, spec_name = EXCLUDED.spec_name,
                kind = EXCLUDED.kind, issued_on = EXCLUDED.issued_on,
                valid_until = EXCLUDED.valid_until, updated_at = now()
             WHERE (x.number, x.person_guid, x.lpu_from_guid, x.lpu_to_guid, x.resource_guid,
                    x.spec_code, x.spec_name, x.kind, x.issued_on, x.valid_until)
                   IS DISTINCT FROM
                   (EXCLUDED.number, EXCLUDED.person_guid, EXCLUDED.lpu_from_guid,
                    EXCLUDED.lpu_to_guid, EXCLUDED.resource_guid, EXCLUDED.spec_code,
                    EXCLUDED.spec_name, EXCLUDED.kind, EXCLUDED.issued_on, EXCLUDED.valid_until);
            GET DIAGNOSTICS n = ROW_COUNT;
            res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Uploaded' END));
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
            res := array_append(res, refdata_result(it, 'Error', ARRAY[refdata_error(SQLSTATE, c, SQLERRM)]));
        END;
    END LOOP;
    RETURN jsonb_build_object('results', to_jsonb(res));
END
$$;

-- Dispensary registrations: (person, resource) pairs; "deleted" removes one.
CREATE FUNCTION refdata_dispensary(p_items jsonb, p_mcods text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    res jsonb[] := '{}';  -- appended in place; one jsonb at the end
    f text;
    n int;
    c text;
    person uuid;
    msgs text[];
BEGIN
    SELECT refdata_foreign(r.lpu_guid, p_mcods) INTO f
      FROM jsonb_array_elements(p_items) x
      JOIN resources r ON r.guid = (x->>'resource_guid')::uuid
     WHERE refdata_foreign(r.lpu_guid, p_mcods) IS NOT NULL LIMIT 1;
    IF f IS NOT NULL THEN
        RETURN jsonb_build_object('forbidden', f);
    END IF;
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        msgs := '{}';
        person := refdata_person(it);
        IF person IS NULL THEN
            msgs := msgs || (refdata_person_field(it) || ': пациент не найден');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM resources WHERE guid = (it->>'resource_guid')::uuid) THEN
            msgs := msgs || ('resourceGuid: ресурс ' || (it->>'resource_guid') || ' не найден');
        END IF;
        IF cardinality(msgs) > 0 THEN
            res := array_append(res, refdata_result(it, 'NotValid', msgs));
            CONTINUE;
        END IF;
        BEGIN
            IF coalesce((it->>'deleted')::boolean, false) THEN
                DELETE FROM dispensary
                 WHERE person_guid = person AND resource_guid = (it->>'resource_guid')::uuid;
                GET DIAGNOSTICS n = ROW_COUNT;
                res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Deleted' END));
            ELSE
                INSERT INTO dispensary (person_guid, resource_guid)
                VALUES (person, (it->>'resource_guid')::uuid)
                ON CONFLICT DO NOTHING;
                GET DIAGNOSTICS n = ROW_COUNT;
                res := array_append(res, refdata_result(it, CASE WHEN n = 0 THEN 'Unchanged' ELSE 'Uploaded' END));
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
            res := array_append(res, refdata_result(it, 'Error', ARRAY[refdata_error(SQLSTATE, c, SQLERRM)]));
        END;
    END LOOP;
    RETURN jsonb_build_object('results', to_jsonb(res));
END
$$;
