-- Safety guards: which guard refused a request (`input:instruction_override`,
-- `output:pii_leak`, `guardrail strict:input:pii`) with its score, and how many personal values
-- were redacted from it before it was stored or sent on.
ALTER TABLE requests ADD COLUMN guard TEXT;
ALTER TABLE requests ADD COLUMN redactions INTEGER NOT NULL DEFAULT 0;
-- Knowledge-base chunks that carry instructions aimed at a model (indirect prompt injection),
-- flagged at ingest with the reason; `askacme kb flagged` lists them.
ALTER TABLE chunks ADD COLUMN flagged TEXT;
-- Chunks written before this migration were never checked: forgetting the documents' hashes
-- makes the next ingest re-read (and check) every document.
UPDATE documents SET content_sha256 = '';
