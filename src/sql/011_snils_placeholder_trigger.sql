-- 011_snils_placeholder_trigger.sql - 010 made persons refuse the SNILS
-- placeholder 000-000-000 00 with a CHECK. During a rolling upgrade a
-- gateway still on the binary before it sends the placeholder as a number,
-- and the CHECK turned its upload into an error. The table now reads the
-- placeholder as no SNILS itself, whoever writes it.
ALTER TABLE persons DROP CONSTRAINT IF EXISTS persons_snils_not_placeholder;

CREATE OR REPLACE FUNCTION mip_snils_placeholder_null() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.snils = '00000000000' THEN
        NEW.snils := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER persons_snils_placeholder_null BEFORE INSERT OR UPDATE OF snils ON persons
    FOR EACH ROW EXECUTE FUNCTION mip_snils_placeholder_null();
