-- Evaluation: every suite run and each case's result per attempt, stored in one transaction
-- (a run is recorded whole or not at all).
CREATE TABLE eval_runs (
    id              TEXT PRIMARY KEY,
    suite           TEXT NOT NULL,
    -- `ask_acme@v3` for assistant suites; NULL for gateway-only suites.
    prompt_version  TEXT,
    -- The model the run asked for (`--model`), or NULL: each case's own route.
    model           TEXT,
    -- `cli`, `gate` (prompts activate), `schedule`.
    trigger         TEXT NOT NULL,
    repeat          INTEGER NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER NOT NULL,
    cases           INTEGER NOT NULL,
    -- Cases that met the suite's pass rate.
    cases_passed    INTEGER NOT NULL,
    -- Every case met it.
    passed          INTEGER NOT NULL,
    cost_micro_usd  INTEGER NOT NULL
);
CREATE INDEX eval_runs_suite ON eval_runs (suite, started_at_ms);
CREATE TABLE eval_results (
    run_id          TEXT NOT NULL REFERENCES eval_runs (id),
    case_id         TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    pass            INTEGER NOT NULL,
    -- The judge's score or the similarity, when the case has one.
    score           REAL,
    -- The first failing assertion's message.
    failure         TEXT,
    status          TEXT,
    answer          TEXT NOT NULL,
    cost_micro_usd  INTEGER NOT NULL,
    latency_ms      REAL NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (run_id, case_id, attempt)
);
-- Prompt activations: which version of a prompt is live, who made it so and what the gate said.
-- The latest row per prompt wins over `[prompts.active]`; a rollback is a row too.
CREATE TABLE prompt_activations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    -- `activate` (gate passed), `force` (gate overridden), `rollback` (no gate).
    action          TEXT NOT NULL CHECK (action IN ('activate', 'force', 'rollback')),
    actor           TEXT NOT NULL,
    activated_at_ms INTEGER NOT NULL,
    -- What the gate found (`regression 36/36 passed`), or why it was skipped.
    gate            TEXT NOT NULL,
    reason          TEXT
);
CREATE INDEX prompt_activations_name ON prompt_activations (name, id);
-- One rating per answer (a second replaces the first), and who gave it.
DELETE FROM feedback WHERE rowid NOT IN (SELECT MAX(rowid) FROM feedback GROUP BY request_id);
DROP INDEX IF EXISTS feedback_request;
CREATE UNIQUE INDEX feedback_request ON feedback (request_id);
ALTER TABLE feedback ADD COLUMN rater TEXT;
-- Every answer the assistant gave, for production signals (`askacme stats`, human rating
-- samples): the question and answer as stored text is, personal data redacted; how it ended;
-- and what people said after it (a rephrase of it in the same conversation, an escalation to a
-- human).
CREATE TABLE answers (
    request_id      TEXT PRIMARY KEY,
    created_at_ms   INTEGER NOT NULL,
    -- `/v1/ask`, `cli/ask`, `eval/ask` (evaluation runs, left out of production figures).
    endpoint        TEXT NOT NULL,
    key_id          TEXT,
    session_id      TEXT,
    user            TEXT,
    question        TEXT NOT NULL,
    answer          TEXT NOT NULL,
    status          TEXT NOT NULL,
    category        TEXT NOT NULL,
    prompt_version  TEXT NOT NULL,
    model           TEXT,
    -- `miss`, `exact`, `semantic`, `bypass`.
    cache           TEXT NOT NULL,
    cost_micro_usd  INTEGER NOT NULL,
    saved_micro_usd INTEGER NOT NULL,
    latency_ms      REAL NOT NULL,
    rephrased_at_ms INTEGER,
    escalated       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX answers_time ON answers (created_at_ms);
CREATE INDEX answers_session ON answers (session_id, created_at_ms);
CREATE INDEX answers_user ON answers (user, created_at_ms);
-- Human rating: the blinded items of each sample (`askacme eval human sample`) and the ratings
-- imported from the raters' files, one per item and rater (a second import replaces it).
CREATE TABLE human_items (
    item_id         TEXT PRIMARY KEY,
    request_id      TEXT NOT NULL,
    sampled_at_ms   INTEGER NOT NULL
);
CREATE TABLE human_ratings (
    item_id         TEXT NOT NULL REFERENCES human_items (item_id),
    rater           TEXT NOT NULL,
    -- 1–5 (good = 5, bad = 1 when the file used good/bad).
    rating          INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment         TEXT,
    imported_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (item_id, rater)
);
-- Leases for scheduled jobs: with several instances sharing the database, the one holding an
-- unexpired lease runs the job.
CREATE TABLE eval_leases (
    name            TEXT PRIMARY KEY,
    holder          TEXT NOT NULL,
    expires_at_ms   INTEGER NOT NULL
);
