-- trustwatch store, version 1. Timestamps are unix milliseconds (UTC) in
-- BIGINT columns; secrets are stored only as lowercase hex SHA-256. Plain
-- SQL types and ON CONFLICT upserts, so the same schema runs on PostgreSQL
-- (BLOB becomes BYTEA there).

CREATE TABLE orgs (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    parent      TEXT REFERENCES orgs (code),
    created_at  BIGINT NOT NULL
);

CREATE TABLE enroll_tokens (
    token_hash  TEXT PRIMARY KEY,
    org         TEXT NOT NULL REFERENCES orgs (code),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    uses_left   INTEGER NOT NULL CHECK (uses_left >= 0)
);

CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('national', 'org', 'admin')),
    org         TEXT REFERENCES orgs (code),
    created_at  BIGINT NOT NULL,
    CHECK ((role = 'org' AND org IS NOT NULL) OR (role <> 'org' AND org IS NULL))
);

CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    org          TEXT NOT NULL REFERENCES orgs (code),
    hostname     TEXT,
    cert_serial  TEXT NOT NULL,
    enrolled_at  BIGINT NOT NULL,
    last_seen    BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX agents_by_org ON agents (org, id);

CREATE TABLE reports (
    report_id     TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agents (id),
    org           TEXT NOT NULL REFERENCES orgs (code),
    received_at   BIGINT NOT NULL,
    collected_at  BIGINT NOT NULL,
    size          BIGINT NOT NULL,
    body          BLOB NOT NULL
);
CREATE INDEX reports_by_org ON reports (org, received_at);

CREATE TABLE assets (
    org         TEXT NOT NULL REFERENCES orgs (code),
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    agent_id    TEXT NOT NULL,
    details     TEXT NOT NULL,
    PRIMARY KEY (org, kind, id)
);

CREATE TABLE findings (
    org            TEXT NOT NULL REFERENCES orgs (code),
    asset_kind     TEXT NOT NULL,
    asset_id       TEXT NOT NULL,
    code           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    severity       TEXT NOT NULL,
    severity_rank  INTEGER NOT NULL,
    category       TEXT NOT NULL,
    title          TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_seen     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL,
    resolved_at    BIGINT,
    reopened       INTEGER NOT NULL DEFAULT 0,
    agent_id       TEXT NOT NULL,
    collector      TEXT NOT NULL,
    PRIMARY KEY (org, asset_kind, asset_id, code, subject)
);
CREATE INDEX findings_by_org_status ON findings (org, status);
CREATE INDEX findings_by_code ON findings (code, status, org);
CREATE INDEX findings_by_agent ON findings (agent_id, status);
