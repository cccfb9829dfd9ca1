-- Tongban hub, schema version 8: a quarantined payload is kept as the bytes received
-- (BLOB), as on PostgreSQL (bytea). A payload need not be UTF-8 (it is rejected as
-- `payload.not_utf8` and kept byte for byte); in a TEXT column such bytes break
-- SQLite's text functions and every tool that reads the file as text.
CREATE TABLE quarantine_bytes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    INTEGER NOT NULL,
    identity       TEXT    NOT NULL,
    record_type    TEXT    NOT NULL,
    source_id      TEXT    NOT NULL,
    source_version INTEGER NOT NULL,
    deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    payload        BLOB    NOT NULL,
    -- JSON array of RecordError.
    errors         TEXT    NOT NULL
) STRICT;

INSERT INTO quarantine_bytes
       (id, received_at, identity, record_type, source_id, source_version, deleted, payload, errors)
SELECT id, received_at, identity, record_type, source_id, source_version, deleted,
       CAST(payload AS BLOB), errors
  FROM quarantine;

-- An id handed out to a department is never reused: the new table continues the old
-- one's AUTOINCREMENT high-water mark, whatever rows it holds.
DELETE FROM sqlite_sequence WHERE name = 'quarantine_bytes';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'quarantine_bytes', seq FROM sqlite_sequence WHERE name = 'quarantine';

DROP TABLE quarantine;
ALTER TABLE quarantine_bytes RENAME TO quarantine;
CREATE INDEX quarantine_identity_id ON quarantine (identity, id);
