-- Tongban hub, schema version 8: an index of the entities that redirect. A merge re-points
-- the entities that redirected to the absorbed one (`WHERE id = $1 OR redirect_to = $1`);
-- without this it scanned every entity, a cost per merge that grew with the store (at a
-- million people the busiest statement inside resolution's locks). Partial: only merged
-- entities redirect, so it stays small.
CREATE INDEX entities_redirected ON entities (redirect_to) WHERE redirect_to IS NOT NULL;
