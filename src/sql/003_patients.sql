-- 003: patients uploaded by hospitals' systems (seed 003, POST /patients):
-- the current attachment (прикрепление) of a card, and the one function that
-- stores an uploaded Patient in one call. The gateway (src/patient.c) has
-- validated and normalized the item; this function decides who the person
-- is, and writes person, card and attachment atomically, or nothing.

-- One current attachment per card, to the card's LPU.
CREATE TABLE attachments (
    guid         uuid PRIMARY KEY,
    card_guid    uuid NOT NULL UNIQUE REFERENCES medical_cards (guid) ON DELETE CASCADE,
    lpu_guid     uuid NOT NULL REFERENCES lpus (guid),
    attach_date  date NOT NULL,
    attach_type  smallint NOT NULL DEFAULT 1 CHECK (attach_type IN (1, 2)),  -- 1 residence, 2 application
    area         text,                                                       -- участок
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A version 7 UUID (RFC 9562): the time in milliseconds, then 74 random
-- bits. New persons, cards and attachments get these rather than random
-- ones: their primary keys and medical_cards (person_guid, lpu_guid) then
-- grow at the right edge, where a random key would land on a leaf page of
-- its own in a big table (a page to fault in, to dirty and, after each
-- checkpoint, to write whole into the WAL), the larger part of what
-- storing a new person cost.
CREATE FUNCTION mip_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                  PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                  FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

-- Why person p is not the one the item describes, or NULL when it may be:
-- another SNILS (both known), another birthday, or two of the three folded
-- names different (one may change: marriage, a corrected typo).
-- STABLE, as its text-to-date cast is: a function declared IMMUTABLE over a
-- stable body is not inlined, and is parsed and planned again at each call.
CREATE FUNCTION mip_person_conflict(p persons, item jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p.snils IS NOT NULL AND item->>'snils' IS NOT NULL AND p.snils <> item->>'snils'
            THEN 'другой СНИЛС'
        WHEN p.birthday <> (item->>'birthday')::date
            THEN 'другая дата рождения'
        WHEN (p.family_key <> item->>'family_key')::int + (p.name_key <> item->>'name_key')::int
             + (p.patronymic_key <> item->>'patronymic_key')::int >= 2
            THEN 'другие ФИО'
    END
$$;

-- STABLE for the same reason (jsonb_build_object is).
CREATE FUNCTION mip_patient_answer(mkab text, att text, person uuid, card uuid, att_guid uuid,
                                   msgs jsonb, changed boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('MkabStatus', mkab, 'AttachmentStatus', att,
                              'PersonGuid', person, 'MkabGuid', card, 'AttachmentGuid', att_guid,
                              'ValidationMessage', msgs, 'Changed', changed)
$$;

-- Stores one validated item (the JSON src/patient.c builds). allowed: the
-- МКОДs the login may write for (NULL: any, the importer). Returns the
-- seed's answer plus "Changed": whether the person's identity or cards
-- changed, so that the gateway drops the caches that went stale.
--
-- Person: the card's own when the Guid is known; else the one with the
-- SNILS, else the one with the ЕНП on any card, else the one with the same
-- folded names and birthday (and no other SNILS); else a new one.
-- Card: the Guid's when known (it must be in the same LPU and of the same
-- person); else the person's card in that LPU (so that re-sending without a
-- Guid changes nothing); else a new card, with the Guid given or a new one.
-- A known person that already has a card in the LPU under another guid is
-- an Error: one card per person per LPU, and a card's guid never changes.
-- Whoever the person turned out to be (by Guid, SNILS, ЕНП or names, or a
-- new one), an ЕНП or a passport already on a card of another person is an
-- Error too, as is a SNILS of another person: nothing is written.
-- A row is written only when a value in it differs (a re-sent card writes
-- nothing, and keeps its updated_at).
-- The caller holds the item's advisory locks (mip_patient_upload_many, 008,
-- takes them for every item of a batch at once, in one order).
CREATE FUNCTION mip_patient_upload(item jsonb, allowed text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    -- The fields used more than once, read out of the item once.
    v_mcod     text := item->>'mcod';
    v_guid     uuid := (item->>'guid')::uuid;
    -- char(11) like persons.snils: compared as text, the index would not serve
    v_snils    char(11) := item->>'snils';
    v_fkey     text := item->>'family_key';
    v_nkey     text := item->>'name_key';
    v_pakey    text := item->>'patronymic_key';
    v_birthday date := (item->>'birthday')::date;
    v_pkey     text := item->>'polis_key';
    v_enp      boolean := coalesce((item->>'is_enp')::boolean, false);
    v_series   text := item->>'doc_series';
    v_number   text := item->>'doc_number';
    v_att      jsonb := item->'attachment';
    v_att_guid uuid := (item->'attachment'->>'guid')::uuid;
    -- a passport as the gateway normalized it (digits), NULL for other documents
    v_pass     boolean := item->>'doc_type' = '14' AND v_series IS NOT NULL AND v_number IS NOT NULL;
    v_lpu      uuid;
    v_person   uuid;
    v_card     medical_cards%ROWTYPE;
    v_old      persons%ROWTYPE;
    v_has_card boolean := false;
    v_enp_free boolean := false;  -- the ЕНП look-up found it on nobody's card
    v_changed  boolean := false;
    v_why      text;
    v_att_taken boolean := false;  -- the attachment's guid is another card's
    v_att_st   text := 'None';
    v_msgs     jsonb := '[]';
BEGIN
    IF allowed IS NOT NULL AND NOT (v_mcod = ANY (allowed)) THEN
        RETURN mip_patient_answer('NotValid', 'None', NULL, NULL, NULL,
            jsonb_build_array(format('Mcod: нет права передавать данные ЛПУ %s', v_mcod)), false);
    END IF;
    SELECT guid INTO v_lpu FROM lpus WHERE mcod = v_mcod;
    IF v_lpu IS NULL THEN
        RETURN mip_patient_answer('NotValid', 'None', NULL, NULL, NULL,
            jsonb_build_array(format('Mcod: ЛПУ с МКОД %s не найдено', v_mcod)), false);
    END IF;

    -- Checks first: nothing is written until the card is known to be fine.
    IF v_guid IS NOT NULL THEN
        SELECT * INTO v_card FROM medical_cards WHERE guid = v_guid FOR UPDATE;
        v_has_card := FOUND;
    END IF;
    IF v_has_card THEN
        IF v_card.lpu_guid <> v_lpu THEN
            RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                jsonb_build_array(format('Guid: карта %s принадлежит другому ЛПУ, не %s', v_guid, v_mcod)),
                false);
        END IF;
        SELECT * INTO v_old FROM persons WHERE guid = v_card.person_guid FOR UPDATE;
        v_why := mip_person_conflict(v_old, item);
        IF v_why IS NOT NULL THEN
            RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                jsonb_build_array(format('Guid: карта %s принадлежит другому пациенту (%s)', v_guid, v_why)),
                false);
        END IF;
    ELSE
        IF v_snils IS NOT NULL THEN
            SELECT * INTO v_old FROM persons WHERE snils = v_snils FOR UPDATE;
            IF FOUND THEN
                v_why := mip_person_conflict(v_old, item);
                IF v_why IS NOT NULL THEN
                    RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                        jsonb_build_array(format('Snils: СНИЛС принадлежит другому пациенту (%s)', v_why)),
                        false);
                END IF;
            END IF;
        END IF;
        IF v_old.guid IS NULL AND v_enp THEN
            SELECT p.* INTO v_old FROM persons p
             WHERE p.guid IN (SELECT person_guid FROM medical_cards WHERE polis_key = v_pkey)
             ORDER BY p.created_at, p.guid LIMIT 1 FOR UPDATE;
            IF FOUND THEN
                v_why := mip_person_conflict(v_old, item);
                IF v_why IS NOT NULL THEN
                    RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                        jsonb_build_array(format('Polis.Number: ЕНП принадлежит другому пациенту (%s)', v_why)),
                        false);
                END IF;
            ELSE
                v_enp_free := true;
            END IF;
        END IF;
        IF v_old.guid IS NULL THEN
            SELECT * INTO v_old FROM persons
             WHERE family_key = v_fkey AND name_key = v_nkey AND patronymic_key = v_pakey
               AND birthday = v_birthday AND (v_snils IS NULL OR snils IS NULL)
             ORDER BY created_at, guid LIMIT 1 FOR UPDATE;
        END IF;
        IF v_old.guid IS NOT NULL THEN
            SELECT * INTO v_card FROM medical_cards
             WHERE person_guid = v_old.guid AND lpu_guid = v_lpu FOR UPDATE;
            IF FOUND THEN
                IF v_guid IS NOT NULL THEN
                    RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                        jsonb_build_array(format('Guid: у пациента уже есть карта %s в ЛПУ %s',
                                                 v_card.guid, v_mcod)), false);
                END IF;
                v_has_card := true;
            END IF;
        END IF;
    END IF;
    v_person := v_old.guid;
    -- Found by the card's Guid, the person was not looked up by SNILS or
    -- ЕНП: whether another person has them is checked here. (Otherwise the
    -- look-ups above already answered it: a SNILS or an ЕНП that is on
    -- someone is how that someone was found.)
    -- Each look-up below is a statement apart from the tests of variables
    -- that guard it: in one condition with them, the planner would fold the
    -- variables into a plan cheaper than the generic one, and plpgsql would
    -- plan that statement anew at every call.
    IF v_has_card AND v_guid IS NOT NULL AND v_card.guid = v_guid AND v_snils IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM persons WHERE snils = v_snils AND guid IS DISTINCT FROM v_person) THEN
            RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                jsonb_build_array('Snils: СНИЛС принадлежит другому пациенту'), false);
        END IF;
    END IF;
    -- The ЕНП and the passport identify one person: on a card of another
    -- (or of anyone, for a new person) they are not this one's. An ЕНП the
    -- look-up found on no card (its lock held since) needs no second look.
    IF v_enp AND NOT v_enp_free THEN
        IF EXISTS (SELECT 1 FROM medical_cards WHERE polis_key = v_pkey
                      AND person_guid IS DISTINCT FROM v_person) THEN
            RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                jsonb_build_array('Polis.Number: ЕНП принадлежит другому пациенту'), false);
        END IF;
    END IF;
    IF v_pass THEN
        IF EXISTS (SELECT 1 FROM medical_cards
                    WHERE doc_series = v_series AND doc_number = v_number
                      AND doc_type = '14' AND person_guid IS DISTINCT FROM v_person) THEN
            RETURN mip_patient_answer('Error', 'None', NULL, NULL, NULL,
                jsonb_build_array('IdentityDocument.Number: паспорт принадлежит другому пациенту'), false);
        END IF;
    END IF;

    -- The person.
    IF v_person IS NULL THEN
        v_person := mip_uuid_v7();
        INSERT INTO persons (guid, family, name, patronymic, family_key, name_key, patronymic_key,
                             birthday, gender, snils)
        VALUES (v_person, item->>'family', item->>'name', item->>'patronymic', v_fkey, v_nkey, v_pakey,
                v_birthday, (item->>'gender')::smallint, v_snils);
        v_changed := true;
    ELSE
        v_changed := v_old.snils IS DISTINCT FROM coalesce(v_snils, v_old.snils)
                     OR v_old.birthday <> v_birthday
                     OR v_old.family_key <> v_fkey OR v_old.name_key <> v_nkey
                     OR v_old.patronymic_key <> v_pakey;
        -- v_old is the locked row as it stands: compared here, not in SQL.
        IF v_changed OR (v_old.family, v_old.name, v_old.patronymic)
                        IS DISTINCT FROM (item->>'family', item->>'name', item->>'patronymic')
           OR v_old.gender IS DISTINCT FROM coalesce((item->>'gender')::smallint, v_old.gender) THEN
            UPDATE persons SET family = item->>'family', name = item->>'name',
                   patronymic = item->>'patronymic', family_key = v_fkey, name_key = v_nkey,
                   patronymic_key = v_pakey, birthday = v_birthday,
                   gender = coalesce((item->>'gender')::smallint, gender),
                   snils = coalesce(v_snils, snils), updated_at = now()
             WHERE guid = v_person;
        END IF;
    END IF;

    -- The card.
    IF v_has_card THEN
        v_changed := v_changed OR v_card.polis_key <> v_pkey
                     OR v_card.doc_series IS DISTINCT FROM v_series
                     OR v_card.doc_number IS DISTINCT FROM v_number;
        v_guid := v_card.guid;
        UPDATE medical_cards SET polis_type = item->>'polis_type',
               polis_series = item->>'polis_series', polis_number = item->>'polis_number',
               polis_key = v_pkey, polis_start = (item->>'polis_start')::date,
               polis_end = (item->>'polis_end')::date, polis_smo = item->>'polis_smo',
               doc_type = item->>'doc_type', doc_series = v_series,
               doc_number = v_number, doc_date = (item->>'doc_date')::date,
               doc_issued_by = item->>'doc_issued_by', phone = item->>'phone',
               email = item->>'email', blood_type = item->>'blood_type',
               rh = (item->>'rh')::boolean, black_label = (item->>'black_label')::boolean,
               attrs = item->'attrs', updated_at = now()
         WHERE guid = v_guid
           AND (polis_type, polis_series, polis_number, polis_key, polis_start, polis_end, polis_smo,
                doc_type, doc_series, doc_number, doc_date, doc_issued_by, phone, email, blood_type,
                rh, black_label, attrs)
               IS DISTINCT FROM
               (item->>'polis_type', item->>'polis_series', item->>'polis_number', v_pkey,
                (item->>'polis_start')::date, (item->>'polis_end')::date, item->>'polis_smo',
                item->>'doc_type', v_series, v_number, (item->>'doc_date')::date,
                item->>'doc_issued_by', item->>'phone', item->>'email', item->>'blood_type',
                (item->>'rh')::boolean, (item->>'black_label')::boolean, item->'attrs');
    ELSE
        v_guid := coalesce(v_guid, mip_uuid_v7());
        INSERT INTO medical_cards (guid, person_guid, lpu_guid, polis_type, polis_series,
                                   polis_number, polis_key, polis_start, polis_end, polis_smo,
                                   doc_type, doc_series, doc_number, doc_date, doc_issued_by,
                                   phone, email, blood_type, rh, black_label, attrs)
        VALUES (v_guid, v_person, v_lpu, item->>'polis_type', item->>'polis_series',
                item->>'polis_number', v_pkey, (item->>'polis_start')::date,
                (item->>'polis_end')::date, item->>'polis_smo', item->>'doc_type',
                v_series, v_number, (item->>'doc_date')::date,
                item->>'doc_issued_by', item->>'phone', item->>'email', item->>'blood_type',
                (item->>'rh')::boolean, (item->>'black_label')::boolean, item->'attrs');
        v_changed := true;
    END IF;

    -- The attachment: the card is stored whatever becomes of it.
    IF jsonb_typeof(v_att) = 'object' THEN
        IF v_att_guid IS NOT NULL THEN
            v_att_taken := EXISTS (SELECT 1 FROM attachments
                                    WHERE guid = v_att_guid AND card_guid <> v_guid);
        END IF;
        IF v_att_taken THEN
            v_att_st := 'Error';
            v_att_guid := NULL;
            v_msgs := v_msgs || jsonb_build_array('Attachment.Guid: прикрепление принадлежит другой карте');
        ELSIF NOT v_has_card THEN
            -- A card new in this transaction has no attachment yet.
            v_att_guid := coalesce(v_att_guid, mip_uuid_v7());
            INSERT INTO attachments (guid, card_guid, lpu_guid, attach_date, attach_type, area)
            VALUES (v_att_guid, v_guid, v_lpu, (v_att->>'date')::date,
                    coalesce((v_att->>'type')::smallint, 1), v_att->>'area');
            v_att_st := 'Uploaded';
        ELSE
            v_att_guid := coalesce(v_att_guid, (SELECT guid FROM attachments WHERE card_guid = v_guid),
                                   mip_uuid_v7());
            INSERT INTO attachments AS a (guid, card_guid, lpu_guid, attach_date, attach_type, area)
            VALUES (v_att_guid, v_guid, v_lpu, (v_att->>'date')::date,
                    coalesce((v_att->>'type')::smallint, 1), v_att->>'area')
            ON CONFLICT (card_guid) DO UPDATE SET guid = EXCLUDED.guid, lpu_guid = EXCLUDED.lpu_guid,
               attach_date = EXCLUDED.attach_date, attach_type = EXCLUDED.attach_type,
               area = EXCLUDED.area, updated_at = now()
             WHERE (a.guid, a.lpu_guid, a.attach_date, a.attach_type, a.area)
                   IS DISTINCT FROM (EXCLUDED.guid, EXCLUDED.lpu_guid, EXCLUDED.attach_date,
                                     EXCLUDED.attach_type, EXCLUDED.area);
            v_att_st := 'Uploaded';
        END IF;
    ELSE
        v_att_guid := NULL;
    END IF;

    RETURN mip_patient_answer('Uploaded', v_att_st, v_person, v_guid, v_att_guid, v_msgs, v_changed);
END
$$;
