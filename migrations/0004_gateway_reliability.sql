-- Gateway reliability: how many upstream calls a request took and the routing decision, and the
-- virtual API keys with their limits and spend. A key's spend is booked in the transaction that
-- writes the request's log row, so the log and the spend can never disagree.
ALTER TABLE requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN route TEXT;
-- Budget held for the request before its upstream call, released when its row is written.
ALTER TABLE requests ADD COLUMN held_micro_usd INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS api_keys (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    -- SHA-256 of the key: keys are 128 random bits, so a fast hash is enough to make a leaked
    -- database useless for calling the API.
    key_hash           TEXT NOT NULL UNIQUE,
    -- The first characters, so people can tell their keys apart in `askacme keys list`.
    key_prefix         TEXT NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    revoked_at_ms      INTEGER,
    rpm                INTEGER,
    tpm                INTEGER,
    budget_micro_usd   INTEGER,
    spent_micro_usd    INTEGER NOT NULL DEFAULT 0,
    -- Cost held for requests in flight: a request reserves its worst-case cost before it is
    -- sent, so concurrent requests cannot together overrun the budget.
    reserved_micro_usd INTEGER NOT NULL DEFAULT 0,
    -- Comma-separated aliases/deployments the key may use; NULL means all.
    models             TEXT
);
