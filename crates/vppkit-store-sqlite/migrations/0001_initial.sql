-- vppkit SQLite schema, version 1.
-- Timestamps are INTEGER nanoseconds since the Unix epoch (UTC).
-- Text keys compare with the BINARY collation (bytes), which is the order the
-- Store trait documents for paged reads.

CREATE TABLE locations (
    id                      TEXT PRIMARY KEY NOT NULL,
    name                    TEXT NOT NULL,
    token                   BLOB NOT NULL,          -- sealed by SecretCipher
    token_expires_at        INTEGER NOT NULL,
    token_state             TEXT NOT NULL,
    uid                     TEXT,
    country                 TEXT,
    account_type            TEXT,
    apple_account_name      TEXT,
    mdm_info                TEXT,                   -- JSON
    notification_url        TEXT,
    notification_auth_token BLOB,                   -- sealed by SecretCipher
    notification_types      TEXT,                   -- JSON array
    service_config          TEXT,                   -- JSON
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    revision                INTEGER NOT NULL,
    journal_seq             INTEGER NOT NULL DEFAULT 0,
    sync_generation         INTEGER NOT NULL DEFAULT 0,
    last_sync_at            INTEGER,
    last_sync_success       INTEGER,
    last_sync_message       TEXT
);

CREATE TABLE sync_cursors (
    location_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    endpoint    TEXT NOT NULL,
    version_id  TEXT NOT NULL,
    next_page   INTEGER,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (location_id, endpoint)
) WITHOUT ROWID;

CREATE TABLE assets (
    location_id        TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    adam_id            TEXT NOT NULL,
    pricing_param      TEXT NOT NULL,
    product_type       TEXT NOT NULL,
    device_assignable  INTEGER NOT NULL,
    revocable          INTEGER NOT NULL,
    platforms          TEXT NOT NULL,               -- JSON array
    total_count        INTEGER NOT NULL,
    assigned_count     INTEGER NOT NULL,
    available_count    INTEGER NOT NULL,
    retired_count      INTEGER NOT NULL,
    metadata           TEXT,                        -- JSON
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (location_id, adam_id, pricing_param)
) WITHOUT ROWID;

CREATE TABLE holdings (
    location_id     TEXT NOT NULL,
    adam_id         TEXT NOT NULL,
    pricing_param   TEXT NOT NULL,
    holder          TEXT NOT NULL,                  -- device:SERIAL or user:ID
    status          TEXT NOT NULL,
    operation_id    TEXT,
    seen_generation INTEGER,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (location_id, adam_id, pricing_param, holder),
    FOREIGN KEY (location_id, adam_id, pricing_param)
        REFERENCES assets (location_id, adam_id, pricing_param) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE INDEX holdings_by_holder ON holdings (location_id, holder);
CREATE INDEX holdings_by_operation ON holdings (location_id, operation_id)
    WHERE operation_id IS NOT NULL;

CREATE TABLE users (
    location_id      TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    client_user_id   TEXT NOT NULL,
    email            TEXT,
    managed_apple_id TEXT,
    invite_code      TEXT,
    id_hash          TEXT,
    status           TEXT NOT NULL,
    managed_by_us    INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (location_id, client_user_id)
) WITHOUT ROWID;

CREATE TABLE journal (
    location_id   TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    adam_id       TEXT,
    pricing_param TEXT,
    holder        TEXT,
    cause         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,                    -- JSON
    PRIMARY KEY (location_id, seq)
) WITHOUT ROWID;

CREATE INDEX journal_by_asset ON journal (location_id, adam_id, pricing_param, seq)
    WHERE adam_id IS NOT NULL;
CREATE INDEX journal_by_holder ON journal (location_id, holder, seq) WHERE holder IS NOT NULL;
CREATE INDEX journal_by_time ON journal (location_id, at);

CREATE TABLE operations (
    id          TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    request     TEXT NOT NULL,                      -- JSON
    event_id    TEXT,
    status      TEXT NOT NULL,
    result      TEXT,                               -- JSON
    created_at  INTEGER NOT NULL,
    deadline    INTEGER,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX operations_by_event ON operations (location_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX operations_unfinished ON operations (created_at, id)
    WHERE status NOT IN ('complete', 'failed', 'rolled_back');

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL
);

CREATE INDEX notifications_by_time ON notifications (at);

CREATE TABLE policies (
    name       TEXT PRIMARY KEY NOT NULL,
    document   TEXT NOT NULL,                       -- JSON
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE installs (
    location_id   TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    holder        TEXT NOT NULL,
    adam_id       TEXT NOT NULL,
    pricing_param TEXT NOT NULL,
    state         TEXT NOT NULL,
    command_uuid  TEXT,
    detail        TEXT,                             -- JSON
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (location_id, holder, adam_id, pricing_param)
) WITHOUT ROWID;

CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    token       INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
