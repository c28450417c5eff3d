-- A model's pointer to its current version is checked when the transaction commits, not when
-- it is written: creating a version numbers it and points the model at it in one write of the
-- model's row, before the version's own row is inserted (src/db/model_versions.rs,
-- `take_number`). The row is written once per version instead of twice for the first, and
-- every write of it adds an entry to each of the model's eleven indexes.
--
-- ON DELETE SET NULL still acts at once: PostgreSQL defers only the check.
ALTER TABLE models ALTER CONSTRAINT models_current_version DEFERRABLE INITIALLY DEFERRED;
