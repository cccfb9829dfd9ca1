-- Tongban hub, PostgreSQL schema version 5: operational statistics
-- (gateway/src/statistics.rs). Counts and timings only, never personal data.
--
-- One row per counter per minute, department and record type: minute is the start of
-- the minute in unix seconds; department is the caller's short name ("tax", ...,
-- "platform" and "steward" for their lookups); record_type is '' for counters of the
-- department as a whole (batches, latency buckets, lookups); counter names what is
-- counted ("accepted", "resolved.key", "latency.07", ...). Each hub process adds its
-- counts every few seconds (n = n + excluded.n), so replicas add up.

CREATE TABLE traffic (
    minute      bigint NOT NULL,
    department  text   NOT NULL,
    record_type text   NOT NULL,
    counter     text   NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (minute, department, record_type, counter)
);
