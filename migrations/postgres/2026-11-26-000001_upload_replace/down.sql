ALTER TABLE upload_sessions DROP COLUMN replace_existing;
