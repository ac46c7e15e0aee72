//! The store's SQLite schema and connection settings.

/// Schema version written into `meta`.
pub const SCHEMA_VERSION: i64 = 1;

/// Durability and integrity settings applied to every connection: WAL, synchronous FULL (a
/// committed import survives power loss), foreign keys, and a busy timeout so that a second
/// process waits briefly instead of failing.
pub const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 30000;
";

/// Tables. Local IDs, birth dates and original UIDs never appear in clear: patients are found by
/// a keyed blind index and their (site, local ID) is kept only sealed under a store secret.
pub const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE recipients (
    recipient TEXT PRIMARY KEY,
    role      TEXT NOT NULL CHECK (role IN ('steward', 'backup')),
    added_at  INTEGER NOT NULL
);
CREATE TABLE sites (
    site_key   TEXT PRIMARY KEY,
    site       TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE TABLE patients (
    id              INTEGER PRIMARY KEY,
    domain          TEXT NOT NULL,
    blind_index     BLOB NOT NULL,
    pseudonym       TEXT NOT NULL UNIQUE,
    sealed_identity BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (domain, blind_index)
);
CREATE TABLE bundles (
    bundle_id   TEXT NOT NULL,
    domain      TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    site        TEXT NOT NULL,
    patient_id  INTEGER NOT NULL REFERENCES patients(id),
    instances   INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (bundle_id, domain)
);
CREATE TABLE instances (
    path        TEXT PRIMARY KEY,
    patient_id  INTEGER NOT NULL REFERENCES patients(id),
    bundle_id   TEXT NOT NULL,
    study_uid   TEXT NOT NULL,
    series_uid  TEXT NOT NULL,
    sop_uid     TEXT NOT NULL,
    modality    TEXT NOT NULL,
    study_date  TEXT NOT NULL,
    series_description TEXT NOT NULL,
    patient_age TEXT NOT NULL,
    patient_sex TEXT NOT NULL
);
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
";
