-- Tongban hub, embedded (SQLite) schema version 1. Timestamps are unix milliseconds.

-- One row per source record; points at the version held as current. The current version
-- is always a held version; the check is deferred because a batch creates the record row
-- first and its first version after.
CREATE TABLE source_records (
    record_type     TEXT    NOT NULL,
    source_id       TEXT    NOT NULL,
    current_version INTEGER NOT NULL,
    PRIMARY KEY (record_type, source_id),
    FOREIGN KEY (record_type, source_id, current_version)
        REFERENCES source_record_versions (record_type, source_id, source_version)
        DEFERRABLE INITIALLY DEFERRED
) STRICT;

-- Every version of a source record ever accepted, current or not.
CREATE TABLE source_record_versions (
    record_type    TEXT    NOT NULL,
    source_id      TEXT    NOT NULL,
    source_version INTEGER NOT NULL,
    deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    -- Canonical JSON text exactly as acknowledged.
    payload        TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    -- The identity that pushed it, e.g. 'department:tax'.
    received_by    TEXT    NOT NULL,
    PRIMARY KEY (record_type, source_id, source_version),
    FOREIGN KEY (record_type, source_id) REFERENCES source_records (record_type, source_id)
) STRICT;

-- Rejected records, kept as received (payload verbatim, maybe invalid JSON).
-- AUTOINCREMENT: an id handed out to a department is never reused.
CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    INTEGER NOT NULL,
    identity       TEXT    NOT NULL,
    record_type    TEXT    NOT NULL,
    source_id      TEXT    NOT NULL,
    source_version INTEGER NOT NULL,
    deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    payload        TEXT    NOT NULL,
    -- JSON array of RecordError.
    errors         TEXT    NOT NULL
) STRICT;

CREATE INDEX quarantine_identity_id ON quarantine (identity, id);
