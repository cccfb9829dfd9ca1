-- Tongban hub, embedded (SQLite) schema version 6: data-quality reports. See the
-- PostgreSQL migration for the meaning of each column. The flags of mentions kept
-- before this version, and their contradictions, are filled in when it is applied
-- (gateway/src/store/embedded/quality.rs).

ALTER TABLE mentions ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE mentions ADD COLUMN contradictions TEXT NOT NULL DEFAULT '[]';
CREATE INDEX mentions_flagged ON mentions (record_type, source_id)
    WHERE flags <> '[]' OR contradictions <> '[]';
