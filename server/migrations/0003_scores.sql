-- trustwatch store, version 3: scores (issue 7). Scores are kept in tenths
-- of a point (INTEGER 0..1000) so that sorting and paging are exact;
-- confidence is a whole percentage. Days are TEXT 'YYYY-MM-DD' (UTC).
-- Plain SQL, portable to PostgreSQL. Everything here is derived from the
-- findings, assets and agents tables and can be recomputed from them.

-- When a resolved finding was last reopened (NULL: never).
ALTER TABLE findings ADD COLUMN reopened_at BIGINT;

-- Covers the per-organisation aggregates of the scoring model (an
-- index-only scan of one organisation's open findings).
CREATE INDEX findings_score ON findings (org, status, category, severity_rank, asset_kind, asset_id, code);
-- Cadence of an agent's reports (stale-agent detection).
CREATE INDEX reports_by_agent ON reports (agent_id, collected_at);

-- The current score of every organisation (one row each once computed).
CREATE TABLE org_scores (
    org             TEXT PRIMARY KEY REFERENCES orgs (code),
    model_version   TEXT NOT NULL,
    computed_at     BIGINT NOT NULL,
    scored          INTEGER NOT NULL CHECK (scored IN (0, 1)),  -- 0: no data, the score columns are 0
    score           INTEGER NOT NULL CHECK (score BETWEEN 0 AND 1000),
    grade           TEXT CHECK (grade IN ('A', 'B', 'C', 'D', 'F')),
    tls_score       INTEGER NOT NULL CHECK (tls_score BETWEEN 0 AND 1000),
    patch_score     INTEGER NOT NULL CHECK (patch_score BETWEEN 0 AND 1000),
    legacy_score    INTEGER NOT NULL CHECK (legacy_score BETWEEN 0 AND 1000),
    coverage_score  INTEGER NOT NULL CHECK (coverage_score BETWEEN 0 AND 1000),
    confidence      INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    rollup          INTEGER NOT NULL CHECK (rollup IN (0, 1)),  -- 1: rolled up from children
    assets          BIGINT NOT NULL,
    open_findings   BIGINT NOT NULL,
    critical        BIGINT NOT NULL,
    high            BIGINT NOT NULL,
    medium          BIGINT NOT NULL,
    low             BIGINT NOT NULL,
    info            BIGINT NOT NULL,
    agents          BIGINT NOT NULL,
    stale_agents    BIGINT NOT NULL,
    sibling_rank    INTEGER,                                    -- 1 = best among siblings; NULL when not scored
    siblings        INTEGER,                                    -- scored organisations with the same parent
    percentile      INTEGER,                                    -- 0..100 among siblings
    own             TEXT NOT NULL,                              -- JSON: the model's output for the organisation's own findings
    detail          TEXT NOT NULL                               -- JSON: the breakdown the API shows
);

-- One score per organisation, model version and day: the last computed
-- that day.
CREATE TABLE score_history (
    org             TEXT NOT NULL REFERENCES orgs (code),
    model_version   TEXT NOT NULL,
    day             TEXT NOT NULL,
    computed_at     BIGINT NOT NULL,
    score           INTEGER NOT NULL CHECK (score BETWEEN 0 AND 1000),
    grade           TEXT NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D', 'F')),
    tls_score       INTEGER NOT NULL,
    patch_score     INTEGER NOT NULL,
    legacy_score    INTEGER NOT NULL,
    coverage_score  INTEGER NOT NULL,
    confidence      INTEGER NOT NULL,
    rollup          INTEGER NOT NULL,
    assets          BIGINT NOT NULL,
    open_findings   BIGINT NOT NULL,
    critical        BIGINT NOT NULL,
    high            BIGINT NOT NULL,
    medium          BIGINT NOT NULL,
    low             BIGINT NOT NULL,
    info            BIGINT NOT NULL,
    agents          BIGINT NOT NULL,
    stale_agents    BIGINT NOT NULL,
    PRIMARY KEY (org, model_version, day)
);

-- Organisations whose findings changed since their score was computed.
-- `gen` grows with every change, so a recompute clears only the marks it saw.
CREATE TABLE score_dirty (
    org  TEXT PRIMARY KEY REFERENCES orgs (code),
    gen  BIGINT NOT NULL
);
