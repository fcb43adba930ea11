-- Version 5: the journal costs what an append costs, not what a record costs.
-- An append (a sync page, an apply step) is one row holding its records packed
-- as one JSON text (vppkit_store::PackedJournal); the distinct assets and holders
-- it names go to two narrow index tables, so reads by asset and by holder still
-- find their rows through an index. Records keep their sequence numbers: an
-- append's records are numbered first_seq, first_seq + 1, ... in order.

CREATE TABLE journal_appends (
    location_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    min_at      INTEGER NOT NULL,
    max_at      INTEGER NOT NULL,
    records     TEXT NOT NULL,                    -- JSON, see PackedJournal
    PRIMARY KEY (location_id, first_seq)
) WITHOUT ROWID;

CREATE TABLE journal_assets (
    location_id   TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    adam_id       TEXT NOT NULL,
    pricing_param TEXT NOT NULL,
    first_seq     INTEGER NOT NULL,
    PRIMARY KEY (location_id, adam_id, pricing_param, first_seq)
) WITHOUT ROWID;

CREATE TABLE journal_holders (
    location_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    holder      TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    PRIMARY KEY (location_id, holder, first_seq)
) WITHOUT ROWID;

-- Existing records become appends of one record each.
INSERT INTO journal_appends (location_id, first_seq, last_seq, min_at, max_at, records)
SELECT location_id, seq, seq, at, at,
       json_array(json_array(at, adam_id, pricing_param, holder, cause, kind, json(body)))
FROM journal;
INSERT INTO journal_assets (location_id, adam_id, pricing_param, first_seq)
SELECT location_id, adam_id, pricing_param, seq FROM journal WHERE adam_id IS NOT NULL;
INSERT INTO journal_holders (location_id, holder, first_seq)
SELECT location_id, holder, seq FROM journal WHERE holder IS NOT NULL;

DROP TABLE journal;
