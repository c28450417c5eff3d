-- The catalog footprint of a model: whether its owner shared it, the role that decides which
-- tiers other projects may deploy it on, the featured flag (instance admins), when it was
-- shared, and how many endpoints serve it now (kept with the endpoints, in their transaction).
ALTER TABLE models ADD COLUMN shared BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN catalog_role TEXT;
ALTER TABLE models ADD COLUMN featured BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN shared_at TIMESTAMP;
ALTER TABLE models ADD COLUMN deployment_count BIGINT NOT NULL DEFAULT 0;
-- The catalog's orderings read shared models only. `shared` leads instead of a partial index:
-- SQLite cannot match a partial index's WHERE against a bound `shared = ?`.
CREATE INDEX models_catalog_name ON models (shared, name, id);
CREATE INDEX models_catalog_shared ON models (shared, shared_at, id);
CREATE INDEX models_catalog_deployments ON models (shared, deployment_count, id);

-- A deployment of a model (a pinned version) on a service tier, owned by the project that
-- created it, which need not own the model. `self_hosted` is the tier's kind when the endpoint
-- was created: the catalog rules count by it, whatever the configuration says later.
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    model_version_id TEXT NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    tier TEXT NOT NULL,
    self_hosted BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX endpoints_model ON endpoints (model_id, status, self_hosted);
CREATE INDEX endpoints_created ON endpoints (created_at, id);
CREATE INDEX endpoints_version ON endpoints (model_version_id, status);

-- One row: a number every change to what the public manifest shows moves forward, so each
-- replica rebuilds its cached manifest only when the catalog changed, wherever it changed.
CREATE TABLE catalog_revision (
    id INTEGER PRIMARY KEY,
    revision BIGINT NOT NULL
);
INSERT INTO catalog_revision (id, revision) VALUES (1, 0);
