-- Retrieval: each chunk's embedding (little-endian f32, unit length) and the knowledge base's
-- generation, a counter every document change bumps in the same transaction, so a search
-- index built from generation N knows it is stale once the counter moves.
ALTER TABLE chunks ADD COLUMN embedding BLOB;
CREATE TABLE IF NOT EXISTS kb_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO kb_meta (key, value) VALUES ('generation', '0');
CREATE TRIGGER IF NOT EXISTS documents_inserted AFTER INSERT ON documents BEGIN
    UPDATE kb_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS documents_deleted AFTER DELETE ON documents BEGIN
    UPDATE kb_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
-- The assistant's prompt (name@version) on every request it makes.
ALTER TABLE requests ADD COLUMN prompt_version TEXT;
