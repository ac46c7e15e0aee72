//! Looking up or minting a patient's pseudonym, per research domain.
//!
//! A patient is found by the blind index of (domain, site, local ID). A new patient gets a random
//! [`Pseudonym`] (retried on the negligible chance of a collision, which the UNIQUE constraint
//! catches) and a random date offset, both drawn once and kept. The (site, local ID) is stored only
//! sealed under the store's identity key (bound to its blind index), for re-identification.

use super::{now, Store, StoreError};
use pseal::identity::LocalId;
use pseal::pseudonym::Pseudonym;
use rand::Rng;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The default pseudonym domain (research project).
pub const DEFAULT_DOMAIN: &str = "default";

/// Date offsets are drawn uniformly from this range of days (1 to 10 years into the past), so a
/// shifted date is never the true one and never lies in the future.
pub const DATE_OFFSET_DAYS: std::ops::RangeInclusive<i64> = -3652..=-366;

/// SQLite page cache for bulk look-up-or-mint, in KiB as `PRAGMA cache_size` takes it (negative).
const BULK_CACHE_KIB: i64 = -128 * 1024;

/// A patient as the import needs it.
#[derive(Debug, Clone)]
pub struct PatientRef {
    /// Row ID.
    pub id: i64,
    /// The pseudonym.
    pub pseudonym: Pseudonym,
    /// Days added to every date of this patient.
    pub date_offset_days: i64,
    /// True when this call minted the pseudonym.
    pub minted: bool,
}

/// What re-identification reveals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedIdentity {
    /// The site.
    pub site: String,
    /// The local ID at that site.
    pub local_id: LocalId,
    /// The patient's date offset: sealed with the identity, because with it and the archive
    /// anyone could undo the date shift.
    pub date_offset_days: i64,
}

impl Store {
    /// Finds the patient (domain, site, local ID) or mints a pseudonym for it, in one transaction.
    pub fn lookup_or_mint(&mut self, domain: &str, site: &str, local_id: &LocalId) -> Result<PatientRef, StoreError> {
        let path = self.db_path();
        let (tx, secrets) = self.begin_write()?;
        let patient = find_or_mint(&tx, secrets, domain, site, local_id).map_err(|e| e.into_store(&path))?;
        // A look-up that found the patient changed nothing: dropping the transaction rolls back
        // without a sync.
        if patient.minted {
            tx.commit().map_err(|source| StoreError::Database { path, source })?;
        }
        Ok(patient)
    }

    /// [`lookup_or_mint`](Self::lookup_or_mint) for many (site, local ID) pairs in one
    /// transaction (one sync for the whole batch), in order. For bulk enrolment of identities;
    /// an import mints one patient and keeps its own transaction.
    pub fn lookup_or_mint_many<S: AsRef<str>>(
        &mut self,
        domain: &str,
        ids: &[(S, LocalId)],
    ) -> Result<Vec<PatientRef>, StoreError> {
        let path = self.db_path();
        let db = |source| StoreError::Database {
            path: path.clone(),
            source,
        };
        // Every mint inserts into two indexes at random places (keyed blind index, random
        // pseudonym): with SQLite's default 2 MiB page cache nearly every insert re-reads index
        // pages from the OS. A process that mints in bulk gets a larger cache, kept for the
        // connection's life (shrinking it would drop the warm pages); imports mint one patient
        // per bundle through `lookup_or_mint` and keep the small default, so import memory stays
        // flat.
        self.conn
            .pragma_update(None, "cache_size", BULK_CACHE_KIB)
            .map_err(db)?;
        let out = mint_batch(&mut self.conn, &self.secrets, domain, ids, &path)?;
        Ok(out)
    }

