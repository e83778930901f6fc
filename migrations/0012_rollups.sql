-- Hourly sums (daily, for the questions) that the admin dashboard and `askacme stats` read instead
-- of the raw rows, so that a page costs about the same over a million rows as over a thousand.
-- Triggers keep them in the same transaction as every write to `answers`, `feedback` and
-- `requests`; a window's first, partial hour (day) is read from the raw rows. Evaluation runs
-- (`eval/…` endpoints) are left out, as in every production figure.
--
-- Latencies are cumulative histograms: `le_X` counts what took at most X ms, X running over
-- 1, 1.5, 2, 3, 5 and 7 in each decade from 0.1 ms to 70 s (`p` is the decimal point); the
-- bounds are `store::rollup::LATENCY_BOUNDS_MS`.

CREATE TABLE answer_rollup (
    -- created_at_ms / 3,600,000: the UTC hour.
    hour            INTEGER NOT NULL,
    model           TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    prompt_version  TEXT NOT NULL,
    category        TEXT NOT NULL,
    answers         INTEGER NOT NULL DEFAULT 0,
    success         INTEGER NOT NULL DEFAULT 0,
    no_answer       INTEGER NOT NULL DEFAULT 0,
    filtered        INTEGER NOT NULL DEFAULT 0,
    output_filtered INTEGER NOT NULL DEFAULT 0,
    thumbs_up       INTEGER NOT NULL DEFAULT 0,
    thumbs_down     INTEGER NOT NULL DEFAULT 0,
    rephrased       INTEGER NOT NULL DEFAULT 0,
    escalated       INTEGER NOT NULL DEFAULT 0,
    exact_hits      INTEGER NOT NULL DEFAULT 0,
    semantic_hits   INTEGER NOT NULL DEFAULT 0,
    cost_micro_usd  INTEGER NOT NULL DEFAULT 0,
    saved_micro_usd INTEGER NOT NULL DEFAULT 0,
    le_0p1 INTEGER NOT NULL DEFAULT 0, le_0p15 INTEGER NOT NULL DEFAULT 0,
    le_0p2 INTEGER NOT NULL DEFAULT 0, le_0p3 INTEGER NOT NULL DEFAULT 0,
    le_0p5 INTEGER NOT NULL DEFAULT 0, le_0p7 INTEGER NOT NULL DEFAULT 0,
    le_1 INTEGER NOT NULL DEFAULT 0, le_1p5 INTEGER NOT NULL DEFAULT 0,
    le_2 INTEGER NOT NULL DEFAULT 0, le_3 INTEGER NOT NULL DEFAULT 0,
    le_5 INTEGER NOT NULL DEFAULT 0, le_7 INTEGER NOT NULL DEFAULT 0,
    le_10 INTEGER NOT NULL DEFAULT 0, le_15 INTEGER NOT NULL DEFAULT 0,
    le_20 INTEGER NOT NULL DEFAULT 0, le_30 INTEGER NOT NULL DEFAULT 0,
    le_50 INTEGER NOT NULL DEFAULT 0, le_70 INTEGER NOT NULL DEFAULT 0,
    le_100 INTEGER NOT NULL DEFAULT 0, le_150 INTEGER NOT NULL DEFAULT 0,
    le_200 INTEGER NOT NULL DEFAULT 0, le_300 INTEGER NOT NULL DEFAULT 0,
    le_500 INTEGER NOT NULL DEFAULT 0, le_700 INTEGER NOT NULL DEFAULT 0,
    le_1000 INTEGER NOT NULL DEFAULT 0, le_1500 INTEGER NOT NULL DEFAULT 0,
    le_2000 INTEGER NOT NULL DEFAULT 0, le_3000 INTEGER NOT NULL DEFAULT 0,
    le_5000 INTEGER NOT NULL DEFAULT 0, le_7000 INTEGER NOT NULL DEFAULT 0,
    le_10000 INTEGER NOT NULL DEFAULT 0, le_15000 INTEGER NOT NULL DEFAULT 0,
    le_20000 INTEGER NOT NULL DEFAULT 0, le_30000 INTEGER NOT NULL DEFAULT 0,
    le_50000 INTEGER NOT NULL DEFAULT 0, le_70000 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, model, key_id, prompt_version, category)
);

