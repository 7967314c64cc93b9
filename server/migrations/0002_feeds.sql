-- trustwatch store, version 2: imported feeds (OSV advisories, CISA KEV,
-- FIRST EPSS, end-of-life dates), the record of every import, and shared
-- settings. Timestamps are unix milliseconds (UTC) in BIGINT columns;
-- calendar dates (KEV dates, end-of-life dates) are TEXT 'YYYY-MM-DD'.
-- Lists are JSON text. Plain SQL, portable to PostgreSQL.

-- One row per successful import (a failed import leaves no row).
CREATE TABLE feed_imports (
    id           TEXT PRIMARY KEY,             -- UUIDv7
    kind         TEXT NOT NULL CHECK (kind IN ('osv', 'kev', 'epss', 'eol')),
    source       TEXT NOT NULL,                -- the path as given
    sha256       TEXT NOT NULL,                -- lowercase hex, of the file (a directory: of its sorted name/hash list)
    records      BIGINT NOT NULL,              -- records read
    stored       BIGINT NOT NULL,              -- records inserted or replaced
    skipped      BIGINT NOT NULL,              -- out of scope, or not newer than the stored copy
    feed_date    BIGINT,                       -- the date the feed states about itself
    imported_at  BIGINT NOT NULL,
    summary      TEXT NOT NULL                 -- JSON object: further counts
);
CREATE INDEX feed_imports_by_kind ON feed_imports (kind, imported_at);

-- OSV advisories of the ecosystems trustwatch matches. A re-import replaces
-- a record only when its `modified` is newer.
CREATE TABLE osv_advisories (
    id         TEXT PRIMARY KEY,
    modified   BIGINT NOT NULL,
    published  BIGINT,
    withdrawn  BIGINT,                          -- set: never matched
    summary    TEXT NOT NULL,
    cves       TEXT NOT NULL,                   -- JSON array of CVE ids
    import_id  TEXT NOT NULL REFERENCES feed_imports (id)
);

CREATE TABLE osv_affected (
    advisory_id    TEXT NOT NULL REFERENCES osv_advisories (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    ecosystem      TEXT NOT NULL,               -- normalised key (Debian:12, Red Hat:9, ...)
    ecosystem_raw  TEXT NOT NULL,
    package        TEXT NOT NULL,
    ranges         TEXT NOT NULL,               -- JSON: [[{"introduced": "0"}, {"fixed": "1.2-3"}], ...]
    versions       TEXT NOT NULL,               -- JSON array
    PRIMARY KEY (advisory_id, seq)
);
CREATE INDEX osv_affected_by_package ON osv_affected (ecosystem, package);

-- The latest KEV catalogue (replaced whole on import).
CREATE TABLE kev (
    cve         TEXT PRIMARY KEY,
    date_added  TEXT NOT NULL,
    due_date    TEXT,
    ransomware  TEXT NOT NULL,
    vendor      TEXT NOT NULL,
    product     TEXT NOT NULL,
    name        TEXT NOT NULL
);

-- The latest EPSS scores (replaced whole on import).
CREATE TABLE epss (
    cve         TEXT PRIMARY KEY,
    score       DOUBLE PRECISION NOT NULL,
    percentile  DOUBLE PRECISION NOT NULL
);

-- End-of-life dates. An import replaces every release of the systems it
-- covers; a system never imported uses the snapshot built into the server.
CREATE TABLE eol_releases (
    os             TEXT NOT NULL,
    release        TEXT NOT NULL,
    label          TEXT NOT NULL,
    release_date   TEXT,
    standard_end   TEXT,
    extended_end   TEXT,
    extended_kind  TEXT CHECK (extended_kind IN ('lts', 'esm', 'esu', 'els')),
    sources        TEXT NOT NULL,               -- JSON array
    import_id      TEXT NOT NULL REFERENCES feed_imports (id),
    PRIMARY KEY (os, release)
);

-- Settings every process acting on the store shares (e.g. the matching
-- policy `serve` runs with, which `feed import` re-matches under).
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE INDEX assets_by_kind ON assets (kind, org, id);
CREATE INDEX findings_by_asset_collector ON findings (org, asset_kind, asset_id, collector, status);
