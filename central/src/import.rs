//! Imports a bundle: verify everything, then look up or mint, re-key, archive, commit.
//!
//! Order of durable steps, so that a kill at any point converges on re-run:
//! 1. the bundle is decrypted and verified into staging — nothing else changes if it fails;
//! 2. the patient is looked up or minted in its own transaction (a re-run finds the same
//!    pseudonym instead of minting another, so no file is orphaned under a lost pseudonym);
//! 3. every instance is re-keyed and written under a temporary name in the archive's staging
//!    folder; then all of them are flushed to disk at once, renamed into place, and the renames
//!    flushed (`archive::Batch`) — re-keying is deterministic, so a re-run writes identical bytes
//!    to identical paths;
//! 4. one transaction records the bundle, its instances and the audit entry. Only a committed
//!    bundle counts as imported.

use crate::archive::{Archive, IndexRow};
use crate::rekey::{self, RekeyContext, RekeyError};
use crate::store::{audit, now, SiteStatus, Store, StoreError};
use pseal::bundle::{BundleError, BundleReader};
use pseal::identity::{IdentityError, IdentityOpener};
use pseal::progress::{Event, Progress};
use pseal::pseudonym::Pseudonym;
use rusqlite::{params, OptionalExtension};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What happened to a bundle that was not refused.
#[derive(Debug, Clone)]
pub enum ImportOutcome {
    /// Imported now.
    Imported {
        /// The patient's pseudonym.
        pseudonym: Pseudonym,
        /// Instances written.
        instances: u64,
        /// True when the pseudonym was minted by this import.
        minted: bool,
    },
    /// The same bundle was imported before; nothing changed.
    AlreadyImported,
    /// The bundle was imported before, and its archive files were written again (`--repair`).
    Repaired {
        /// Instances written.
        instances: u64,
    },
}

