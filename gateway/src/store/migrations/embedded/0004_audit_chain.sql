-- Tongban hub, embedded (SQLite) schema version 4: the audit log's hash chain. See the
-- PostgreSQL migration for the meaning of each column. Entries written before this
-- version are chained, in the order they were written, when it is applied.

ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Nothing is appended outside the chain (a binary older than this version, say).
CREATE TRIGGER audit_log_chained BEFORE INSERT ON audit_log
WHEN NEW.seq IS NULL OR NEW.hash IS NULL
BEGIN
    SELECT RAISE(ABORT, 'audit entries are appended to the hash chain');
END;
