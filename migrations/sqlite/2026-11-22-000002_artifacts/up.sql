-- Stored bytes, one row per distinct SHA-256. `touched_at` moves whenever an upload claims the
-- blob or an artifact naming it is deleted; the collector removes a blob only when no live
-- artifact names it and it was not touched within the retention window.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size_bytes BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    touched_at TIMESTAMP NOT NULL
);
CREATE INDEX blobs_touched ON blobs (touched_at);

CREATE TABLE artifact_packages (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    version_id TEXT NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    format TEXT NOT NULL,
    primary_artifact_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX artifact_packages_version ON artifact_packages (version_id);

-- `sha256` names a blob; there is no foreign key because a deleted artifact keeps its digest
-- after the collector has removed the blob.
CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    version_id TEXT REFERENCES model_versions (id) ON DELETE SET NULL,
    package_id TEXT REFERENCES artifact_packages (id) ON DELETE SET NULL,
    package_role TEXT,
    kind TEXT NOT NULL,
    version_label TEXT,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    format TEXT,
    storage_backend TEXT NOT NULL,
    storage_uri TEXT NOT NULL,
    external_uri TEXT,
    training_run_id TEXT,
    status TEXT NOT NULL,
    is_current BOOLEAN NOT NULL,
    metadata TEXT,
    uploaded_by TEXT,
    uploaded_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX artifacts_model ON artifacts (model_id, id) WHERE status = 'AVAILABLE';
CREATE INDEX artifacts_version ON artifacts (version_id, id) WHERE status = 'AVAILABLE';
CREATE INDEX artifacts_sha256 ON artifacts (sha256) WHERE status = 'AVAILABLE';
-- At most one current artifact per model.
CREATE UNIQUE INDEX artifacts_current ON artifacts (model_id) WHERE is_current AND status = 'AVAILABLE';

-- One upload: chunked (chunks PUT to this server) or direct (one object PUT to storage).
CREATE TABLE upload_sessions (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    version_id TEXT REFERENCES model_versions (id) ON DELETE CASCADE,
    method TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    total_size_bytes BIGINT NOT NULL,
    expected_sha256 TEXT,
    chunk_size_bytes BIGINT NOT NULL,
    chunk_count BIGINT NOT NULL,
    artifact_kind TEXT NOT NULL,
    version_label TEXT,
    training_run_id TEXT,
    is_current BOOLEAN NOT NULL,
    external_uri TEXT,
    metadata TEXT,
    status TEXT NOT NULL,
    failure_reason TEXT,
    artifact_id TEXT,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP
);
CREATE INDEX upload_sessions_model ON upload_sessions (model_id, id);
CREATE INDEX upload_sessions_open ON upload_sessions (expires_at) WHERE status IN ('INITIALIZED', 'UPLOADING');

-- Chunks whose bytes are in storage. Each PUT stores a new object named by its generation, so
-- stored chunk bytes never change; a re-sent chunk replaces the row's generation.
CREATE TABLE upload_chunks (
    session_id TEXT NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    chunk_index BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    generation TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (session_id, chunk_index)
);

-- Secrets every replica must share (the URL-signing key), created once by whichever starts first.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
