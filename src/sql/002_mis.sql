-- 002: what hospitals' systems (MIS) upload and the schedule portals read:
-- MIS logins, bookable resources, schedule cells, referrals, dispensary lists,
-- and the bookings that hold cells. As in 001, the constraints state what
-- may never happen whatever the caches or the upload code say.

-- An MIS login. The password is an argon2id hash in its encoded form
-- ($argon2id$v=19$m=..,t=..,p=..$salt$hash), which carries its own salt and
-- cost, so that the cost can rise without a migration.
CREATE TABLE mis_users (
    login           text PRIMARY KEY CHECK (login ~ '^[A-Za-z0-9._@-]{1,64}$'),
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    is_disabled     boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The LPUs a login may write for, by МКОД: a login can be created before its
-- LPU is uploaded (the LPU upload itself needs the right).
CREATE TABLE mis_user_lpus (
    login           text NOT NULL REFERENCES mis_users (login) ON DELETE CASCADE,
    mcod            text NOT NULL CHECK (mcod ~ '^[0-9]{6,7}$'),
    PRIMARY KEY (login, mcod)
);

-- A bookable resource of an LPU: a doctor or a room (cabinet, device).
CREATE TABLE resources (
    guid            uuid PRIMARY KEY,
    lpu_guid        uuid NOT NULL REFERENCES lpus (guid),
    res_type        text NOT NULL CHECK (res_type IN ('Doctor', 'Room')),
    family          text NOT NULL DEFAULT '',
    name            text NOT NULL DEFAULT '',
    patronymic      text NOT NULL DEFAULT '',
    role            text NOT NULL DEFAULT '',       -- "Врач-терапевт участковый"
    spec_code       text NOT NULL,
    spec_name       text NOT NULL DEFAULT '',
    room            text NOT NULL DEFAULT '',
    floor           integer,
    age_min         integer CHECK (age_min BETWEEN 0 AND 150),
    age_max         integer CHECK (age_max BETWEEN 0 AND 150),
    gender          smallint CHECK (gender IN (1, 2)),  -- NULL: anyone
    dispensary_only boolean NOT NULL DEFAULT false,     -- only patients on its list
    referral_only   boolean NOT NULL DEFAULT false,     -- only with a referral
    is_active       boolean NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (age_min IS NULL OR age_max IS NULL OR age_min <= age_max)
);
CREATE INDEX resources_lpu ON resources (lpu_guid);

-- A schedule cell: one appointment time of one resource.
CREATE TABLE cells (
    guid            uuid PRIMARY KEY,
    resource_guid   uuid NOT NULL REFERENCES resources (guid),
    begin_at        timestamptz NOT NULL,
    end_at          timestamptz NOT NULL,
    busy_name       text NOT NULL DEFAULT '',       -- DocBusyType {name, type, code}
    busy_type       smallint NOT NULL DEFAULT 1,    -- 0 day off, 1 working reception
    busy_code       text NOT NULL DEFAULT '',
    -- who may book it: a subset of Registry, Doctor, Internet, DoctorOtherLpu
    access          text[] NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (end_at > begin_at),
    CHECK (access <@ ARRAY['Registry', 'Doctor', 'Internet', 'DoctorOtherLpu']::text[])
);
-- One cell per resource and begin: the same time twice is an upload error.
CREATE UNIQUE INDEX cells_resource_begin ON cells (resource_guid, begin_at);

-- A doctor's referral (направление) of a person to another LPU.
CREATE TABLE referrals (
    guid            uuid PRIMARY KEY,
    number          text NOT NULL,
    person_guid     uuid NOT NULL REFERENCES persons (guid),
    lpu_from_guid   uuid NOT NULL REFERENCES lpus (guid),
    lpu_to_guid     uuid NOT NULL REFERENCES lpus (guid),
    resource_guid   uuid REFERENCES resources (guid),  -- NULL: any of the speciality
    spec_code       text NOT NULL DEFAULT '',
    spec_name       text NOT NULL DEFAULT '',
    kind            text NOT NULL DEFAULT '',
    issued_on       date NOT NULL,
    valid_until     date NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until >= issued_on),
    CHECK (resource_guid IS NOT NULL OR spec_code <> '')
);
CREATE INDEX referrals_person ON referrals (person_guid);

-- Dispensary registrations: who is on a dispensary-only resource's list.
CREATE TABLE dispensary (
    person_guid     uuid NOT NULL REFERENCES persons (guid),
    resource_guid   uuid NOT NULL REFERENCES resources (guid),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resource_guid, person_guid)
);

-- Bookings. The booking issue adds what it needs; here only what holds a
-- cell, so that uploads and the schedule know a cell is taken.
CREATE TABLE bookings (
    guid            uuid PRIMARY KEY,
    cell_guid       uuid NOT NULL REFERENCES cells (guid),
    mkab_guid       uuid NOT NULL REFERENCES medical_cards (guid),
    person_guid     uuid NOT NULL REFERENCES persons (guid),
    referral_guid   uuid REFERENCES referrals (guid),
    -- active: holds the cell; cancelled: freed it; visited: took place
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'cancelled', 'visited')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Never one cell twice: at most one booking that holds a cell.
CREATE UNIQUE INDEX bookings_one_per_cell ON bookings (cell_guid) WHERE status <> 'cancelled';
CREATE INDEX bookings_person ON bookings (person_guid);
