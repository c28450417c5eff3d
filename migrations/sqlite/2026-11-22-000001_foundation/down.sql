DROP TABLE project_monthly_usage;
DROP TABLE model_versions;
DROP TABLE models;
DROP TABLE api_keys;
DROP TABLE projects;
DROP TABLE organizations;
