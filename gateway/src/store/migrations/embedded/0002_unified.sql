-- Tongban hub, embedded (SQLite) schema version 2: unified records, their mentions and
-- keys, the change feed and the audit log. See the PostgreSQL migration for the meaning
-- of each column; SQLite has one writer at a time, so feed positions are in commit
-- order by construction.

CREATE TABLE entities (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('person', 'organisation')),
    version     INTEGER NOT NULL,
    redirect_to TEXT    REFERENCES entities (id),
    record      TEXT    NOT NULL
) STRICT;

CREATE TABLE entity_numbers (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    last   INTEGER NOT NULL
) STRICT;
INSERT INTO entity_numbers (id, last) VALUES (1, 0);

CREATE TABLE mentions (
    record_type    TEXT    NOT NULL,
    source_id      TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    idx            INTEGER NOT NULL,
    entity_id      TEXT    NOT NULL REFERENCES entities (id),
    source_version INTEGER NOT NULL,
    mention        TEXT    NOT NULL,
    match_name     TEXT    NOT NULL,
    PRIMARY KEY (record_type, source_id, role, idx)
) STRICT;
CREATE INDEX mentions_entity ON mentions (entity_id);

CREATE TABLE entity_keys (
    scheme    TEXT NOT NULL,
    value     TEXT NOT NULL,
    entity_id TEXT NOT NULL REFERENCES entities (id),
    PRIMARY KEY (scheme, value)
) STRICT;
CREATE INDEX entity_keys_entity ON entity_keys (entity_id);

CREATE TABLE changes (
    position     INTEGER PRIMARY KEY,
    entity_id    TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    record       TEXT    NOT NULL,
    committed_at INTEGER NOT NULL
) STRICT;
CREATE INDEX changes_kind_position ON changes (kind, position);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    identity TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    purpose  TEXT    NOT NULL,
    outcome  TEXT    NOT NULL
) STRICT;
