-- 007: the eHealth cabinet sign-up (issue 5, seed 004). A UserRequest is
-- what the national login vouched for; a registration spends it and makes
-- the person, the user, the SMS factor and an access token in one
-- transaction, so that nothing half-made can remain.

CREATE TABLE cabinet_user_requests (
    id          uuid PRIMARY KEY,
    tax_id      text NOT NULL CHECK (tax_id ~ '^[0-9]{10}$'),
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    email       text NOT NULL,
    client      text NOT NULL,                 -- the trusted caller that made it
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    spent_at    timestamptz                    -- set by the registration that used it
);
-- The janitor's sweep of old requests.
CREATE INDEX cabinet_user_requests_expiry ON cabinet_user_requests (expires_at);

CREATE TABLE cabinet_persons (
    id          uuid PRIMARY KEY,
    tax_id      text NOT NULL,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    second_name text,
    birth_date  date NOT NULL,
    data        jsonb NOT NULL,                -- the patient as registered
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cabinet_users (
    id            uuid PRIMARY KEY,
    -- Checked at commit: the user row goes first, so that a tax id already
    -- taken is found before anything else is written.
    person_id     uuid NOT NULL UNIQUE REFERENCES cabinet_persons (id) DEFERRABLE INITIALLY DEFERRED,
    tax_id        text NOT NULL UNIQUE,        -- one user per tax id, whatever the callers race
    email         text NOT NULL,
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cabinet_factors (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES cabinet_users (id),
    type        text NOT NULL CHECK (type = 'SMS'),
    factor      text NOT NULL CHECK (factor ~ '^\+38[0-9]{10}$'),
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cabinet_factors_user ON cabinet_factors (user_id);

-- Only a SHA-256 of each token is kept: a copy of the table logs nobody in.
CREATE TABLE cabinet_access_tokens (
    token_sha256 text PRIMARY KEY CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    user_id      uuid NOT NULL REFERENCES cabinet_users (id),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cabinet_access_tokens_user ON cabinet_access_tokens (user_id);
CREATE INDEX cabinet_access_tokens_expiry ON cabinet_access_tokens (expires_at);

-- The registration's writes, in one transaction. The gateway has checked
-- the token, the schema, the OTP, the names and the password before; this
-- settles what only the data can: is the UserRequest still unspent (its
-- row lock makes two registrations of one request take turns, and the
-- second finds it spent), and is the tax id free (the unique index makes
-- two requests of one tax id take turns). Answers {"r": "ok", "patient":
-- the person as stored, "user": {id, tax_id, email}}, or {"r":
-- "user_request_gone"} / {"r": "tax_id_exists"} with nothing written.
CREATE FUNCTION mip_cab_register(p_ur uuid, p_patient jsonb, p_password_hash text,
                                 p_factor text, p_token_sha256 text, p_token_ttl_s int)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_ur     cabinet_user_requests;
    v_person uuid := gen_random_uuid();
    v_user   uuid;
    v_data   jsonb;
BEGIN
    SELECT * INTO v_ur FROM cabinet_user_requests WHERE id = p_ur FOR UPDATE;
    IF NOT FOUND OR v_ur.spent_at IS NOT NULL OR v_ur.expires_at <= now() THEN
        RETURN jsonb_build_object('r', 'user_request_gone');
    END IF;

    INSERT INTO cabinet_users (id, person_id, tax_id, email, password_hash)
    VALUES (gen_random_uuid(), v_person, v_ur.tax_id, v_ur.email, p_password_hash)
    ON CONFLICT (tax_id) DO NOTHING
    RETURNING id INTO v_user;
    IF v_user IS NULL THEN
        RETURN jsonb_build_object('r', 'tax_id_exists');
    END IF;

    -- The person's e-mail is the one the national login gave, unless the
    -- patient wrote one.
    v_data := jsonb_build_object('id', v_person, 'email', v_ur.email) || p_patient;
    INSERT INTO cabinet_persons (id, tax_id, first_name, last_name, second_name, birth_date, data)
    VALUES (v_person, v_ur.tax_id, p_patient->>'first_name', p_patient->>'last_name',
            p_patient->>'second_name', (p_patient->>'birth_date')::date, v_data);
    INSERT INTO cabinet_factors (id, user_id, type, factor)
    VALUES (gen_random_uuid(), v_user, 'SMS', p_factor);
    INSERT INTO cabinet_access_tokens (token_sha256, user_id, expires_at)
    VALUES (p_token_sha256, v_user, now() + make_interval(secs => p_token_ttl_s));
    UPDATE cabinet_user_requests SET spent_at = now() WHERE id = p_ur;
    RETURN jsonb_build_object('r', 'ok', 'patient', v_data,
                              'user', jsonb_build_object('id', v_user, 'tax_id', v_ur.tax_id,
                                                         'email', v_ur.email));
END $$;
