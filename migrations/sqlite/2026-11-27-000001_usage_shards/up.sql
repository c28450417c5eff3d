-- A project's monthly version count is spread over shards (one per model, modulo 16): every
-- version created in a project used to add to one row, whose lock on PostgreSQL made the
-- project's creates wait for each other's commits. A quota check sums the shards.
CREATE TABLE project_monthly_usage_sharded (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    shard INTEGER NOT NULL,
    versions_created BIGINT NOT NULL,
    PRIMARY KEY (project_id, month, shard)
);
INSERT INTO project_monthly_usage_sharded (project_id, month, shard, versions_created)
    SELECT project_id, month, 0, versions_created FROM project_monthly_usage;
DROP TABLE project_monthly_usage;
ALTER TABLE project_monthly_usage_sharded RENAME TO project_monthly_usage;
