-- Knowledge base: one row per ingested file, its chunks in order. A document is identified by
-- the root it was ingested from and its path below that root.
CREATE TABLE IF NOT EXISTS documents (
    id             INTEGER PRIMARY KEY,
    root           TEXT NOT NULL,
    path           TEXT NOT NULL,
    collection     TEXT NOT NULL,
    title          TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    bytes          INTEGER NOT NULL,
    ingested_at_ms INTEGER NOT NULL,
    UNIQUE (root, path)
);
CREATE TABLE IF NOT EXISTS chunks (
    id           INTEGER PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    heading_path TEXT NOT NULL,
    text         TEXT NOT NULL,
    span_start   INTEGER NOT NULL,
    span_end     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (document_id);
