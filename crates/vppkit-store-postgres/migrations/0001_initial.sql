-- vppkit PostgreSQL schema, version 1: every record the Store trait persists.
-- Identifiers and keys that paged reads order by use COLLATE "C" (byte order), as the
-- trait documents. Every record of a location is removed with it (ON DELETE CASCADE).

CREATE TABLE locations (
    id                       text COLLATE "C" PRIMARY KEY,
    name                     text NOT NULL,
    token_sealed             bytea NOT NULL,            -- SecretCipher output, never clear text unless chosen
    token_expires_at         timestamptz NOT NULL,
    token_state              text NOT NULL,
    uid                      text,
    country                  text,
    account_type             text,
    apple_account_name       text,
    mdm_info                 jsonb,
    notification_url         text,
    notification_token_sealed bytea,                    -- SecretCipher output
    notification_types       jsonb,
    service_config           jsonb,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    revision                 bigint NOT NULL CHECK (revision > 0)
);

-- One row per location: the journal's last sequence number (a row lock orders appends).
CREATE TABLE journal_heads (
    location_id text COLLATE "C" PRIMARY KEY REFERENCES locations (id) ON DELETE CASCADE,
    last_seq    bigint NOT NULL DEFAULT 0
);

-- One row per location: sync generation and last outcome.
CREATE TABLE sync_state (
    location_id     text COLLATE "C" PRIMARY KEY REFERENCES locations (id) ON DELETE CASCADE,
    generation      bigint NOT NULL DEFAULT 0,
    outcome_at      timestamptz,
    outcome_success boolean,
    outcome_message text
);

CREATE TABLE sync_cursors (
    location_id text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    endpoint    text COLLATE "C" NOT NULL,
    version_id  text NOT NULL,
    next_page   bigint,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (location_id, endpoint)
);

CREATE TABLE assets (
    location_id       text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    adam_id           text COLLATE "C" NOT NULL,
    pricing_param     text COLLATE "C" NOT NULL,
    product_type      text NOT NULL,
    device_assignable boolean NOT NULL,
    revocable         boolean NOT NULL,
    platforms         jsonb NOT NULL,
    total_count       bigint NOT NULL,
    assigned_count    bigint NOT NULL,
    available_count   bigint NOT NULL,
    retired_count     bigint NOT NULL,
    metadata          jsonb,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (location_id, adam_id, pricing_param)
);

CREATE TABLE holdings (
    location_id         text COLLATE "C" NOT NULL,
    adam_id             text COLLATE "C" NOT NULL,
    pricing_param       text COLLATE "C" NOT NULL,
    holder              text COLLATE "C" NOT NULL,   -- "device:SERIAL" or "user:CLIENT_USER_ID"
    status              text NOT NULL,
    operation_id        text COLLATE "C",
    seen_generation     bigint,                      -- last sync generation that saw it
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (location_id, adam_id, pricing_param, holder)
    -- No foreign key to assets: a per-row check would cost as much as the insert
    -- itself at a million rows. Every write locks the asset rows it refers to
    -- instead, and deleting a location deletes its holdings.
);
CREATE INDEX holdings_by_holder ON holdings (location_id, holder);
CREATE INDEX holdings_by_operation ON holdings (location_id, operation_id)
    WHERE operation_id IS NOT NULL;

CREATE TABLE users (
    location_id      text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    client_user_id   text COLLATE "C" NOT NULL,
    email            text,
    managed_apple_id text,
    invite_code      text,
    id_hash          text,
    status           text NOT NULL,
    managed_by_us    boolean NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (location_id, client_user_id)
);

CREATE TABLE journal (
    location_id   text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    seq           bigint NOT NULL,
    at            timestamptz NOT NULL,
    adam_id       text COLLATE "C",
    pricing_param text COLLATE "C",
    holder        text COLLATE "C",
    cause         text NOT NULL,
    kind          text NOT NULL,
    body          jsonb NOT NULL,
    PRIMARY KEY (location_id, seq)
);
CREATE INDEX journal_by_asset ON journal (location_id, adam_id, pricing_param, seq)
    WHERE adam_id IS NOT NULL;
CREATE INDEX journal_by_holder ON journal (location_id, holder, seq) WHERE holder IS NOT NULL;
CREATE INDEX journal_by_time ON journal (location_id, at);

CREATE TABLE operations (
    id          text COLLATE "C" PRIMARY KEY,
    location_id text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    request     jsonb NOT NULL,
    event_id    text,
    status      text NOT NULL,
    finished    boolean NOT NULL,
    result      jsonb,
    created_at  timestamptz NOT NULL,
    deadline    timestamptz,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX operations_by_location ON operations (location_id, created_at, id);
CREATE INDEX operations_by_event ON operations (location_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX operations_unfinished ON operations (created_at, id) WHERE NOT finished;
CREATE INDEX operations_finished ON operations (updated_at) WHERE finished;

-- Notification ids are unique across locations (Apple mints them).
CREATE TABLE notifications_seen (
    notification_id text COLLATE "C" PRIMARY KEY,
    location_id     text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    seen_at         timestamptz NOT NULL
);
CREATE INDEX notifications_by_location ON notifications_seen (location_id);
CREATE INDEX notifications_seen_at ON notifications_seen (seen_at);

CREATE TABLE policies (
    name       text COLLATE "C" PRIMARY KEY,
    document   jsonb NOT NULL,
    revision   bigint NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE install_status (
    location_id   text COLLATE "C" NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    holder        text COLLATE "C" NOT NULL,
    adam_id       text COLLATE "C" NOT NULL,
    pricing_param text COLLATE "C" NOT NULL,
    state         text NOT NULL,
    command_uuid  text,
    detail        jsonb,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (location_id, holder, adam_id, pricing_param)
);

CREATE TABLE leases (
    name        text COLLATE "C" PRIMARY KEY,
    owner       text NOT NULL,
    token       bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL            -- the Unix epoch once released
);
