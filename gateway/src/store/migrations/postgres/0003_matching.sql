-- Tongban hub, PostgreSQL schema version 3: probabilistic matching and stewardship.

-- Why each mention is in its entity (JSON of `resolve::Placement`), read back when the
-- record's next version keeps the slot.
ALTER TABLE mentions ADD COLUMN placement text;

-- What matching compares of each live entity (JSON of `matching::Profile`), rebuilt
-- with its unified record. Merged and empty entities have none.
CREATE TABLE match_profiles (
    entity_id text PRIMARY KEY REFERENCES entities (id),
    profile   text NOT NULL
);

-- Blocking keys of each live entity: every entity sharing one with a mention is a
-- candidate for it. Keys starting `pf:` / `of:` are not blocks but count the entities
-- carrying a name (term frequencies).
CREATE TABLE match_blocks (
    block     text NOT NULL,
    entity_id text NOT NULL REFERENCES entities (id),
    PRIMARY KEY (block, entity_id)
);
CREATE INDEX match_blocks_entity ON match_blocks (entity_id);

-- Transactions matching on a blocking key serialise on one of these rows (the key's
-- hash picks it): row locks, unlike advisory locks, take no room in the server's lock
-- table, and a batch touches thousands of blocking keys.
CREATE TABLE match_block_locks (
    bucket integer PRIMARY KEY
);
INSERT INTO match_block_locks (bucket) SELECT generate_series(0, 4095);

-- Pairs for a steward: a mention that founded its own entity (`entity_id`, as queued)
-- and the candidate it may belong to. Decided pairs stay, with who decided and when.
CREATE TABLE review_pairs (
    id          bigserial        PRIMARY KEY,
    record_type text             NOT NULL,
    source_id   text             NOT NULL,
    role        text             NOT NULL,
    idx         integer          NOT NULL,
    entity_id   text             NOT NULL REFERENCES entities (id),
    candidate   text             NOT NULL REFERENCES entities (id),
    total       double precision NOT NULL,
    evidence    text             NOT NULL,
    queued_at   timestamptz      NOT NULL DEFAULT now(),
    status      text             NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'same', 'different', 'superseded')),
    decided_by  text,
    decided_at  timestamptz
);
CREATE INDEX review_pairs_open ON review_pairs (id) WHERE status = 'open';
-- One open pair per two entities: checked on every queueing.
CREATE INDEX review_pairs_open_entities ON review_pairs (entity_id, candidate) WHERE status = 'open';
CREATE INDEX review_pairs_open_candidates ON review_pairs (candidate, entity_id) WHERE status = 'open';
CREATE INDEX review_pairs_mention ON review_pairs (record_type, source_id, role, idx);

-- Standing steward decisions that automatic resolution keeps: a mention stays in the
-- entity a steward put it in...
CREATE TABLE pinned_mentions (
    record_type text NOT NULL,
    source_id   text NOT NULL,
    role        text NOT NULL,
    idx         integer NOT NULL,
    entity_id   text NOT NULL REFERENCES entities (id),
    PRIMARY KEY (record_type, source_id, role, idx)
);
CREATE INDEX pinned_mentions_entity ON pinned_mentions (entity_id);

-- ...and two entities a steward said are different are never merged automatically.
-- Both orders are stored; merges re-point rows to the survivor.
CREATE TABLE entities_apart (
    entity_id text NOT NULL REFERENCES entities (id),
    other_id  text NOT NULL REFERENCES entities (id),
    PRIMARY KEY (entity_id, other_id)
);
CREATE INDEX entities_apart_other ON entities_apart (other_id);