    /// The pseudonym of (domain, site, local ID) if the patient is known; never mints. Unaudited,
    /// so private to the crate: front ends call [`Store::lookup_audited`].
    pub(crate) fn lookup(&self, domain: &str, site: &str, local_id: &LocalId) -> Result<Option<Pseudonym>, StoreError> {
        let index = self.secrets.blind_index(domain, site, local_id.expose());
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT pseudonym FROM patients WHERE domain = ?1 AND blind_index = ?2",
                params![domain, &index[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        text.map(|t| {
            t.parse()
                .map_err(|e| StoreError::Damaged(format!("stored pseudonym {t} is malformed: {e}")))
        })
        .transpose()
    }

    /// The sealed identity behind a pseudonym, opened. Unaudited, so private to the crate: front
    /// ends call [`Store::reidentify`].
    pub(crate) fn open_identity(&self, pseudonym: &Pseudonym) -> Result<Option<(String, SealedIdentity)>, StoreError> {
        let row: Option<(String, Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT domain, blind_index, sealed_identity FROM patients WHERE pseudonym = ?1",
                params![pseudonym.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        let Some((domain, index, sealed)) = row else {
            return Ok(None);
        };
        let id = open_sealed(&self.secrets, &index, &sealed, pseudonym)?;
        Ok(Some((domain, id)))
    }

    /// Number of patients in a domain.
    pub fn patient_count(&self, domain: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM patients WHERE domain = ?1",
                params![domain],
                |r| r.get(0),
            )
            .map_err(|e| self.db_err(e))
    }
}

fn open_sealed(
    secrets: &super::StoreSecrets,
    index: &[u8],
    sealed: &[u8],
    pseudonym: &Pseudonym,
) -> Result<SealedIdentity, StoreError> {
    let plain = secrets
        .open_row(index, sealed)
        .map_err(|e| StoreError::Damaged(format!("the sealed identity of {pseudonym}: {e}")))?;
    ciborium::from_reader(plain.as_slice())
        .map_err(|e| StoreError::Damaged(format!("the sealed identity of {pseudonym} is damaged: {e}")))
}

fn seal_identity(secrets: &super::StoreSecrets, index: &[u8], id: &SealedIdentity) -> Result<Vec<u8>, StoreError> {
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    ciborium::into_writer(id, &mut *plain).map_err(|e| StoreError::Damaged(e.to_string()))?;
    // The blind index is the associated data: a sealed identity moved to another row does not open.
    secrets
        .seal_row(index, &plain)
        .map_err(|e| StoreError::Damaged(e.to_string()))
}

/// One transaction of look-up-or-mint for a batch.
fn mint_batch<S: AsRef<str>>(
    conn: &mut rusqlite::Connection,
    secrets: &super::StoreSecrets,
    domain: &str,
    ids: &[(S, LocalId)],
    path: &std::path::Path,
) -> Result<Vec<PatientRef>, StoreError> {
    let db = |source| StoreError::Database {
        path: path.to_path_buf(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db)?;
    let mut out = Vec::with_capacity(ids.len());
    for (site, local_id) in ids {
        out.push(find_or_mint(&tx, secrets, domain, site.as_ref(), local_id).map_err(|e| e.into_store(path))?);
    }
    if out.iter().any(|p| p.minted) {
        tx.commit().map_err(db)?;
    }
    Ok(out)
}

/// A failure inside a look-up-or-mint, before the database path is attached.
enum MintError {
    Db(rusqlite::Error),
    Store(StoreError),
}

impl MintError {
    fn into_store(self, path: &std::path::Path) -> StoreError {
        match self {
            MintError::Db(source) => StoreError::Database {
                path: path.to_path_buf(),
                source,
            },
            MintError::Store(e) => e,
        }
    }
}

/// Finds or mints one patient inside the caller's transaction (statements are cached on the
/// connection, so a batch prepares each once).
fn find_or_mint(
    tx: &rusqlite::Transaction<'_>,
    secrets: &super::StoreSecrets,
    domain: &str,
    site: &str,
    local_id: &LocalId,
) -> Result<PatientRef, MintError> {
    let index = secrets.blind_index(domain, site, local_id.expose());
    let found: Option<(i64, String, Vec<u8>)> = tx
        .prepare_cached("SELECT id, pseudonym, sealed_identity FROM patients WHERE domain = ?1 AND blind_index = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![domain, &index[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(MintError::Db)?;
    if let Some((id, text, sealed)) = found {
        let pseudonym: Pseudonym = text.parse().map_err(|e| {
            MintError::Store(StoreError::Damaged(format!(
                "stored pseudonym {text} is malformed: {e}"
            )))
        })?;
        let opened = open_sealed(secrets, &index, &sealed, &pseudonym).map_err(MintError::Store)?;
        return Ok(PatientRef {
            id,
            pseudonym,
            date_offset_days: opened.date_offset_days,
            minted: false,
        });
    }
    let offset = rand::rngs::OsRng.gen_range(DATE_OFFSET_DAYS);
    let sealed = seal_identity(
        secrets,
        &index,
        &SealedIdentity {
            site: site.to_string(),
            local_id: local_id.clone(),
            date_offset_days: offset,
        },
    )
    .map_err(MintError::Store)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO patients (domain, blind_index, pseudonym, sealed_identity, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(MintError::Db)?;
    for _ in 0..16 {
        let pseudonym = Pseudonym::random();
        let inserted = insert
            .execute(params![domain, &index[..], pseudonym.to_string(), sealed, now()])
            .map_err(MintError::Db)?;
        if inserted == 1 {
            return Ok(PatientRef {
                id: tx.last_insert_rowid(),
                pseudonym,
                date_offset_days: offset,
                minted: true,
            });
        }
    }
    Err(MintError::Store(StoreError::MintExhausted))
}
