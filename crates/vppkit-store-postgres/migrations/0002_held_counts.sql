-- Version 2: a per-asset count of holdings, so that a reservation reads one locked
-- row instead of counting up to a million holdings. Every statement that inserts or
-- deletes holdings adjusts it in the same transaction, under the asset row's lock.
-- Existing databases are backfilled.

ALTER TABLE assets ADD COLUMN held_count bigint NOT NULL DEFAULT 0 CHECK (held_count >= 0);

UPDATE assets a
   SET held_count = h.n
  FROM (SELECT location_id, adam_id, pricing_param, count(*) AS n
          FROM holdings GROUP BY location_id, adam_id, pricing_param) h
 WHERE a.location_id = h.location_id
   AND a.adam_id = h.adam_id
   AND a.pricing_param = h.pricing_param;
