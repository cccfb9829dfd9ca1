-- Tongban hub, embedded (SQLite) schema version 3: probabilistic matching and
-- stewardship. See the PostgreSQL migration for the meaning of each table.

ALTER TABLE mentions ADD COLUMN placement TEXT;

CREATE TABLE match_profiles (
    entity_id TEXT PRIMARY KEY REFERENCES entities (id),
    profile   TEXT NOT NULL
) STRICT;

CREATE TABLE match_blocks (
    block     TEXT NOT NULL,
    entity_id TEXT NOT NULL REFERENCES entities (id),
    PRIMARY KEY (block, entity_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX match_blocks_entity ON match_blocks (entity_id);

CREATE TABLE review_pairs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    record_type TEXT    NOT NULL,
    source_id   TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    idx         INTEGER NOT NULL,
    entity_id   TEXT    NOT NULL REFERENCES entities (id),
    candidate   TEXT    NOT NULL REFERENCES entities (id),
    total       REAL    NOT NULL,
    evidence    TEXT    NOT NULL,
    queued_at   INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'same', 'different', 'superseded')),
    decided_by  TEXT,
    decided_at  INTEGER
) STRICT;
CREATE INDEX review_pairs_open ON review_pairs (id) WHERE status = 'open';
-- One open pair per two entities: checked on every queueing.
CREATE INDEX review_pairs_open_entities ON review_pairs (entity_id, candidate) WHERE status = 'open';
CREATE INDEX review_pairs_open_candidates ON review_pairs (candidate, entity_id) WHERE status = 'open';
CREATE INDEX review_pairs_mention ON review_pairs (record_type, source_id, role, idx);

CREATE TABLE pinned_mentions (
    record_type TEXT    NOT NULL,
    source_id   TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    idx         INTEGER NOT NULL,
    entity_id   TEXT    NOT NULL REFERENCES entities (id),
    PRIMARY KEY (record_type, source_id, role, idx)
) STRICT;
CREATE INDEX pinned_mentions_entity ON pinned_mentions (entity_id);

CREATE TABLE entities_apart (
    entity_id TEXT NOT NULL REFERENCES entities (id),
    other_id  TEXT NOT NULL REFERENCES entities (id),
    PRIMARY KEY (entity_id, other_id)
) STRICT;
CREATE INDEX entities_apart_other ON entities_apart (other_id);
