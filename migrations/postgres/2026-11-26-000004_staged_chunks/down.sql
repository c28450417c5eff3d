DROP TABLE upload_chunk_claims;
