//! The steward's store: one folder holding the passphrase-protected steward identity
//! (`steward-identity.age`), the SQLite database (`store.sqlite`) and the import lock.
//!
//! The database alone reveals no local ID, birth date or original UID: patients are found through
//! a keyed blind index, their (site, local ID) is sealed (XChaCha20-Poly1305) under a random key,
//! and every key (blind index, UID mapping, audit chain, identity sealing) is a random secret kept
//! only sealed with age to the steward and backup recipients.

pub mod audit;
pub mod bundles;
pub mod domains;
pub mod instances;
pub mod links;
pub mod merges;
pub mod pseudonyms;
pub mod reidentify;
mod schema;
mod secrets;
pub mod sites;

pub use pseudonyms::PatientRef;
pub use reidentify::{LookedUp, Reidentified};
pub use secrets::StoreSecrets;
pub use sites::SiteStatus;

use pseal::keys::{KeyError, Passphrase, StewardIdentity, StewardRecipient};
use rusqlite::{params, Connection, OptionalExtension};
use std::fs::File;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// File name of the steward identity inside the store folder (contract).
pub const IDENTITY_FILE: &str = "steward-identity.age";
/// File name of the database inside the store folder.
pub const DATABASE_FILE: &str = "store.sqlite";
/// File name of the lock taken by imports.
pub const LOCK_FILE: &str = "store.lock";

