-- Tongban hub, PostgreSQL schema version 2: unified records, their mentions and keys,
-- the change feed and the audit log.

-- One row per unified entity, live or merged away. IDs are never reused or deleted.
CREATE TABLE entities (
    id          text   PRIMARY KEY,
    kind        text   NOT NULL CHECK (kind IN ('person', 'organisation')),
    -- Grows with every change; the feed carries it so that consumers apply idempotently.
    version     bigint NOT NULL,
    -- Set once the entity is merged into another: lookups follow it. Always one hop:
    -- a merge re-points the entities that redirected to the absorbed one.
    redirect_to text   REFERENCES entities (id),
    -- The unified record at `version`, as JSON text.
    record      text   NOT NULL
);

-- Numbers of entity IDs (P00000000001, O00000000002, ...), one sequence for both kinds.
CREATE SEQUENCE entity_numbers;

-- Every mention of every current source record, and the entity it resolved to.
CREATE TABLE mentions (
    record_type    text    NOT NULL,
    source_id      text    NOT NULL,
    role           text    NOT NULL,
    idx            integer NOT NULL,
    entity_id      text    NOT NULL REFERENCES entities (id),
    source_version bigint  NOT NULL,
    -- The kept mention (normalised values, facts, flags, resolved relations) as JSON text.
    mention        text    NOT NULL,
    -- Its comparable name: a keyless mention keeps its slot's entity only while it
    -- names the same person.
    match_name     text    NOT NULL,
    PRIMARY KEY (record_type, source_id, role, idx)
);
CREATE INDEX mentions_entity ON mentions (entity_id);

-- The deterministic keys and the live entity owning each.
CREATE TABLE entity_keys (
    scheme    text NOT NULL,
    value     text NOT NULL,
    entity_id text NOT NULL REFERENCES entities (id),
    PRIMARY KEY (scheme, value)
);
CREATE INDEX entity_keys_entity ON entity_keys (entity_id);

-- The change feed. Positions are handed out by `feed_clock` as the last step of a
-- transaction, under that row's lock, which is held until commit: positions are in
-- commit order, so a reader that has seen position n will never later find a smaller
-- one appear.
CREATE TABLE changes (
    position     bigint      PRIMARY KEY,
    entity_id    text        NOT NULL,
    kind         text        NOT NULL,
    version      bigint      NOT NULL,
    record       text        NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_kind_position ON changes (kind, position);

CREATE TABLE feed_clock (
    id       integer PRIMARY KEY CHECK (id = 1),
    position bigint  NOT NULL
);
INSERT INTO feed_clock (id, position) VALUES (1, 0);

-- Reads of personal data and refusals, append-only.
CREATE TABLE audit_log (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL,
    identity text        NOT NULL,
    action   text        NOT NULL,
    subject  text        NOT NULL,
    purpose  text        NOT NULL,
    outcome  text        NOT NULL
);
