-- PostgreSQL checks a model's pointer to its current version at commit from this migration on.
-- SQLite cannot alter a constraint without rebuilding the table, and deferring every key for a
-- transaction (`PRAGMA defer_foreign_keys`) recompiles the connection's prepared statements:
-- a version create there points the model after inserting the version, as before (see
-- src/db/model_versions.rs, `take_number`). Kept so both trees have the same migrations.
SELECT 1;
