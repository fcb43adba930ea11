-- Version 2: a running count of holdings per asset, so a reservation reads one
-- row instead of counting up to a million holdings. The store keeps it up to
-- date in the same transaction as every insert and delete of a holding (in
-- bulk, per statement, which is far cheaper than a trigger per row).

ALTER TABLE assets ADD COLUMN held_count INTEGER NOT NULL DEFAULT 0;

UPDATE assets SET held_count = (
    SELECT COUNT(*) FROM holdings h
    WHERE h.location_id = assets.location_id
      AND h.adam_id = assets.adam_id
      AND h.pricing_param = assets.pricing_param
);
