-- Tongban hub, schema version 7: the trace ID of the call behind each audit entry, so an
-- auditor goes from an entry to its trace. Entries written before it have none ('');
-- the chain hashes the trace ID only when present, so their hashes stand.
ALTER TABLE audit_log ADD COLUMN trace_id text NOT NULL DEFAULT '';
