-- Monitoring the semantic cache: each near match gets a stable id (for `askacme cache forget`;
-- a rowid may change on VACUUM), remembers its scope (so a forget can remove the entry it
-- matched) and its conversation (so a rephrase can flag it); a thumbs-down or a rephrase flags a
-- served match, with the reason; a forgotten question stays out of its scope's semantic cache.
-- Feedback on answers is kept.
CREATE TABLE semantic_hits_v2 (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id       TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    scope            TEXT NOT NULL DEFAULT '',
    session_id       TEXT,
    question         TEXT NOT NULL,
    matched_question TEXT NOT NULL,
    similarity       REAL NOT NULL,
    -- `served`, `answer expired` (served, but its answer had left the exact cache), or why
    -- the guard refused (`numbers differ`, `unmatched word: …`).
    decision         TEXT NOT NULL,
    flagged_at_ms    INTEGER,
    flag_reason      TEXT
);
INSERT INTO semantic_hits_v2 (request_id, created_at_ms, question, matched_question, similarity,
    decision)
    SELECT request_id, created_at_ms, question, matched_question, similarity, decision
    FROM semantic_hits ORDER BY rowid;
DROP TABLE semantic_hits;
ALTER TABLE semantic_hits_v2 RENAME TO semantic_hits;
CREATE INDEX semantic_hits_time ON semantic_hits (created_at_ms);
CREATE INDEX semantic_hits_request ON semantic_hits (request_id);
CREATE INDEX semantic_hits_session ON semantic_hits (session_id, created_at_ms);
-- Questions `askacme cache forget` took out of a scope's semantic cache: answered again later,
-- they are not offered to similar questions again.
CREATE TABLE IF NOT EXISTS semantic_forgotten (
    scope         TEXT NOT NULL,
    question      TEXT NOT NULL,
    forgotten_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, question)
);
CREATE TABLE IF NOT EXISTS feedback (
    request_id    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    rating        TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment       TEXT,
    escalated     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
