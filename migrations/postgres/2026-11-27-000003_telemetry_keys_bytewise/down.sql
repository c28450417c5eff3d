ALTER TABLE inference_sessions
    ALTER COLUMN project_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN model_id TYPE TEXT COLLATE "default";
ALTER TABLE inference_rollups
    ALTER COLUMN model_id TYPE TEXT COLLATE "default",
    ALTER COLUMN granularity TYPE TEXT COLLATE "default",
    ALTER COLUMN model_version_id TYPE TEXT COLLATE "default";
ALTER TABLE training_updates
    ALTER COLUMN project_id TYPE TEXT COLLATE "default",
    ALTER COLUMN id TYPE TEXT COLLATE "default";
