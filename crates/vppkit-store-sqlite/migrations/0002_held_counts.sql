-- Version 2: a running count of holdings per asset, so a reservation reads one
-- row instead of counting up to a million holdings.

ALTER TABLE assets ADD COLUMN held_count INTEGER NOT NULL DEFAULT 0;

UPDATE assets SET held_count = (
    SELECT COUNT(*) FROM holdings h
    WHERE h.location_id = assets.location_id
      AND h.adam_id = assets.adam_id
      AND h.pricing_param = assets.pricing_param
);

CREATE TRIGGER holdings_count_insert AFTER INSERT ON holdings
BEGIN
    UPDATE assets SET held_count = held_count + 1
    WHERE location_id = NEW.location_id AND adam_id = NEW.adam_id
      AND pricing_param = NEW.pricing_param;
END;

CREATE TRIGGER holdings_count_delete AFTER DELETE ON holdings
BEGIN
    UPDATE assets SET held_count = held_count - 1
    WHERE location_id = OLD.location_id AND adam_id = OLD.adam_id
      AND pricing_param = OLD.pricing_param;
END;
