-- The exact response cache, and on each request-log row whether it was served from the cache
-- and what the original answer cost (the money the hit saved).
CREATE TABLE IF NOT EXISTS cache_entries (
    key            TEXT PRIMARY KEY,
    -- `chat` (gateway completions) or `ask` (assistant answers).
    kind           TEXT NOT NULL,
    body           TEXT NOT NULL,
    cost_micro_usd INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at_ms);
ALTER TABLE requests ADD COLUMN cache TEXT;
ALTER TABLE requests ADD COLUMN saved_micro_usd INTEGER NOT NULL DEFAULT 0;
