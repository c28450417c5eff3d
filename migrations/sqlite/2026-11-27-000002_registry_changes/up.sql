-- A number that every committed change to organizations, projects, models and versions moves
-- forward, in the change's own transaction: a replica that cached a GraphQL answer made of
-- those tables serves it again only while the number is what it was when the answer was
-- computed (src/graphql/response_cache.rs). Triggers, not calls in the write paths, so that no
-- write (a new mutation, a background job, a hand-made fix in SQL) can forget it.
--
-- SQLite has one writer at a time, so one row serves.
CREATE TABLE registry_changes (
    shard INTEGER PRIMARY KEY NOT NULL,
    changes BIGINT NOT NULL
);
INSERT INTO registry_changes (shard, changes) VALUES (0, 0);

CREATE TRIGGER organizations_changed_on_insert AFTER INSERT ON organizations
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER organizations_changed_on_update AFTER UPDATE ON organizations
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER organizations_changed_on_delete AFTER DELETE ON organizations
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER projects_changed_on_insert AFTER INSERT ON projects
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER projects_changed_on_update AFTER UPDATE ON projects
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER projects_changed_on_delete AFTER DELETE ON projects
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER models_changed_on_insert AFTER INSERT ON models
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER models_changed_on_update AFTER UPDATE ON models
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER models_changed_on_delete AFTER DELETE ON models
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER model_versions_changed_on_insert AFTER INSERT ON model_versions
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER model_versions_changed_on_update AFTER UPDATE ON model_versions
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;

CREATE TRIGGER model_versions_changed_on_delete AFTER DELETE ON model_versions
BEGIN
    UPDATE registry_changes SET changes = changes + 1;
END;
