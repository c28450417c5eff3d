DROP TABLE server_secrets;
DROP TABLE upload_chunks;
DROP TABLE upload_sessions;
DROP TABLE artifacts;
DROP TABLE artifact_packages;
DROP TABLE blobs;
