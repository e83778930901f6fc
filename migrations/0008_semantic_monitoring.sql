-- Monitoring the semantic cache: each near match remembers its scope (so `askacme cache forget`
-- can remove the entry it matched) and the conversation it was in (so a rephrase can flag it);
-- a thumbs-down or a rephrase flags a served match, with the reason. Feedback on answers is kept.
ALTER TABLE semantic_hits ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE semantic_hits ADD COLUMN session_id TEXT;
ALTER TABLE semantic_hits ADD COLUMN flagged_at_ms INTEGER;
ALTER TABLE semantic_hits ADD COLUMN flag_reason TEXT;
CREATE INDEX IF NOT EXISTS semantic_hits_request ON semantic_hits (request_id);
CREATE INDEX IF NOT EXISTS semantic_hits_session ON semantic_hits (session_id, created_at_ms);
CREATE TABLE IF NOT EXISTS feedback (
    request_id    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    rating        TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment       TEXT,
    escalated     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
