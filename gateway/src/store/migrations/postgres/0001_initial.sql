-- Tongban hub, PostgreSQL schema version 1.

-- One row per source record; points at the version held as current.
CREATE TABLE source_records (
    record_type     text   NOT NULL,
    source_id       text   NOT NULL,
    current_version bigint NOT NULL,
    PRIMARY KEY (record_type, source_id)
);

-- Every version of a source record ever accepted, current or not.
CREATE TABLE source_record_versions (
    record_type    text        NOT NULL,
    source_id      text        NOT NULL,
    source_version bigint      NOT NULL,
    deleted        boolean     NOT NULL,
    -- Canonical JSON text exactly as acknowledged. Not jsonb: jsonb re-orders keys and
    -- re-formats numbers, and readers must get back the very text that was accepted.
    -- A replay is recognised by equal text: canonical text is equal exactly when the
    -- content is (the embedded store does the same).
    payload        text        NOT NULL,
    received_at    timestamptz NOT NULL,
    -- The identity that pushed it, e.g. 'department:tax'.
    received_by    text        NOT NULL,
    PRIMARY KEY (record_type, source_id, source_version),
    FOREIGN KEY (record_type, source_id) REFERENCES source_records (record_type, source_id)
);

-- The current version is always a held version. Deferred: a batch creates the record row
-- first (it is the row that serialises writers of the record) and its first version after.
ALTER TABLE source_records
    ADD CONSTRAINT source_records_current_version_fkey
    FOREIGN KEY (record_type, source_id, current_version)
    REFERENCES source_record_versions (record_type, source_id, source_version)
    DEFERRABLE INITIALLY DEFERRED;

-- Rejected records, kept as received so that a steward can see what was sent.
CREATE TABLE quarantine (
    id             bigserial   PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    identity       text        NOT NULL,
    record_type    text        NOT NULL,
    source_id      text        NOT NULL,
    source_version bigint      NOT NULL,
    deleted        boolean     NOT NULL,
    -- The payload bytes verbatim: they may be invalid JSON, or even hold NUL characters,
    -- which a text column cannot.
    payload        bytea       NOT NULL,
    -- JSON array of RecordError, as text: messages quote the offending values, which may
    -- hold a NUL that jsonb refuses.
    errors         text        NOT NULL
);

CREATE INDEX quarantine_identity_id ON quarantine (identity, id);
