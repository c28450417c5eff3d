-- Raw inference sessions keep two indexes: the retry key and (model, started_at). The index
-- on started_at alone served only the retention sweep, which now walks each model's
-- (model, started_at) range instead; every stored session wrote a third index entry for it.
DROP INDEX inference_sessions_started;
