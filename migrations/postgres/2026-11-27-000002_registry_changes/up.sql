-- A number that every committed change to organizations, projects, models and versions moves
-- forward, in the change's own transaction: a replica that cached a GraphQL answer made of
-- those tables serves it again only while the number is what it was when the answer was
-- computed (src/graphql/response_cache.rs). Triggers, not calls in the write paths, so that no
-- write (a new mutation, a background job, a hand-made fix in SQL) can forget it.
--
-- On PostgreSQL the number is spread over 64 rows, and a transaction moves one of them
-- (chosen by its transaction id) once, when it commits: a deferred trigger runs after every
-- other statement of the transaction, so the row is the last lock it takes and is held only
-- for the commit itself. Two transactions never wait on each other in opposite orders through
-- it, and writers that commit together rarely meet on one row. Readers add the rows up.
-- TRUNCATE fires no row trigger: a statement trigger of its own moves the number at once.
--
-- Writes made with triggers switched off (`session_replication_role = replica`, a restore with
-- `--disable-triggers`) and restoring an older copy of the database are not seen: restart the
-- replicas after them (a replica that reads a smaller number than it has seen empties its
-- cache by itself).
CREATE TABLE registry_changes (
    shard INTEGER PRIMARY KEY,
    changes BIGINT NOT NULL
);
INSERT INTO registry_changes (shard, changes) SELECT s, 0 FROM generate_series(0, 63) AS s;

CREATE FUNCTION registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction, however many rows it wrote.
    IF current_setting('registry.changed', true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('registry.changed', 'yes', true);
    UPDATE registry_changes SET changes = changes + 1 WHERE shard = txid_current() % 64;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER organizations_changed AFTER INSERT OR UPDATE OR DELETE ON organizations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER organizations_truncated AFTER TRUNCATE ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();

CREATE CONSTRAINT TRIGGER projects_changed AFTER INSERT OR UPDATE OR DELETE ON projects
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER projects_truncated AFTER TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();

CREATE CONSTRAINT TRIGGER models_changed AFTER INSERT OR UPDATE OR DELETE ON models
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER models_truncated AFTER TRUNCATE ON models
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();

CREATE CONSTRAINT TRIGGER model_versions_changed AFTER INSERT OR UPDATE OR DELETE ON model_versions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION registry_changed();
CREATE TRIGGER model_versions_truncated AFTER TRUNCATE ON model_versions
    FOR EACH STATEMENT EXECUTE FUNCTION registry_changed();
