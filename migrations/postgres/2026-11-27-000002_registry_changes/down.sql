DROP TRIGGER organizations_changed ON organizations;
DROP TRIGGER projects_changed ON projects;
DROP TRIGGER models_changed ON models;
DROP TRIGGER model_versions_changed ON model_versions;
DROP FUNCTION registry_changed();
DROP TABLE registry_changes;
