-- Which attempt at a chunk writes its bytes in place, at the chunk's offset in the session's
-- one staging file: the first only. Later attempts (a re-sent chunk, a second request racing
-- the first) store their bytes as objects of their own, so a refused or unfinished attempt
-- never overwrites bytes that were already accepted.
CREATE TABLE upload_chunk_claims (
    session_id TEXT NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    chunk_index BIGINT NOT NULL,
    generation TEXT NOT NULL,
    PRIMARY KEY (session_id, chunk_index)
);
