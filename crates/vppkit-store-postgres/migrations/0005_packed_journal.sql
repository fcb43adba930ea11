-- Version 5: the journal costs what an append costs, not what a record costs.
-- An append (a sync page, an apply step) is one row holding its records packed
-- as one JSON text (vppkit_store::PackedJournal; text, not jsonb: the store never
-- looks inside, and a large text is compressed out of line); the distinct assets
-- and holders it names go to two narrow index tables, so reads by asset and by
-- holder still find their rows through an index. Records keep their sequence
-- numbers: an append's records are numbered first_seq, first_seq + 1, ... in order.

CREATE TABLE journal_appends (
    location_id text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    min_at      timestamptz NOT NULL,
    max_at      timestamptz NOT NULL,
    records     text NOT NULL,
    PRIMARY KEY (location_id, first_seq)
);

CREATE TABLE journal_assets (
    location_id   text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    adam_id       text COLLATE "C" NOT NULL,
    pricing_param text COLLATE "C" NOT NULL,
    first_seq     bigint NOT NULL,
    PRIMARY KEY (location_id, adam_id, pricing_param, first_seq)
);

CREATE TABLE journal_holders (
    location_id text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    holder      text COLLATE "C" NOT NULL,
    first_seq   bigint NOT NULL,
    PRIMARY KEY (location_id, holder, first_seq)
);

-- Existing records become appends of one record each ("at" as Unix nanoseconds).
INSERT INTO journal_appends (location_id, first_seq, last_seq, min_at, max_at, records)
SELECT location_id, seq, seq, at, at,
       jsonb_build_array(jsonb_build_array(
           (extract(epoch FROM at) * 1000000)::bigint * 1000,
           adam_id, pricing_param, holder, cause, kind, body))::text
FROM journal;
INSERT INTO journal_assets (location_id, adam_id, pricing_param, first_seq)
SELECT location_id, adam_id, pricing_param, seq FROM journal WHERE adam_id IS NOT NULL;
INSERT INTO journal_holders (location_id, holder, first_seq)
SELECT location_id, holder, seq FROM journal WHERE holder IS NOT NULL;

DROP TABLE journal;
