-- 001: client applications, LPUs, persons and their medical cards (МКАБ).
-- PostgreSQL is the truth; the constraints below state what may never happen
-- whatever the caches say.

CREATE TABLE client_applications (
    guid        uuid PRIMARY KEY,
    mnem        text NOT NULL UNIQUE,           -- becomes a token's authSource
    name        text NOT NULL,
    is_default  boolean NOT NULL DEFAULT false  -- used when no ClientApplication header comes
);
-- At most one default application.
CREATE UNIQUE INDEX client_applications_one_default
    ON client_applications (is_default) WHERE is_default;

CREATE TABLE lpus (
    guid        uuid PRIMARY KEY,
    mcod        text NOT NULL UNIQUE,           -- leading zeros matter: text
    name        text NOT NULL,
    is_children boolean NOT NULL DEFAULT false,
    is_active   boolean NOT NULL DEFAULT true,
    attrs       jsonb NOT NULL DEFAULT '{}',    -- the rest of LpuWithStatus as uploaded
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A person is who a patient is, across LPUs; each LPU keeps its own card.
CREATE TABLE persons (
    guid            uuid PRIMARY KEY,
    family          text NOT NULL,
    name            text NOT NULL,
    patronymic      text NOT NULL DEFAULT '',
    -- folded names (ids_fold_name) so that matching ignores case and ё/е
    family_key      text NOT NULL,
    name_key        text NOT NULL,
    patronymic_key  text NOT NULL DEFAULT '',
    birthday        date NOT NULL,
    gender          smallint CHECK (gender IN (1, 2)),
    snils           char(11),                   -- bare digits
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- One person per SNILS.
CREATE UNIQUE INDEX persons_snils ON persons (snils) WHERE snils IS NOT NULL;
CREATE INDEX persons_names_birthday ON persons (family_key, name_key, patronymic_key, birthday);

CREATE TABLE medical_cards (
    guid            uuid PRIMARY KEY,
    person_guid     uuid NOT NULL REFERENCES persons (guid),
    lpu_guid        uuid NOT NULL REFERENCES lpus (guid),
    polis_type      text NOT NULL DEFAULT '',
    polis_series    text NOT NULL DEFAULT '',
    polis_number    text NOT NULL,
    polis_key       text NOT NULL,              -- normalized series || '|' || number
    polis_start     date,
    polis_end       date,
    polis_smo       text,
    doc_type        text,
    doc_series      text,                       -- bare digits for a passport
    doc_number      text,
    doc_date        date,
    doc_issued_by   text,
    phone           text,
    email           text,
    blood_type      text,
    rh              boolean,
    black_label     boolean NOT NULL DEFAULT false,  -- self-booking blocked
    is_closed       boolean NOT NULL DEFAULT false,
    attrs           jsonb NOT NULL DEFAULT '{}',     -- birthplace, addresses, work
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- One card per person per LPU.
CREATE UNIQUE INDEX medical_cards_person_lpu ON medical_cards (person_guid, lpu_guid);
CREATE INDEX medical_cards_polis ON medical_cards (polis_key);
CREATE INDEX medical_cards_passport ON medical_cards (doc_series, doc_number) WHERE doc_number IS NOT NULL;