/// Why a bundle was refused. Every message names the bundle.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Decryption, layout, digests or the site tag failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The site key is not (or no longer) allowed.
    #[error("{path}: {reason}")]
    Site {
        /// The bundle.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The sealed identity record is unusable.
    #[error("{path}: {source}")]
    Identity {
        /// The bundle.
        path: PathBuf,
        /// Why.
        source: IdentityError,
    },
    /// The identity record and the instances do not correspond.
    #[error("{path}: {reason}")]
    Inconsistent {
        /// The bundle.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An instance could not be re-keyed.
    #[error("{path}: {source}")]
    Rekey {
        /// The bundle.
        path: PathBuf,
        /// Why.
        source: RekeyError,
    },
    /// The store failed.
    #[error("{path}: {source}")]
    Store {
        /// The bundle.
        path: PathBuf,
        /// Why.
        source: StoreError,
    },
    /// Writing the archive failed (e.g. a full disk).
    #[error("{path}: writing the archive {}: {source}", archive.display())]
    Archive {
        /// The bundle.
        path: PathBuf,
        /// The archive folder.
        archive: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Imports one bundle into `archive` under pseudonym domain `domain`.
pub fn import_bundle(
    store: &mut Store,
    archive: &Archive,
    path: &Path,
    domain: &str,
    progress: &dyn Progress,
) -> Result<ImportOutcome, ImportError> {
    import_bundle_with(store, archive, path, domain, false, progress)
}

/// Imports one bundle; with `repair`, a bundle imported before has its archive files written again
/// (re-keying is deterministic, so they come out identical) — how a lost or damaged archive is
/// rebuilt from the bundles kept as received.
pub fn import_bundle_with(
    store: &mut Store,
    archive: &Archive,
    path: &Path,
    domain: &str,
    repair: bool,
    progress: &dyn Progress,
) -> Result<ImportOutcome, ImportError> {
    let p = path.to_path_buf();
    let store_err = |source| ImportError::Store {
        path: p.clone(),
        source,
    };
    let verified = BundleReader::new(store.identity()).open(path, &archive.staging_dir())?;
    crate::fault::point("verified");
    let manifest = &verified.manifest;
    let digest = hex::encode(verified.manifest_digest);

    let previous: Option<String> = store
        .conn_ref()
        .query_row(
            "SELECT manifest_sha256 FROM bundles WHERE bundle_id = ?1 AND domain = ?2",
            params![manifest.bundle_id, domain],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| store_err(store.db_err(e)))?;
    let repairing = match previous {
        Some(prev) if prev == digest && repair => true,
        Some(prev) if prev == digest => return Ok(ImportOutcome::AlreadyImported),
        Some(_) => {
            return Err(ImportError::Inconsistent {
                path: p,
                reason: "another bundle with the same bundle ID was already imported; refusing this one".into(),
            })
        }
        None => false,
    };

    // A repair rewrites what was accepted before, even if the site key was revoked since.
    if !repairing {
        check_site(store, &p, manifest)?;
    }
    let identity_file = std::fs::File::open(verified.identity_path()).map_err(|source| ImportError::Archive {
        path: p.clone(),
        archive: archive.dir().to_path_buf(),
        source,
    })?;
    let mut opener =
        IdentityOpener::open(std::io::BufReader::new(identity_file), store.identity()).map_err(|source| {
            ImportError::Identity {
                path: p.clone(),
                source,
            }
        })?;
    if opener.header().bundle_id != manifest.bundle_id {
        return Err(ImportError::Inconsistent {
            path: p,
            reason: "the identity record belongs to another bundle".into(),
        });
    }
    let local_id = opener.header().local_id.clone();
    let patient = store
        .lookup_or_mint(domain, &manifest.site, &local_id)
        .map_err(store_err)?;
    crate::fault::point("minted");

    let pseudonym_text = patient.pseudonym.to_string();
    let secrets = store.secrets();
    let archive_uid = |uid: &str| secrets.archive_uid(domain, uid);
    let ctx = RekeyContext {
        pseudonym: &patient.pseudonym,
        date_offset_days: patient.date_offset_days,
        archive_uid: &archive_uid,
    };
    let mut rows = Vec::with_capacity(verified.instances().len());
    let mut batch = archive.batch();
    for (entry, staged) in verified.instances() {
        let record = opener
            .next_record()
            .map_err(|source| ImportError::Identity {
                path: p.clone(),
                source,
            })?
            .ok_or_else(|| ImportError::Inconsistent {
                path: p.clone(),
                reason: format!("the identity record has no entry for {entry}"),
            })?;
        if &record.entry != entry {
            return Err(ImportError::Inconsistent {
                path: p,
                reason: format!("the identity record lists {} where {entry} was expected", record.entry),
            });
        }
        let rekeyed =
            rekey::rekey_file(staged, entry, &record.captured, &ctx).map_err(|source| ImportError::Rekey {
                path: p.clone(),
                source,
            })?;
        let fields = rekeyed.fields.clone();
        let rel = Archive::instance_path(&pseudonym_text, &fields.study_uid, &fields.series_uid, &fields.sop_uid);
        batch
            .write(&rel, |file| rekeyed.write_to_file(file))
            .map_err(|source| ImportError::Archive {
                path: p.clone(),
                archive: archive.dir().to_path_buf(),
                source,
            })?;
        drop(rekeyed);
        // The staged copy is spent: removing it now keeps the flush below from writing it to disk.
        let _ = std::fs::remove_file(staged);
        crate::fault::point("archive-file");
        rows.push(IndexRow {
            pseudonym: pseudonym_text.clone(),
            study_uid: fields.study_uid,
            series_uid: fields.series_uid,
            sop_uid: fields.sop_uid,
            modality: fields.modality,
            study_date: fields.study_date,
            series_description: fields.series_description,
            path: rel,
            patient_age: fields.patient_age,
            patient_sex: fields.patient_sex,
            domain: domain.to_string(),
        });
        progress.event(Event::Advance { n: 1 });
    }
    if opener
        .next_record()
        .map_err(|source| ImportError::Identity {
            path: p.clone(),
            source,
        })?
        .is_some()
    {
        return Err(ImportError::Inconsistent {
            path: p,
            reason: "the identity record lists more instances than the bundle holds".into(),
        });
    }
    batch.commit().map_err(|source| ImportError::Archive {
        path: p.clone(),
        archive: archive.dir().to_path_buf(),
        source,
    })?;
    crate::fault::point("archive-synced");

    let instances = rows.len() as u64;
    let db_path = store.db_path();
    let db = |source| ImportError::Store {
        path: p.clone(),
        source: StoreError::Database {
            path: db_path.clone(),
            source,
        },
    };
    store
        .record_import(
            &manifest.bundle_id,
            &digest,
            &manifest.site,
            patient.id,
            &rows,
            domain,
            repairing,
        )
        .map_err(|e| match e {
            StoreError::Database { source, .. } => db(source),
            other => ImportError::Store {
                path: p.clone(),
                source: other,
            },
        })?;
    crate::fault::point("committed");
    if repairing {
        return Ok(ImportOutcome::Repaired { instances });
    }
    Ok(ImportOutcome::Imported {
        pseudonym: patient.pseudonym,
        instances,
        minted: patient.minted,
    })
}

/// Refuses a bundle whose site key is not enrolled for the site it claims, or was revoked.
fn check_site(store: &Store, p: &Path, manifest: &pseal::bundle::Manifest) -> Result<(), ImportError> {
    match store
        .site_status(&manifest.site, &manifest.site_key)
        .map_err(|source| ImportError::Store { path: p.to_path_buf(), source })?
    {
        SiteStatus::Enrolled => {}
        SiteStatus::Revoked => {
            return Err(ImportError::Site {
                path: p.to_path_buf(),
                reason: format!("site key {} of site {} was revoked", manifest.site_key, manifest.site),
            })
        }
        SiteStatus::OtherSite(other) => {
            return Err(ImportError::Site {
                path: p.to_path_buf(),
                reason: format!(
                    "the bundle claims site {} but its key {} is enrolled for site {other}",
                    manifest.site, manifest.site_key
                ),
            })
        }
        SiteStatus::Unknown => {
            return Err(ImportError::Site {
                path: p.to_path_buf(),
                reason: format!(
                    "site key {} is not enrolled for site {}: enrol a workstation only with the key its operator gave you over a channel you trust, never with a key taken from a bundle",
                    manifest.site_key, manifest.site
                ),
            })
        }
    }
    Ok(())
}

/// Ends an import run (under the store lock): rewrites `index.csv` when an import committed
/// since it was last written (also after a crash between commit and index), and removes the
/// archive's staging folder when it is empty, so that a finished import leaves only the archive's
/// own files. Returns true when the index was rewritten.
pub fn refresh_index(store: &mut Store, archive: &Archive) -> Result<bool, StoreError> {
    let index = archive.dir().join(crate::archive::INDEX_FILE);
    let dirty = store.index_dirty()?;
    if dirty {
        archive
            .write_index(|row| store.for_each_index_row(row))
            .map_err(|source| StoreError::Io {
                path: index.clone(),
                source,
            })?;
        crate::fault::point("indexed");
        store.mark_index_clean()?;
    }
    archive.remove_staging_if_empty().map_err(|source| StoreError::Io {
        path: archive.staging_dir(),
        source,
    })?;
    Ok(dirty)
}

impl Store {
    /// Records an imported bundle, its instances and the audit entry in one transaction.
    #[allow(clippy::too_many_arguments)]
    fn record_import(
        &mut self,
        bundle_id: &str,
        digest: &str,
        site: &str,
        patient_id: i64,
        rows: &[IndexRow],
        domain: &str,
        repairing: bool,
    ) -> Result<(), StoreError> {
        let path = self.db_path();
        let db = |source| StoreError::Database {
            path: path.clone(),
            source,
        };
        let secrets = &self.secrets;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute(
            // A repair finds the bundle recorded already and keeps that record.
            "INSERT OR IGNORE INTO bundles (bundle_id, domain, manifest_sha256, site, patient_id, instances, imported_at) VALUES (?1, ?7, ?2, ?3, ?4, ?5, ?6)",
            params![bundle_id, digest, site, patient_id, rows.len() as i64, now(), domain],
        )
        .map_err(db)?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR REPLACE INTO instances (path, patient_id, bundle_id, study_uid, series_uid, sop_uid, modality, study_date, series_description, patient_age, patient_sex)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(db)?;
            for r in rows {
                stmt.execute(params![
                    r.path,
                    patient_id,
                    bundle_id,
                    r.study_uid,
                    r.series_uid,
                    r.sop_uid,
                    r.modality,
                    r.study_date,
                    r.series_description,
                    r.patient_age,
                    r.patient_sex
                ])
                .map_err(db)?;
            }
        }
        // index.csv is rewritten after the commit; until then it is stale, and a crash in between
        // must not leave it so: the flag makes the next import rewrite it.
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('index_dirty', '1') ON CONFLICT(key) DO UPDATE SET value = '1'",
            [],
        )
        .map_err(db)?;
        let pseudonym = rows.first().map(|r| r.pseudonym.clone()).unwrap_or_default();
        let action = if repairing { "repair" } else { "import" };
        audit::append(&tx, secrets, action, &serde_json::json!({ "bundle_id": bundle_id, "site": site, "domain": domain, "pseudonym": pseudonym, "instances": rows.len() })).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// True when index.csv may be older than the store (an import committed since it was written).
    pub fn index_dirty(&self) -> Result<bool, StoreError> {
        let v: Option<String> = self
            .conn_ref()
            .query_row("SELECT value FROM meta WHERE key = 'index_dirty'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.db_err(e))?;
        Ok(v.as_deref() == Some("1"))
    }

    /// Records that index.csv is current.
    pub fn mark_index_clean(&mut self) -> Result<(), StoreError> {
        let path = self.db_path();
        self.conn
            .execute("UPDATE meta SET value = '0' WHERE key = 'index_dirty'", [])
            .map_err(|source| StoreError::Database { path, source })?;
        Ok(())
    }

    /// Streams every archived instance as an index row, ordered by path.
    pub fn for_each_index_row(&self, mut f: impl FnMut(IndexRow) -> std::io::Result<()>) -> Result<(), StoreError> {
        let mut stmt = self
            .conn_ref()
            .prepare(
                "SELECT p.pseudonym, i.study_uid, i.series_uid, i.sop_uid, i.modality, i.study_date, i.series_description, i.path, i.patient_age, i.patient_sex, p.domain
                 FROM instances i JOIN patients p ON p.id = i.patient_id ORDER BY i.path",
            )
            .map_err(|e| self.db_err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.db_err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.db_err(e))? {
            let get = |i: usize| -> Result<String, StoreError> { r.get(i).map_err(|e| self.db_err(e)) };
            let row = IndexRow {
                pseudonym: get(0)?,
                study_uid: get(1)?,
                series_uid: get(2)?,
                sop_uid: get(3)?,
                modality: get(4)?,
                study_date: get(5)?,
                series_description: get(6)?,
                path: get(7)?,
                patient_age: get(8)?,
                patient_sex: get(9)?,
                domain: get(10)?,
            };
            f(row).map_err(|source| StoreError::Io {
                path: self.db_path(),
                source,
            })?;
        }
        Ok(())
    }
}
