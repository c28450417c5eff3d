CREATE INDEX inference_sessions_started ON inference_sessions (started_at);
