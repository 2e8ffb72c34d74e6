-- 010_snils_placeholder.sql - 000-000-000 00 is the placeholder MIS send
-- for an unknown SNILS (seed 003's own example), not a number anyone has:
-- kept as one, it made the first patient sent with it its owner, and every
-- later one a conflict with that patient or, names and birthday alike, a
-- merge into them. The gateway now reads it as no SNILS; what earlier
-- uploads stored is dropped, and the table refuses it from here on.
UPDATE persons SET snils = NULL WHERE snils = '00000000000';
ALTER TABLE persons ADD CONSTRAINT persons_snils_not_placeholder CHECK (snils <> '00000000000');