CREATE TABLE stage_rollup (
    hour    INTEGER NOT NULL,
    stage   TEXT NOT NULL,
    answers INTEGER NOT NULL,
    le_0p1 INTEGER NOT NULL, le_0p15 INTEGER NOT NULL, le_0p2 INTEGER NOT NULL,
    le_0p3 INTEGER NOT NULL, le_0p5 INTEGER NOT NULL, le_0p7 INTEGER NOT NULL,
    le_1 INTEGER NOT NULL, le_1p5 INTEGER NOT NULL, le_2 INTEGER NOT NULL,
    le_3 INTEGER NOT NULL, le_5 INTEGER NOT NULL, le_7 INTEGER NOT NULL,
    le_10 INTEGER NOT NULL, le_15 INTEGER NOT NULL, le_20 INTEGER NOT NULL,
    le_30 INTEGER NOT NULL, le_50 INTEGER NOT NULL, le_70 INTEGER NOT NULL,
    le_100 INTEGER NOT NULL, le_150 INTEGER NOT NULL, le_200 INTEGER NOT NULL,
    le_300 INTEGER NOT NULL, le_500 INTEGER NOT NULL, le_700 INTEGER NOT NULL,
    le_1000 INTEGER NOT NULL, le_1500 INTEGER NOT NULL, le_2000 INTEGER NOT NULL,
    le_3000 INTEGER NOT NULL, le_5000 INTEGER NOT NULL, le_7000 INTEGER NOT NULL,
    le_10000 INTEGER NOT NULL, le_15000 INTEGER NOT NULL, le_20000 INTEGER NOT NULL,
    le_30000 INTEGER NOT NULL, le_50000 INTEGER NOT NULL, le_70000 INTEGER NOT NULL,
    PRIMARY KEY (hour, stage)
);

-- Questions folded by case and surrounding space; `question` is the first spelling (MIN).
CREATE TABLE question_rollup (
    -- created_at_ms / 86,400,000: the UTC day.
    day          INTEGER NOT NULL,
    status       TEXT NOT NULL,
    question_key TEXT NOT NULL,
    question     TEXT NOT NULL,
    answers      INTEGER NOT NULL,
    PRIMARY KEY (day, status, question_key)
);

