-- Version 4: the sync-generation sweep is gone. A full sync is reconciled by the
-- engine's ledger, which deletes what Apple no longer shows through sync pages;
-- nothing stamped or swept holdings by generation any more.
-- (SQLite rewrites the holdings table to drop the column: once, at upgrade.)

ALTER TABLE holdings DROP COLUMN seen_generation;
ALTER TABLE locations DROP COLUMN sync_generation;
