//! The store's SQLite schema and connection settings.

/// Schema version written into `meta`. Version 2 added the instance details of `index.csv`
/// (see [`migrate`]).
pub const SCHEMA_VERSION: i64 = 2;

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
    patient_sex TEXT NOT NULL,
    study_time      TEXT,
    series_number   TEXT,
    instance_number TEXT,
    manufacturer    TEXT,
    model           TEXT,
    field_strength  TEXT,
    sequence_name   TEXT,
    slice_thickness TEXT,
    image_rows      TEXT,
    image_columns   TEXT
);
CREATE INDEX instances_by_patient ON instances (patient_id, study_uid);
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
";

/// Columns version 2 added to `instances`: NULL in rows archived before (the archive files are
/// read again to fill them, `Store::backfill_details`).
const DETAIL_COLUMNS: [&str; 10] = [
    "study_time",
    "series_number",
    "instance_number",
    "manufacturer",
    "model",
    "field_strength",
    "sequence_name",
    "slice_thickness",
    "image_rows",
    "image_columns",
];

/// Brings a version 1 store to the current schema, in one immediate transaction (a second
/// process opening the store at the same time waits, then finds nothing to do).
pub fn migrate(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let version = |c: &rusqlite::Connection| -> rusqlite::Result<i64> {
        let v: Option<String> = rusqlite::OptionalExtension::optional(c.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        ))?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(1))
    };
    if version(conn)? >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if version(&tx)? < 2 {
        for column in DETAIL_COLUMNS {
            tx.execute_batch(&format!("ALTER TABLE instances ADD COLUMN {column} TEXT"))?;
        }
        tx.execute_batch("CREATE INDEX IF NOT EXISTS instances_by_patient ON instances (patient_id, study_uid)")?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
        [SCHEMA_VERSION.to_string()],
    )?;
    tx.commit()
}
