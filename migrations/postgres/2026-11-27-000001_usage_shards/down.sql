CREATE TABLE project_monthly_usage_whole (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    versions_created BIGINT NOT NULL,
    PRIMARY KEY (project_id, month)
);
INSERT INTO project_monthly_usage_whole (project_id, month, versions_created)
    SELECT project_id, month, SUM(versions_created) FROM project_monthly_usage
    GROUP BY project_id, month;
DROP TABLE project_monthly_usage;
ALTER TABLE project_monthly_usage_whole RENAME TO project_monthly_usage;
ALTER INDEX project_monthly_usage_whole_pkey RENAME TO project_monthly_usage_pkey;
ALTER TABLE project_monthly_usage
    RENAME CONSTRAINT project_monthly_usage_whole_project_id_fkey TO project_monthly_usage_project_id_fkey;
