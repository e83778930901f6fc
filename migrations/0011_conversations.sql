-- Conversations and the dashboard. A follow-up ("and for part-timers?") is answered as the
-- standalone question it was rewritten into, kept beside what the person typed (NULL when the
-- question stood alone). Each answer's per-stage latencies (JSON object of milliseconds) feed
-- the dashboard's percentiles per stage.
ALTER TABLE answers ADD COLUMN standalone TEXT;
ALTER TABLE answers ADD COLUMN stage_latency_json TEXT;
-- The dashboard's top questions and knowledge gaps group by question within a window.
CREATE INDEX answers_status_time ON answers (status, created_at_ms);
