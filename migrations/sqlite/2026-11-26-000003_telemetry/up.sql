-- Telemetry: the fleet's devices, raw inference sessions and training updates (kept for the
-- raw retention, for exact small windows and for recognising a retried event), and the
-- summaries every answer over a longer window reads instead of raw rows.
--
-- The event and summary tables carry no foreign keys: they take the most rows of any table
-- and a key check per row is a lookup per row. Their model and project are checked by the
-- ingest rule before a row is written; models are never removed from the database (deleting
-- one marks it), and raw rows leave with the retention.

-- A device of a project's fleet, registered by its first heartbeat or event. Health is the
-- age of `last_heartbeat_at`; a device that never sent a heartbeat is OFFLINE.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    device_type TEXT,
    os TEXT,
    runtime_version TEXT,
    labels TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_heartbeat_at TIMESTAMP,
    UNIQUE (project_id, external_id)
);
CREATE INDEX devices_heartbeat ON devices (project_id, last_heartbeat_at);
CREATE INDEX devices_type ON devices (project_id, device_type, last_heartbeat_at);

-- One inference session as a device reported it. The key is the client's id within the
-- model's project: a retry of a stored event is recognised and not counted twice.
CREATE TABLE inference_sessions (
    project_id TEXT NOT NULL,
    id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_version_id TEXT NOT NULL,
    device_external_id TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    ttft_ms DOUBLE PRECISION,
    input_tokens BIGINT,
    output_tokens BIGINT,
    success BOOLEAN NOT NULL,
    error_code TEXT,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX inference_sessions_model ON inference_sessions (model_id, started_at);
CREATE INDEX inference_sessions_started ON inference_sessions (started_at);

-- Inference summarised per model version and minute, hour and day, written in the
-- transaction that stores the events. Percentiles come from mergeable DDSketches (their standard binary encoding), so
-- a window reads its whole days, the hours at its edges and the minutes at theirs.
CREATE TABLE inference_rollups (
    model_id TEXT NOT NULL,
    granularity TEXT NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    model_version_id TEXT NOT NULL,
    sessions BIGINT NOT NULL,
    successes BIGINT NOT NULL,
    latency_sum DOUBLE PRECISION NOT NULL,
    ttft_count BIGINT NOT NULL,
    ttft_sum DOUBLE PRECISION NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    latency_sketch BLOB,
    ttft_sketch BLOB,
    PRIMARY KEY (model_id, granularity, bucket_start, model_version_id)
);

-- One training update as a device reported it; the same key rule as inference sessions.
CREATE TABLE training_updates (
    project_id TEXT NOT NULL,
    id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_version_id TEXT NOT NULL,
    device_external_id TEXT NOT NULL,
    sample_count BIGINT NOT NULL,
    metrics TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX training_updates_recorded ON training_updates (recorded_at);

-- Training updates summarised per version and device, and per version and metric (with a
-- DDSketch of the metric's values), for all time: they outlive the raw rows. A summary's
-- sketch is NULL only inside the transaction that creates its row (and then merges into it).
CREATE TABLE training_device_stats (
    model_version_id TEXT NOT NULL,
    device_external_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    updates BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    latest_metrics TEXT NOT NULL,
    latest_recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (model_version_id, device_external_id)
);
CREATE INDEX training_device_stats_model ON training_device_stats (model_id, model_version_id);
CREATE INDEX training_device_stats_latest ON training_device_stats (model_version_id, latest_recorded_at);

CREATE TABLE training_metric_stats (
    model_version_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    sketch BLOB,
    PRIMARY KEY (model_version_id, metric)
);
