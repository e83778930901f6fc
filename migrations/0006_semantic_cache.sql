-- The semantic cache: questions the assistant answered, with their embeddings, each pointing at
-- the exact-cache entry that holds its answer; and every near match the lookup considered, so
-- bad matches can be reviewed (`askacme cache hits --semantic`).
CREATE TABLE IF NOT EXISTS semantic_entries (
    -- Hash of what an answer depends on besides the question (prompt version, knowledge-base
    -- generation, collection, settings): only questions in the same scope can match.
    scope         TEXT NOT NULL,
    question      TEXT NOT NULL,
    embedding     BLOB NOT NULL,
    answer_key    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, question)
);
CREATE TABLE IF NOT EXISTS semantic_hits (
    request_id       TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    question         TEXT NOT NULL,
    matched_question TEXT NOT NULL,
    similarity       REAL NOT NULL,
    -- `served`, or why the guard refused (`numbers differ`, ...).
    decision         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS semantic_hits_time ON semantic_hits (created_at_ms);
