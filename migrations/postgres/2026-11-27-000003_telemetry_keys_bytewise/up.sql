-- The key columns of the raw telemetry rows and the inference summaries compare as bytes
-- (COLLATE "C"). They hold ids (UUIDs) and bucket names, which are only ever matched, never
-- shown in their order; under the database's default collation every comparison in their
-- indexes went through strcoll (measured on 600,000 sessions in one statement: 8-12 % of the
-- insert). Equality is unchanged: the default collation is deterministic. The indexes on these
-- columns are rebuilt (the tables are not rewritten), under a lock that holds ingest and
-- telemetry reads until the rebuild ends: on a large deployment, migrate in a quiet hour.
ALTER TABLE inference_sessions
    ALTER COLUMN project_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN model_id TYPE TEXT COLLATE "C";
ALTER TABLE inference_rollups
    ALTER COLUMN model_id TYPE TEXT COLLATE "C",
    ALTER COLUMN granularity TYPE TEXT COLLATE "C",
    ALTER COLUMN model_version_id TYPE TEXT COLLATE "C";
ALTER TABLE training_updates
    ALTER COLUMN project_id TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
