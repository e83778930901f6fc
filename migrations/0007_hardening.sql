-- Budget holds with their request and expiry. A hold is released by the transaction that writes
-- its request's log row, or, if that row never comes (a crash, a kill -9, a lost write), once it
-- expires at the request's deadline. `api_keys.reserved_micro_usd` stays the sum of a key's
-- holds, so the budget check remains one conditional UPDATE.
CREATE TABLE IF NOT EXISTS budget_holds (
    request_id    TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    amount        INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_holds_expiry ON budget_holds (expires_at_ms);
CREATE INDEX IF NOT EXISTS budget_holds_key ON budget_holds (key_id);
-- The key's reserved amount follows its holds inside the statement that adds or removes one, so
-- a reservation stays a single (conditional) statement and a hold can be released only once.
CREATE TRIGGER IF NOT EXISTS budget_hold_taken AFTER INSERT ON budget_holds BEGIN
    UPDATE api_keys SET reserved_micro_usd = reserved_micro_usd + NEW.amount WHERE id = NEW.key_id;
END;
CREATE TRIGGER IF NOT EXISTS budget_hold_released AFTER DELETE ON budget_holds BEGIN
    UPDATE api_keys SET reserved_micro_usd = MAX(0, reserved_micro_usd - OLD.amount)
    WHERE id = OLD.key_id;
END;
-- Holds taken before this migration have no row to expire by; they can only be leaks.
UPDATE api_keys SET reserved_micro_usd = 0;
-- Who asked, for per-user and per-conversation figures (`/v1/ask`'s `user` and `session_id`,
-- the gateway's `user`), and whether the token counts are the gateway's own estimate because
-- the provider never reported usage (a stream cut or cancelled before its usage chunk).
ALTER TABLE requests ADD COLUMN session_id TEXT;
ALTER TABLE requests ADD COLUMN user TEXT;
ALTER TABLE requests ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
