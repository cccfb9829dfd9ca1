-- Tongban hub, embedded (SQLite) schema version 5: operational statistics. See the
-- PostgreSQL migration for the meaning of each column.

CREATE TABLE traffic (
    minute      INTEGER NOT NULL,
    department  TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    counter     TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (minute, department, record_type, counter)
) STRICT, WITHOUT ROWID;