/// A store problem, naming the store and what to do.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `init` on a folder that already holds a store.
    #[error("{0} already holds a pseal store; refusing to overwrite it")]
    Exists(PathBuf),
    /// No store in the folder.
    #[error("{0} holds no pseal store (no {IDENTITY_FILE} or {DATABASE_FILE}); create one with `pseal-central init --store {0}`")]
    Missing(PathBuf),
    /// The identity could not be opened (wrong passphrase, damaged file, permissions).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The identity opens, but the database belongs to another steward identity.
    #[error("{path}: this database belongs to steward {database}, but the identity file is {identity}; the store folder was mixed up with another steward's")]
    ForeignDatabase {
        /// The database.
        path: PathBuf,
        /// The steward recipient recorded in the database.
        database: String,
        /// The recipient of the identity file.
        identity: String,
    },
    /// The store's sealed secrets cannot be opened with this identity.
    #[error("{path}: the store secrets cannot be opened with this steward identity: {reason}")]
    Secrets {
        /// The database.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A database error.
    #[error("{path}: database error: {source}")]
    Database {
        /// The database.
        path: PathBuf,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// A file error (worded without the name of any temporary file).
    #[error("{path}: {}", pseal::role::describe(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An audited look-up (`reidentify`, `lookup`) without a reason to record.
    #[error("--reason must say why (it is recorded in the audit log)")]
    NoReason,
    /// Re-identification of a pseudonym the store does not hold.
    #[error("no patient has pseudonym {0} in this store")]
    UnknownPseudonym(String),
    /// A domain name that is not one.
    #[error(transparent)]
    DomainName(#[from] domains::BadDomainName),
    /// Linkage thresholds out of order or range.
    #[error(transparent)]
    Thresholds(#[from] crate::linkage::BadThresholds),
    /// The archive folder is not this store's (or cannot be checked).
    #[error(transparent)]
    Archive(#[from] crate::archive::BindError),
    /// A site name that is not one.
    #[error(transparent)]
    SiteName(#[from] pseal::config::BadSiteName),
    /// A site key the store will not enrol or revoke as asked.
    #[error(transparent)]
    SiteKey(#[from] sites::KeyRefused),
    /// An import into a domain the store does not have, without `--new-domain`.
    #[error(transparent)]
    UnknownDomain(#[from] domains::UnknownDomain),
    /// Minting kept finding taken pseudonyms (only a broken random number generator does that).
    #[error("could not mint a unique pseudonym after 16 tries (the random number generator is broken)")]
    MintExhausted,
    /// Something the store holds does not read back (an altered or damaged database; the text
    /// names the row, never an identity).
    #[error("{0}")]
    Damaged(String),
}

/// An open store, with its identity unlocked and secrets available.
pub struct Store {
    dir: PathBuf,
    conn: Connection,
    identity: StewardIdentity,
    pub(crate) secrets: StoreSecrets,
    pub(crate) linkage: links::LinkageState,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let db = |source| StoreError::Database {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(db)?;
    conn.execute_batch(schema::PRAGMAS).map_err(db)?;
    Ok(conn)
}

impl Store {
    /// Creates a store in `dir` with a new steward identity protected by `passphrase`; every
    /// bundle and sealed record will also be readable by each backup recipient.
    pub fn create(dir: &Path, passphrase: &Passphrase, backups: &[StewardRecipient]) -> Result<Store, StoreError> {
        let identity_path = dir.join(IDENTITY_FILE);
        let db_path = dir.join(DATABASE_FILE);
        if identity_path.exists() || db_path.exists() {
            return Err(StoreError::Exists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let identity = StewardIdentity::generate();
        identity.write_encrypted(&identity_path, passphrase)?;
        let created = Self::create_database(&db_path, &identity, backups);
        match created {
            Ok((conn, secrets)) => Ok(Store {
                dir: dir.to_path_buf(),
                conn,
                identity,
                secrets,
                linkage: Default::default(),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&db_path);
                let _ = std::fs::remove_file(&identity_path);
                Err(e)
            }
        }
    }

    fn create_database(
        db_path: &Path,
        identity: &StewardIdentity,
        backups: &[StewardRecipient],
    ) -> Result<(Connection, StoreSecrets), StoreError> {
        let db = |source| StoreError::Database {
            path: db_path.to_path_buf(),
            source,
        };
        let mut conn = open_connection(db_path)?;
        let secrets = StoreSecrets::generate();
        let mut recipients = vec![identity.recipient()];
        recipients.extend(backups.iter().cloned());
        let sealed = secrets.seal(&recipients).map_err(|e| StoreError::Secrets {
            path: db_path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(schema::SCHEMA).map_err(db)?;
        tx.execute_batch(links::SCHEMA).map_err(db)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![schema::SCHEMA_VERSION.to_string()],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))))",
            [],
        )
        .map_err(db)?;
        // A new store has no row from before schema 2 to read details back for.
        tx.execute("INSERT INTO meta (key, value) VALUES ('details_complete', '1')", [])
            .map_err(db)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('steward', ?1)",
            params![identity.recipient().to_string()],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('secrets', ?1)",
            params![hex::encode(sealed)],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO recipients (recipient, role, added_at) VALUES (?1, 'steward', ?2)",
            params![identity.recipient().to_string(), now()],
        )
        .map_err(db)?;
        for b in backups {
            tx.execute(
                "INSERT OR IGNORE INTO recipients (recipient, role, added_at) VALUES (?1, 'backup', ?2)",
                params![b.to_string(), now()],
            )
            .map_err(db)?;
        }
        audit::append(
            &tx,
            &secrets,
            "init",
            &serde_json::json!({ "steward": identity.recipient().to_string(), "backups": backups.len() }),
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok((conn, secrets))
    }

    /// Opens the store in `dir`, unlocking the steward identity with `passphrase`.
    pub fn open(dir: &Path, passphrase: &Passphrase) -> Result<Store, StoreError> {
        let identity_path = dir.join(IDENTITY_FILE);
        let db_path = dir.join(DATABASE_FILE);
        if !identity_path.exists() || !db_path.exists() {
            return Err(StoreError::Missing(dir.to_path_buf()));
        }
        let identity = StewardIdentity::read_encrypted(&identity_path, passphrase)?;
        let mut conn = open_connection(&db_path)?;
        let db = |source| StoreError::Database {
            path: db_path.clone(),
            source,
        };
        let steward: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'steward'", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        let steward = steward.ok_or_else(|| StoreError::Missing(dir.to_path_buf()))?;
        if steward != identity.recipient().to_string() {
            return Err(StoreError::ForeignDatabase {
                path: db_path,
                database: steward,
                identity: identity.recipient().to_string(),
            });
        }
        schema::migrate(&mut conn).map_err(db)?;
        let sealed: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'secrets'", [], |r| r.get(0))
            .map_err(db)?;
        let sealed = hex::decode(sealed).map_err(|e| StoreError::Secrets {
            path: db_path.clone(),
            reason: e.to_string(),
        })?;
        let secrets = StoreSecrets::open(&sealed, &identity).map_err(|e| StoreError::Secrets {
            path: db_path.clone(),
            reason: e.to_string(),
        })?;
        // A store made before linkage gains its (empty) linkage tables on first open.
        conn.execute_batch(links::SCHEMA).map_err(db)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            conn,
            identity,
            secrets,
            linkage: Default::default(),
        })
    }

    /// Every recipient sites must seal to, steward first; needs no passphrase.
    pub fn recipients_of(dir: &Path) -> Result<Vec<String>, StoreError> {
        let db_path = dir.join(DATABASE_FILE);
        if !db_path.exists() {
            return Err(StoreError::Missing(dir.to_path_buf()));
        }
        let db = |source| StoreError::Database {
            path: db_path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(&db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
        let mut stmt = conn
            .prepare("SELECT recipient FROM recipients ORDER BY role = 'backup', added_at, recipient")
            .map_err(db)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(db)
    }

    /// The recipients, parsed (steward first).
    pub fn recipients(&self) -> Result<Vec<StewardRecipient>, StoreError> {
        let texts = Self::recipients_of(&self.dir)?;
        texts.iter().map(|t| t.parse().map_err(StoreError::Key)).collect()
    }

    /// Adds a backup recipient and re-seals the store secrets to every recipient, so the new
    /// backup identity can recover the store too. Sites must add it to their configuration for
    /// their bundles to be readable with it.
    pub fn add_backup_recipient(&mut self, recipient: &StewardRecipient) -> Result<bool, StoreError> {
        let db_path = self.db_path();
        let db = |source| StoreError::Database {
            path: db_path.clone(),
            source,
        };
        let mut all = self.recipients()?;
        if all.contains(recipient) {
            return Ok(false);
        }
        all.push(recipient.clone());
        let sealed = self.secrets.seal(&all).map_err(|e| StoreError::Secrets {
            path: db_path.clone(),
            reason: e.to_string(),
        })?;
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO recipients (recipient, role, added_at) VALUES (?1, 'backup', ?2)",
            params![recipient.to_string(), now()],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'secrets'",
            params![hex::encode(sealed)],
        )
        .map_err(db)?;
        audit::append(
            &tx,
            &self.secrets,
            "recipient-add",
            &serde_json::json!({ "recipient": recipient.to_string() }),
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(true)
    }

    /// Takes the store's import lock, waiting if another process holds it. `on_wait` is called
    /// once when the lock is busy so the caller can say why it is waiting.
    pub fn lock(dir: &Path, on_wait: impl FnOnce()) -> Result<File, StoreError> {
        if !dir.join(IDENTITY_FILE).exists() || !dir.join(DATABASE_FILE).exists() {
            return Err(StoreError::Missing(dir.to_path_buf()));
        }
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                on_wait();
                file.lock().map_err(io)?;
                Ok(file)
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// Re-encrypts the steward identity file under a new passphrase (written beside it, synced,
    /// then renamed over it, so a crash leaves the old or the new file, never neither). Audited.
    pub fn change_passphrase(&mut self, new: &Passphrase) -> Result<(), StoreError> {
        let path = self.dir.join(IDENTITY_FILE);
        let temp = self.dir.join(format!("{IDENTITY_FILE}.new"));
        let _ = std::fs::remove_file(&temp);
        self.identity.write_encrypted(&temp, new)?;
        std::fs::rename(&temp, &path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StoreError::Io {
                path: self.dir.clone(),
                source,
            })?;
        self.audit("passphrase-change", &serde_json::json!({}))
    }

    /// The store's random ID (drawn at `init`), which its archive's marker file names.
    pub fn store_id(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| r.get(0))
            .map_err(|e| self.db_err(e))
    }

    /// Whether any instance has been archived from this store.
    pub fn has_instances(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM instances)", [], |r| r.get(0))
            .map_err(|e| self.db_err(e))
    }

    /// The steward identity.
    pub fn identity(&self) -> &StewardIdentity {
        &self.identity
    }

    /// The store secrets.
    pub fn secrets(&self) -> &StoreSecrets {
        &self.secrets
    }

    /// The store folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DATABASE_FILE)
    }

    pub(crate) fn db_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Database {
            path: self.db_path(),
            source,
        }
    }

    /// Runs `body` in one write transaction (taking the write lock at its start, so two
    /// writers wait rather than fail half-way) and commits it; any error rolls it back and is
    /// reported with the database's path. `body` gets the store's secrets for audit entries
    /// and sealed rows.
    pub(crate) fn write_tx<T>(
        &mut self,
        body: impl FnOnce(&rusqlite::Transaction<'_>, &StoreSecrets) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.db_path();
        let db = |source| StoreError::Database {
            path: path.clone(),
            source,
        };
        let (tx, secrets) = self.begin_write()?;
        let value = body(&tx, secrets).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(value)
    }

    /// Starts a write transaction (taking the write lock now) and lends the secrets beside it;
    /// dropping the transaction rolls it back.
    pub(crate) fn begin_write(&mut self) -> Result<(rusqlite::Transaction<'_>, &StoreSecrets), StoreError> {
        let path = self.db_path();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Database { path, source })?;
        Ok((tx, &self.secrets))
    }
}
