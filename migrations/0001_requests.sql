-- One row per gateway request. Money is integer micro-dollars; times are milliseconds.
CREATE TABLE IF NOT EXISTS requests (
    id               TEXT PRIMARY KEY,
    created_at_ms    INTEGER NOT NULL,
    key_id           TEXT,
    endpoint         TEXT NOT NULL,
    requested_model  TEXT NOT NULL,
    deployment       TEXT,
    provider         TEXT,
    stream           INTEGER NOT NULL,
    prompt_tokens    INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens    INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micro_usd   INTEGER NOT NULL,
    latency_ms       REAL NOT NULL,
    provider_latency_ms REAL NOT NULL,
    status           TEXT NOT NULL,
    http_status      INTEGER NOT NULL,
    error            TEXT
);
CREATE INDEX IF NOT EXISTS requests_created_at ON requests (created_at_ms);
