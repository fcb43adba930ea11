-- Version 3: documents, one row each, replace the policies table (which the
-- engine and the manager used as named JSON documents). The engine keeps its
-- own state here: desired-state revisions, the MDM command outbox, pending
-- releases, self-service requests and "needs a sync" marks.

CREATE TABLE documents (
    collection  TEXT NOT NULL,
    key         TEXT NOT NULL,
    tag         TEXT,
    location_id TEXT REFERENCES locations (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    due_at      INTEGER,
    body        TEXT NOT NULL,                      -- JSON
    revision    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (collection, key)
);

CREATE INDEX documents_by_status ON documents (collection, status, due_at);
CREATE INDEX documents_by_tag ON documents (collection, tag) WHERE tag IS NOT NULL;
CREATE INDEX documents_by_location ON documents (location_id) WHERE location_id IS NOT NULL;

-- The manager example's documents keep their name under its collection; any
-- other stored policy is kept under a collection of its own.
INSERT INTO documents (collection, key, status, body, revision, updated_at)
SELECT CASE WHEN name LIKE 'vppkit-manager/%' THEN 'vppkit-manager' ELSE 'vppkit-store/policies' END,
       CASE WHEN name LIKE 'vppkit-manager/%' THEN substr(name, 16) ELSE name END,
       'stored', document, revision, updated_at
FROM policies;

DROP TABLE policies;
