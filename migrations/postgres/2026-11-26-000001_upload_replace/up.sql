-- An upload session opened to replace the version's file of the same name.
ALTER TABLE upload_sessions ADD COLUMN replace_existing BOOLEAN NOT NULL DEFAULT FALSE;
