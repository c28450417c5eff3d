-- PostgreSQL's telemetry key columns compare as bytes from here on. SQLite's text columns
-- already do (BINARY, its default collation): nothing changes.
SELECT 1;
