-- Tongban hub, schema version 9: the feed's changes by entity, for an entity's history
-- in the console (`entity_history`); without it each view scanned the whole feed.
CREATE INDEX changes_entity ON changes (entity_id, position);