-- Gateway calls (the assistant's included) per hour and requested model.
CREATE TABLE request_rollup (
    hour           INTEGER NOT NULL,
    model          TEXT NOT NULL,
    requests       INTEGER NOT NULL,
    cost_micro_usd INTEGER NOT NULL,
    PRIMARY KEY (hour, model)
);

-- What one production answer adds to `answer_rollup`, split into the answer's own part and its
-- feedback's part (thumbs, and an escalation the answer did not already carry), because the two
-- rows change apart; `escalated` is the two together, for reading the raw rows.
CREATE VIEW answer_facts AS
SELECT a.request_id, a.created_at_ms, a.created_at_ms / 3600000 AS hour,
    COALESCE(a.model, '(none)') AS model, COALESCE(a.key_id, '(none)') AS key_id,
    a.prompt_version, a.category, 1 AS answers,
    a.status = 'success' AS success, a.status = 'no_answer' AS no_answer,
    a.status = 'filtered' AS filtered, a.status = 'output_filtered' AS output_filtered,
    COALESCE(f.rating = 'up', 0) AS thumbs_up, COALESCE(f.rating = 'down', 0) AS thumbs_down,
    a.rephrased_at_ms IS NOT NULL AS rephrased, a.escalated AS own_escalated,
    COALESCE(f.escalated, 0) AND NOT a.escalated AS feedback_escalated,
    a.escalated OR COALESCE(f.escalated, 0) AS escalated,
    a.cache = 'exact' AS exact_hits, a.cache = 'semantic' AS semantic_hits,
    a.cost_micro_usd, a.saved_micro_usd,
    a.latency_ms <= 0.1 AS le_0p1, a.latency_ms <= 0.15 AS le_0p15,
    a.latency_ms <= 0.2 AS le_0p2, a.latency_ms <= 0.3 AS le_0p3,
    a.latency_ms <= 0.5 AS le_0p5, a.latency_ms <= 0.7 AS le_0p7, a.latency_ms <= 1 AS le_1,
    a.latency_ms <= 1.5 AS le_1p5, a.latency_ms <= 2 AS le_2, a.latency_ms <= 3 AS le_3,
    a.latency_ms <= 5 AS le_5, a.latency_ms <= 7 AS le_7, a.latency_ms <= 10 AS le_10,
    a.latency_ms <= 15 AS le_15, a.latency_ms <= 20 AS le_20, a.latency_ms <= 30 AS le_30,
    a.latency_ms <= 50 AS le_50, a.latency_ms <= 70 AS le_70, a.latency_ms <= 100 AS le_100,
    a.latency_ms <= 150 AS le_150, a.latency_ms <= 200 AS le_200,
    a.latency_ms <= 300 AS le_300, a.latency_ms <= 500 AS le_500,
    a.latency_ms <= 700 AS le_700, a.latency_ms <= 1000 AS le_1000,
    a.latency_ms <= 1500 AS le_1500, a.latency_ms <= 2000 AS le_2000,
    a.latency_ms <= 3000 AS le_3000, a.latency_ms <= 5000 AS le_5000,
    a.latency_ms <= 7000 AS le_7000, a.latency_ms <= 10000 AS le_10000,
    a.latency_ms <= 15000 AS le_15000, a.latency_ms <= 20000 AS le_20000,
    a.latency_ms <= 30000 AS le_30000, a.latency_ms <= 50000 AS le_50000,
    a.latency_ms <= 70000 AS le_70000
FROM answers a LEFT JOIN feedback f ON f.request_id = a.request_id
WHERE a.endpoint NOT LIKE 'eval/%';

-- Each production answer's stage latencies (a JSON object of milliseconds), one row per stage.
CREATE VIEW stage_facts AS
SELECT a.request_id, a.created_at_ms, a.created_at_ms / 3600000 AS hour, j.key AS stage,
    j.value <= 0.1 AS le_0p1, j.value <= 0.15 AS le_0p15, j.value <= 0.2 AS le_0p2,
    j.value <= 0.3 AS le_0p3, j.value <= 0.5 AS le_0p5, j.value <= 0.7 AS le_0p7,
    j.value <= 1 AS le_1, j.value <= 1.5 AS le_1p5, j.value <= 2 AS le_2, j.value <= 3 AS le_3,
    j.value <= 5 AS le_5, j.value <= 7 AS le_7, j.value <= 10 AS le_10, j.value <= 15 AS le_15,
    j.value <= 20 AS le_20, j.value <= 30 AS le_30, j.value <= 50 AS le_50,
    j.value <= 70 AS le_70, j.value <= 100 AS le_100, j.value <= 150 AS le_150,
    j.value <= 200 AS le_200, j.value <= 300 AS le_300, j.value <= 500 AS le_500,
    j.value <= 700 AS le_700, j.value <= 1000 AS le_1000, j.value <= 1500 AS le_1500,
    j.value <= 2000 AS le_2000, j.value <= 3000 AS le_3000, j.value <= 5000 AS le_5000,
    j.value <= 7000 AS le_7000, j.value <= 10000 AS le_10000, j.value <= 15000 AS le_15000,
    j.value <= 20000 AS le_20000, j.value <= 30000 AS le_30000, j.value <= 50000 AS le_50000,
    j.value <= 70000 AS le_70000
FROM answers a, json_each(CASE WHEN json_valid(a.stage_latency_json)
    THEN CASE WHEN json_type(a.stage_latency_json) = 'object' THEN a.stage_latency_json END END) j
WHERE a.endpoint NOT LIKE 'eval/%' AND j.type IN ('integer', 'real') AND j.value > 0;

-- A signed change: inserting (sign, request_id, part) adds (sign 1) or takes away (sign -1) what
-- the answer's own row (`part` 'answer') or its feedback (`part` 'feedback') contributes, as
-- the tables stand when the row is inserted. Nothing is stored in the view itself.
CREATE VIEW rollup_change AS SELECT 0 AS sign, '' AS request_id, '' AS part WHERE 0;

CREATE TRIGGER rollup_change_apply INSTEAD OF INSERT ON rollup_change BEGIN
    -- The answer's own part.
    INSERT INTO answer_rollup (hour, model, key_id, prompt_version, category, answers,
        success, no_answer, filtered, output_filtered, rephrased, escalated, exact_hits,
        semantic_hits, cost_micro_usd, saved_micro_usd, le_0p1, le_0p15, le_0p2, le_0p3,
        le_0p5, le_0p7, le_1, le_1p5, le_2, le_3, le_5, le_7, le_10, le_15, le_20, le_30,
        le_50, le_70, le_100, le_150, le_200, le_300, le_500, le_700, le_1000, le_1500,
        le_2000, le_3000, le_5000, le_7000, le_10000, le_15000, le_20000, le_30000, le_50000,
        le_70000)
    SELECT hour, model, key_id, prompt_version, category, NEW.sign * answers, NEW.sign * success,
        NEW.sign * no_answer, NEW.sign * filtered, NEW.sign * output_filtered,
        NEW.sign * rephrased, NEW.sign * own_escalated, NEW.sign * exact_hits,
        NEW.sign * semantic_hits, NEW.sign * cost_micro_usd, NEW.sign * saved_micro_usd,
        NEW.sign * le_0p1, NEW.sign * le_0p15, NEW.sign * le_0p2, NEW.sign * le_0p3,
        NEW.sign * le_0p5, NEW.sign * le_0p7, NEW.sign * le_1, NEW.sign * le_1p5,
        NEW.sign * le_2, NEW.sign * le_3, NEW.sign * le_5, NEW.sign * le_7, NEW.sign * le_10,
        NEW.sign * le_15, NEW.sign * le_20, NEW.sign * le_30, NEW.sign * le_50,
        NEW.sign * le_70, NEW.sign * le_100, NEW.sign * le_150, NEW.sign * le_200,
        NEW.sign * le_300, NEW.sign * le_500, NEW.sign * le_700, NEW.sign * le_1000,
        NEW.sign * le_1500, NEW.sign * le_2000, NEW.sign * le_3000, NEW.sign * le_5000,
        NEW.sign * le_7000, NEW.sign * le_10000, NEW.sign * le_15000, NEW.sign * le_20000,
        NEW.sign * le_30000, NEW.sign * le_50000, NEW.sign * le_70000
    FROM answer_facts WHERE request_id = NEW.request_id AND NEW.part = 'answer'
    ON CONFLICT (hour, model, key_id, prompt_version, category) DO UPDATE SET
        answers = answers + excluded.answers, success = success + excluded.success,
        no_answer = no_answer + excluded.no_answer, filtered = filtered + excluded.filtered,
        output_filtered = output_filtered + excluded.output_filtered,
        rephrased = rephrased + excluded.rephrased, escalated = escalated + excluded.escalated,
        exact_hits = exact_hits + excluded.exact_hits,
        semantic_hits = semantic_hits + excluded.semantic_hits,
        cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd,
        saved_micro_usd = saved_micro_usd + excluded.saved_micro_usd,
        le_0p1 = le_0p1 + excluded.le_0p1, le_0p15 = le_0p15 + excluded.le_0p15,
        le_0p2 = le_0p2 + excluded.le_0p2, le_0p3 = le_0p3 + excluded.le_0p3,
        le_0p5 = le_0p5 + excluded.le_0p5, le_0p7 = le_0p7 + excluded.le_0p7,
        le_1 = le_1 + excluded.le_1, le_1p5 = le_1p5 + excluded.le_1p5,
        le_2 = le_2 + excluded.le_2, le_3 = le_3 + excluded.le_3, le_5 = le_5 + excluded.le_5,
        le_7 = le_7 + excluded.le_7, le_10 = le_10 + excluded.le_10,
        le_15 = le_15 + excluded.le_15, le_20 = le_20 + excluded.le_20,
        le_30 = le_30 + excluded.le_30, le_50 = le_50 + excluded.le_50,
        le_70 = le_70 + excluded.le_70, le_100 = le_100 + excluded.le_100,
        le_150 = le_150 + excluded.le_150, le_200 = le_200 + excluded.le_200,
        le_300 = le_300 + excluded.le_300, le_500 = le_500 + excluded.le_500,
        le_700 = le_700 + excluded.le_700, le_1000 = le_1000 + excluded.le_1000,
        le_1500 = le_1500 + excluded.le_1500, le_2000 = le_2000 + excluded.le_2000,
        le_3000 = le_3000 + excluded.le_3000, le_5000 = le_5000 + excluded.le_5000,
        le_7000 = le_7000 + excluded.le_7000, le_10000 = le_10000 + excluded.le_10000,
        le_15000 = le_15000 + excluded.le_15000, le_20000 = le_20000 + excluded.le_20000,
        le_30000 = le_30000 + excluded.le_30000, le_50000 = le_50000 + excluded.le_50000,
        le_70000 = le_70000 + excluded.le_70000;
    -- Its feedback's part.
    INSERT INTO answer_rollup (hour, model, key_id, prompt_version, category, thumbs_up,
        thumbs_down, escalated)
    SELECT hour, model, key_id, prompt_version, category, NEW.sign * thumbs_up,
        NEW.sign * thumbs_down, NEW.sign * feedback_escalated
    FROM answer_facts WHERE request_id = NEW.request_id AND NEW.part = 'feedback'
    AND thumbs_up + thumbs_down > 0
    ON CONFLICT (hour, model, key_id, prompt_version, category) DO UPDATE SET
        thumbs_up = thumbs_up + excluded.thumbs_up,
        thumbs_down = thumbs_down + excluded.thumbs_down,
        escalated = escalated + excluded.escalated;
    INSERT INTO stage_rollup (hour, stage, answers, le_0p1, le_0p15, le_0p2, le_0p3,
        le_0p5, le_0p7, le_1, le_1p5, le_2, le_3, le_5, le_7, le_10, le_15, le_20, le_30,
        le_50, le_70, le_100, le_150, le_200, le_300, le_500, le_700, le_1000, le_1500,
        le_2000, le_3000, le_5000, le_7000, le_10000, le_15000, le_20000, le_30000, le_50000,
        le_70000)
    SELECT hour, stage, NEW.sign, NEW.sign * le_0p1, NEW.sign * le_0p15, NEW.sign * le_0p2,
        NEW.sign * le_0p3, NEW.sign * le_0p5, NEW.sign * le_0p7, NEW.sign * le_1,
        NEW.sign * le_1p5, NEW.sign * le_2, NEW.sign * le_3, NEW.sign * le_5, NEW.sign * le_7,
        NEW.sign * le_10, NEW.sign * le_15, NEW.sign * le_20, NEW.sign * le_30,
        NEW.sign * le_50, NEW.sign * le_70, NEW.sign * le_100, NEW.sign * le_150,
        NEW.sign * le_200, NEW.sign * le_300, NEW.sign * le_500, NEW.sign * le_700,
        NEW.sign * le_1000, NEW.sign * le_1500, NEW.sign * le_2000, NEW.sign * le_3000,
        NEW.sign * le_5000, NEW.sign * le_7000, NEW.sign * le_10000, NEW.sign * le_15000,
        NEW.sign * le_20000, NEW.sign * le_30000, NEW.sign * le_50000, NEW.sign * le_70000
    FROM stage_facts WHERE request_id = NEW.request_id AND NEW.part = 'answer'
    ON CONFLICT (hour, stage) DO UPDATE SET answers = answers + excluded.answers,
        le_0p1 = le_0p1 + excluded.le_0p1, le_0p15 = le_0p15 + excluded.le_0p15,
        le_0p2 = le_0p2 + excluded.le_0p2, le_0p3 = le_0p3 + excluded.le_0p3,
        le_0p5 = le_0p5 + excluded.le_0p5, le_0p7 = le_0p7 + excluded.le_0p7,
        le_1 = le_1 + excluded.le_1, le_1p5 = le_1p5 + excluded.le_1p5,
        le_2 = le_2 + excluded.le_2, le_3 = le_3 + excluded.le_3, le_5 = le_5 + excluded.le_5,
        le_7 = le_7 + excluded.le_7, le_10 = le_10 + excluded.le_10,
        le_15 = le_15 + excluded.le_15, le_20 = le_20 + excluded.le_20,
        le_30 = le_30 + excluded.le_30, le_50 = le_50 + excluded.le_50,
        le_70 = le_70 + excluded.le_70, le_100 = le_100 + excluded.le_100,
        le_150 = le_150 + excluded.le_150, le_200 = le_200 + excluded.le_200,
        le_300 = le_300 + excluded.le_300, le_500 = le_500 + excluded.le_500,
        le_700 = le_700 + excluded.le_700, le_1000 = le_1000 + excluded.le_1000,
        le_1500 = le_1500 + excluded.le_1500, le_2000 = le_2000 + excluded.le_2000,
        le_3000 = le_3000 + excluded.le_3000, le_5000 = le_5000 + excluded.le_5000,
        le_7000 = le_7000 + excluded.le_7000, le_10000 = le_10000 + excluded.le_10000,
        le_15000 = le_15000 + excluded.le_15000, le_20000 = le_20000 + excluded.le_20000,
        le_30000 = le_30000 + excluded.le_30000, le_50000 = le_50000 + excluded.le_50000,
        le_70000 = le_70000 + excluded.le_70000;
    INSERT INTO question_rollup (day, status, question_key, question, answers)
    SELECT created_at_ms / 86400000, status, lower(trim(question)), question, NEW.sign
    FROM answers WHERE request_id = NEW.request_id AND NEW.part = 'answer'
    AND endpoint NOT LIKE 'eval/%'
    ON CONFLICT (day, status, question_key) DO UPDATE SET
        answers = answers + excluded.answers, question = MIN(question, excluded.question);
END;

-- Take a row's part away before it changes or goes, add it back once changed or new. The feedback
-- part is grouped by its answer and depends on the answer's escalation, so a change to the
-- answer moves both parts; it exists while both rows do. (No BEFORE INSERT on feedback: an
-- upsert that turns into an update fires it as well as the UPDATE pair.) The application writes
-- answers with an upsert; a REPLACE from elsewhere fires the delete triggers only on
-- connections that set `recursive_triggers`, as the application's do.
CREATE TRIGGER answers_rollup_insert AFTER INSERT ON answers BEGIN
    INSERT INTO rollup_change
        VALUES (1, NEW.request_id, 'answer'), (1, NEW.request_id, 'feedback');
END;
CREATE TRIGGER answers_rollup_before_update BEFORE UPDATE ON answers BEGIN
    INSERT INTO rollup_change
        VALUES (-1, OLD.request_id, 'answer'), (-1, OLD.request_id, 'feedback');
END;
CREATE TRIGGER answers_rollup_after_update AFTER UPDATE ON answers BEGIN
    INSERT INTO rollup_change
        VALUES (1, NEW.request_id, 'answer'), (1, NEW.request_id, 'feedback');
END;
CREATE TRIGGER answers_rollup_delete BEFORE DELETE ON answers BEGIN
    INSERT INTO rollup_change
        VALUES (-1, OLD.request_id, 'answer'), (-1, OLD.request_id, 'feedback');
END;
CREATE TRIGGER feedback_rollup_insert AFTER INSERT ON feedback BEGIN
    INSERT INTO rollup_change VALUES (1, NEW.request_id, 'feedback');
END;
CREATE TRIGGER feedback_rollup_before_update BEFORE UPDATE ON feedback BEGIN
    INSERT INTO rollup_change VALUES (-1, OLD.request_id, 'feedback');
END;
CREATE TRIGGER feedback_rollup_after_update AFTER UPDATE ON feedback BEGIN
    INSERT INTO rollup_change VALUES (1, NEW.request_id, 'feedback');
END;
CREATE TRIGGER feedback_rollup_delete BEFORE DELETE ON feedback BEGIN
    INSERT INTO rollup_change VALUES (-1, OLD.request_id, 'feedback');
END;

CREATE TRIGGER requests_rollup_insert AFTER INSERT ON requests BEGIN
    INSERT INTO request_rollup (hour, model, requests, cost_micro_usd)
    VALUES (NEW.created_at_ms / 3600000, NEW.requested_model, 1, NEW.cost_micro_usd)
    ON CONFLICT (hour, model) DO UPDATE SET requests = requests + 1,
        cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd;
END;
CREATE TRIGGER requests_rollup_delete BEFORE DELETE ON requests BEGIN
    UPDATE request_rollup SET requests = requests - 1,
        cost_micro_usd = cost_micro_usd - OLD.cost_micro_usd
    WHERE hour = OLD.created_at_ms / 3600000 AND model = OLD.requested_model;
END;
CREATE TRIGGER requests_rollup_update AFTER UPDATE OF created_at_ms, requested_model,
    cost_micro_usd ON requests BEGIN
    UPDATE request_rollup SET requests = requests - 1,
        cost_micro_usd = cost_micro_usd - OLD.cost_micro_usd
    WHERE hour = OLD.created_at_ms / 3600000 AND model = OLD.requested_model;
    INSERT INTO request_rollup (hour, model, requests, cost_micro_usd)
    VALUES (NEW.created_at_ms / 3600000, NEW.requested_model, 1, NEW.cost_micro_usd)
    ON CONFLICT (hour, model) DO UPDATE SET requests = requests + 1,
        cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd;
END;

-- What was recorded before this migration.
INSERT INTO rollup_change SELECT 1, request_id, 'answer' FROM answers;
INSERT INTO rollup_change SELECT 1, request_id, 'feedback' FROM feedback;
INSERT INTO request_rollup (hour, model, requests, cost_micro_usd)
SELECT created_at_ms / 3600000, requested_model, COUNT(*), SUM(cost_micro_usd)
FROM requests GROUP BY 1, 2;
