-- A project's monthly version count is spread over shards (one per model, modulo 16): every
-- version created in a project used to add to one row, whose lock made the project's creates
-- wait for each other's commits. A quota check sums the shards.
ALTER TABLE project_monthly_usage ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE project_monthly_usage ALTER COLUMN shard DROP DEFAULT;
ALTER TABLE project_monthly_usage DROP CONSTRAINT project_monthly_usage_pkey;
ALTER TABLE project_monthly_usage ADD PRIMARY KEY (project_id, month, shard);
