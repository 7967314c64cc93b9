-- trustwatch store, version 4: scheduled reports and dashboard sessions
-- (issue 7). Timestamps are unix milliseconds (UTC). Plain SQL, portable
-- to PostgreSQL.

-- The state of each `[[reports]]` schedule, shared by every server
-- process on the store, so that replicas never fire a slot twice and a
-- restart catches up once. A slot is claimed by moving `last_slot`
-- forward with a compare-and-set update: whoever's update changes the
-- row fires.
CREATE TABLE report_schedules (
    name        TEXT PRIMARY KEY,   -- `[[reports]] name`
    schedule    TEXT NOT NULL,      -- the cron text when last claimed (informative)
    last_slot   BIGINT NOT NULL,    -- the latest slot handled: fired, or the baseline when first seen
    fired_slot  BIGINT,             -- the latest slot that fired; NULL: none yet
    fired_at    BIGINT,             -- when that slot was claimed
    fired_by    TEXT,               -- the claim (UUIDv7) of the process that fired it
    status      TEXT CHECK (status IN ('running', 'ok', 'error')),
    detail      TEXT                -- files written, or the error
);

-- Dashboard logins: only the SHA-256 of the session cookie is kept, with
-- the API key it was opened with (deleting the key ends its sessions).
CREATE TABLE dashboard_sessions (
    id_hash     TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL REFERENCES api_keys (key_hash) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
