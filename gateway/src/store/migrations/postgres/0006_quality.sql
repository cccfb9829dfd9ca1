-- Tongban hub, PostgreSQL schema version 6: data-quality reports.
--
-- flags: the quality flags normalisation found in the mention (a copy of those in
-- `mention`), as a JSON array; '[]' when none. contradictions: where the mention
-- contradicts a value an authority gave, as a JSON array of flags; rewritten whenever
-- the mention's entity is rebuilt and they changed (gateway/src/quality.rs). A report
-- reads only flagged mentions, through the partial index, and never parses `mention`.
-- The flags of mentions kept before this version, and their contradictions, are
-- filled in when it is applied (gateway/src/store/postgres/quality.rs).

ALTER TABLE mentions ADD COLUMN flags text NOT NULL DEFAULT '[]',
                     ADD COLUMN contradictions text NOT NULL DEFAULT '[]';
CREATE INDEX mentions_flagged ON mentions (record_type, source_id)
    WHERE flags <> '[]' OR contradictions <> '[]';
