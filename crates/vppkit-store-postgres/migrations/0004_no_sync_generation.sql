-- Version 4: the sync-generation sweep is gone. A full sync is reconciled by the
-- engine's ledger, which deletes what Apple no longer shows through sync pages;
-- nothing stamps or sweeps holdings by generation any more. Dropping a column
-- only changes the catalog (no table rewrite); the space is reclaimed as rows
-- are rewritten.

ALTER TABLE holdings DROP COLUMN seen_generation;
ALTER TABLE sync_state DROP COLUMN generation;
