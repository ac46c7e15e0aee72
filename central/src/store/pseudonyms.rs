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
        let index = self.secrets.blind_index(domain, site, local_id.expose());
        let path = self.db_path();
        let db = |source| StoreError::Database {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let found: Option<(i64, String, Vec<u8>)> = tx
            .query_row(
                "SELECT id, pseudonym, sealed_identity FROM patients WHERE domain = ?1 AND blind_index = ?2",
                params![domain, &index[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        if let Some((id, text, sealed)) = found {
            let pseudonym: Pseudonym = text
                .parse()
                .map_err(|e| StoreError::Refused(format!("stored pseudonym {text} is malformed: {e}")))?;
            let opened = open_sealed(&self.secrets, &index, &sealed, &pseudonym)?;
            return Ok(PatientRef {
                id,
                pseudonym,
                date_offset_days: opened.date_offset_days,
                minted: false,
            });
        }
        let offset = rand::rngs::OsRng.gen_range(DATE_OFFSET_DAYS);
        let sealed = seal_identity(
            &self.secrets,
            &index,
            &SealedIdentity {
                site: site.to_string(),
                local_id: local_id.clone(),
                date_offset_days: offset,
            },
        )?;
        for _ in 0..16 {
            let pseudonym = Pseudonym::random();
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO patients (domain, blind_index, pseudonym, sealed_identity, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![domain, &index[..], pseudonym.to_string(), sealed, now()],
            ).map_err(db)?;
            if inserted == 1 {
                let id = tx.last_insert_rowid();
                tx.commit().map_err(db)?;
                return Ok(PatientRef {
                    id,
                    pseudonym,
                    date_offset_days: offset,
                    minted: true,
                });
            }
        }
        Err(StoreError::Refused(
            "could not mint a unique pseudonym after 16 tries (the random number generator is broken)".into(),
        ))
    }

    /// The pseudonym of (domain, site, local ID) if the patient is known; never mints. The caller
    /// audits: this is a re-identification in the other direction.
    pub fn lookup(&self, domain: &str, site: &str, local_id: &LocalId) -> Result<Option<Pseudonym>, StoreError> {
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
                .map_err(|e| StoreError::Refused(format!("stored pseudonym {t} is malformed: {e}")))
        })
        .transpose()
    }

    /// The sealed identity behind a pseudonym, opened (for re-identification; the caller audits).
    pub fn open_identity(&self, pseudonym: &Pseudonym) -> Result<Option<(String, SealedIdentity)>, StoreError> {
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
        .map_err(|e| StoreError::Refused(format!("the sealed identity of {pseudonym}: {e}")))?;
    ciborium::from_reader(plain.as_slice())
        .map_err(|e| StoreError::Refused(format!("the sealed identity of {pseudonym} is damaged: {e}")))
}

fn seal_identity(secrets: &super::StoreSecrets, index: &[u8], id: &SealedIdentity) -> Result<Vec<u8>, StoreError> {
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    ciborium::into_writer(id, &mut *plain).map_err(|e| StoreError::Refused(e.to_string()))?;
    // The blind index is the associated data: a sealed identity moved to another row does not open.
    secrets.seal_row(index, &plain).map_err(StoreError::Refused)
}
