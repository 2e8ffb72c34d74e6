-- 005: a version counter per resource for the schedule view's cache
-- (src/schedule.c). A cached window is extended without re-reading its
-- cells only while its resource's version is the one the fill read in the
-- same snapshot as the cells. Triggers bump it on every INSERT, UPDATE,
-- DELETE and TRUNCATE of cells and every UPDATE of resources, in the
-- writing transaction: the bump takes the row's lock and adds one to the
-- latest committed value, so any change that commits after a fill's
-- snapshot leaves a version that fill never saw, whatever order
-- transactions commit in. A bigint does not wrap. Bookings are not in it:
-- the cache re-reads the booked cells at every check.
--
-- No row means version 0: a resource that has never had a cell. The first
-- bump inserts 1. Rows are never deleted (no foreign key: a resource
-- deleted and made again under its GUID continues its count).
CREATE TABLE schedule_versions (
    resource_guid   uuid PRIMARY KEY,
    version         bigint NOT NULL
);

-- Resources that have cells already start at 1, so that a TRUNCATE (which
-- bumps every row) reaches them too.
INSERT INTO schedule_versions (resource_guid, version)
SELECT DISTINCT resource_guid, 1 FROM cells;

CREATE FUNCTION schedule_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One statement-level trigger per event, each with the transition
    -- tables its event has; rows in resource order, so that two statements
    -- bumping the same resources lock them in the same order.
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE schedule_versions SET version = version + 1;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO schedule_versions AS v (resource_guid, version)
        SELECT DISTINCT g, 1 FROM (SELECT resource_guid AS g FROM new_rows) t ORDER BY g
        ON CONFLICT (resource_guid) DO UPDATE SET version = v.version + 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO schedule_versions AS v (resource_guid, version)
        SELECT DISTINCT g, 1 FROM (SELECT resource_guid AS g FROM old_rows) t ORDER BY g
        ON CONFLICT (resource_guid) DO UPDATE SET version = v.version + 1;
    ELSIF TG_TABLE_NAME = 'resources' THEN
        INSERT INTO schedule_versions AS v (resource_guid, version)
        SELECT DISTINCT g, 1 FROM (SELECT guid AS g FROM new_rows
                                   UNION SELECT guid FROM old_rows) t ORDER BY g
        ON CONFLICT (resource_guid) DO UPDATE SET version = v.version + 1;
    ELSE
        INSERT INTO schedule_versions AS v (resource_guid, version)
        SELECT DISTINCT g, 1 FROM (SELECT resource_guid AS g FROM new_rows
                                   UNION SELECT resource_guid FROM old_rows) t ORDER BY g
        ON CONFLICT (resource_guid) DO UPDATE SET version = v.version + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cells_version_insert AFTER INSERT ON cells
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION schedule_version_bump();
CREATE TRIGGER cells_version_update AFTER UPDATE ON cells
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION schedule_version_bump();
CREATE TRIGGER cells_version_delete AFTER DELETE ON cells
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION schedule_version_bump();
CREATE TRIGGER cells_version_truncate AFTER TRUNCATE ON cells
    FOR EACH STATEMENT EXECUTE FUNCTION schedule_version_bump();
CREATE TRIGGER resources_version_update AFTER UPDATE ON resources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION schedule_version_bump();
