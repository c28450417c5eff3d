-- Identifiers are UUIDv7 text and timestamps are UTC without zone, so that one portable
-- diesel schema serves both backends (see src/db/schema.rs).

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Project slugs are unique across the instance: they are the namespace in resolve-by-name.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    max_models BIGINT,
    max_versions_per_month BIGINT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX projects_organization ON projects (organization_id);

-- Both scope columns NULL means an instance-admin key.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    last_used_at TIMESTAMP
);
CREATE INDEX api_keys_organization ON api_keys (organization_id);

-- Names sort byte-wise (COLLATE "C") so that ordering and keyset cursors agree with SQLite.
CREATE TABLE models (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    slug TEXT NOT NULL,
    description TEXT,
    long_description TEXT,
    product_type TEXT NOT NULL,
    provider TEXT,
    environment TEXT NOT NULL,
    risk_classification TEXT,
    lifecycle_stage TEXT,
    model_family TEXT,
    model_task_type TEXT,
    model_architecture TEXT,
    framework TEXT,
    intended_use TEXT,
    limitations TEXT,
    deployment_status TEXT NOT NULL,
    serving_url TEXT,
    input_schema TEXT,
    output_schema TEXT,
    ai_system_type TEXT,
    vendor_name TEXT,
    vendor_product_name TEXT,
    vendor_model_id TEXT,
    deployment_environment TEXT,
    business_use_case TEXT,
    is_gpai BOOLEAN NOT NULL,
    capabilities TEXT NOT NULL,
    tags TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    archived BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    current_version_id TEXT,
    next_version_number BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
-- A deleted model keeps its row (status DELETED) but frees its name and slug.
CREATE UNIQUE INDEX models_project_name ON models (project_id, name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX models_project_slug ON models (project_id, slug) WHERE deleted_at IS NULL;
-- Lists and counts read live rows only. Each ordering has its own partial index, and each
-- carries `archived` so that counting (totalCount, quotas) needs no table rows.
CREATE INDEX models_created ON models (created_at, id, archived, project_id) WHERE deleted_at IS NULL;
CREATE INDEX models_updated ON models (updated_at, id, archived, project_id) WHERE deleted_at IS NULL;
CREATE INDEX models_name ON models (name, id, archived, project_id) WHERE deleted_at IS NULL;
CREATE INDEX models_project_created ON models (project_id, created_at, id, archived) WHERE deleted_at IS NULL;
CREATE INDEX models_project_updated ON models (project_id, updated_at, id, archived) WHERE deleted_at IS NULL;

CREATE TABLE model_versions (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    number BIGINT NOT NULL,
    description TEXT,
    release_date TIMESTAMP,
    training_run_id TEXT,
    metrics TEXT,
    lifecycle TEXT NOT NULL,
    published_at TIMESTAMP,
    deprecated_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (model_id, version),
    UNIQUE (model_id, number)
);

ALTER TABLE models ADD CONSTRAINT models_current_version
    FOREIGN KEY (current_version_id) REFERENCES model_versions (id) ON DELETE SET NULL;

-- Versions created per calendar month: a counter rather than a COUNT over model_versions, so
-- deleting versions does not hand the quota back.
CREATE TABLE project_monthly_usage (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    versions_created BIGINT NOT NULL,
    PRIMARY KEY (project_id, month)
);
