-- Tongban hub, PostgreSQL schema version 4: the audit log's hash chain.
--
-- seq: 1, 2, 3, ... in the order entries were appended; hash: hex SHA-256 of the
-- previous entry's hash and this entry's fields (gateway/src/audit.rs). audit_head
-- holds the last seq and hash: appending locks it (one appender at a time across
-- replicas), and entries cut off the end no longer reach it. Entries written before
-- this version are chained, in id order, when it is applied.

ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN hash text;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

CREATE TABLE audit_head (
    id   integer PRIMARY KEY CHECK (id = 1),
    seq  bigint  NOT NULL,
    hash text    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
