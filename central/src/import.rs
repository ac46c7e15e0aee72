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

use crate::archive::Archive;
use crate::rekey::{self, RekeyContext, RekeyError};
use crate::store::links::ImportLink;
use crate::store::{SiteStatus, Store, StoreError};
use pseal::bundle::{BundleError, BundleReader};
use pseal::identity::{IdentityError, IdentityOpener};
use pseal::progress::{Event, Progress};
use pseal::pseudonym::Pseudonym;
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
        /// What cross-site linkage did with the patient's linkage fields.
        linkage: ImportLink,
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
    #[error("{path}: writing the archive folder {}: {}", archive.display(), pseal::role::describe(source))]
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
    let verified = BundleReader::new(store.identity())
        .open_counting(path, &archive.staging_dir(), &|n| progress.event(Event::Bytes { n }))?;
    crate::fault::point("verified");
    let manifest = &verified.manifest;
    let digest = hex::encode(verified.manifest_digest);

    let previous = store
        .imported_manifest(&manifest.bundle_id, domain)
        .map_err(store_err)?;
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
    let owner = store
        .lookup_or_mint(domain, &manifest.site, &local_id)
        .map_err(store_err)?;
    crate::fault::point("minted");
    // Cross-site linkage (a bundle from a site with linkage on): the fields are encoded and
    // matched the first time this patient brings them, and dropped here either way.
    let linkage = match opener.take_linkage() {
        Some(record) => store
            .link_on_import(domain, &manifest.site, &owner, record)
            .map_err(store_err)?,
        None => ImportLink::NotAsked,
    };
    // A merged patient's studies go under the surviving pseudonym, with its date offset.
    let patient = store.effective_patient(&owner).map_err(store_err)?;

    let secrets = store.secrets();
    let archive_uid = |uid: &str| secrets.archive_uid(domain, uid);
    let ctx = RekeyContext {
        pseudonym: &patient.pseudonym,
        date_offset_days: patient.date_offset_days,
        domain,
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
        let (rekeyed, row) =
            rekey::rekey_file(staged, entry, &record.captured, &ctx).map_err(|source| ImportError::Rekey {
                path: p.clone(),
                source,
            })?;
        batch
            .write(&row.path, |file| rekeyed.write_to_file(file))
            .map_err(|source| ImportError::Archive {
                path: p.clone(),
                archive: archive.dir().to_path_buf(),
                source,
            })?;
        drop(rekeyed);
        // The staged copy is spent: removing it now keeps the flush below from writing it to disk.
        let _ = std::fs::remove_file(staged);
        crate::fault::point("archive-file");
        rows.push(row);
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
            (owner.id, patient.id),
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
        minted: owner.minted,
        linkage,
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

/// Ends an import run (under the store lock): fills the details of rows a store older than
/// schema 2 archived, rewrites `index.csv` when an import committed since it was last written
/// (also after a crash between commit and index), and removes the archive's staging folder when
/// it is empty, so that a finished import leaves only the archive's own files. Returns true when
/// the index was rewritten.
pub fn refresh_index(store: &mut Store, archive: &Archive) -> Result<bool, StoreError> {
    let index = archive.dir().join(crate::archive::INDEX_FILE);
    store.backfill_details(archive.dir())?;
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

/// The choices of one import run (`pseal-central import`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The pseudonym domain the bundles are imported under.
    pub domain: String,
    /// Create `domain` when the store does not know it yet (`--new-domain`); a mistyped domain
    /// is refused otherwise.
    pub new_domain: bool,
    /// Write the archive files of bundles imported before again (`--repair`).
    pub repair: bool,
    /// The steward's cross-site linkage policy for this run.
    pub policy: crate::linkage::Policy,
}

/// The totals of an import run; the `--json` summary line carries the same fields.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunSummary {
    /// Bundles imported (or repaired) now.
    pub imported: u64,
    /// Bundles imported before, left as they were.
    pub already_imported: u64,
    /// Bundles refused, each with its reason.
    pub refused: u64,
    /// Instances written into the archive.
    pub instances: u64,
    /// Possible cross-site matches queued for the steward's review.
    pub links_queued: u64,
    /// Patients linked automatically to a patient of another site.
    pub auto_linked: u64,
}

/// Why an import run stopped before or after its bundles (a refused bundle does not stop it).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The domain or the linkage policy was refused, or the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive folder could not be opened or created.
    #[error(transparent)]
    ArchiveFolder(#[from] pseal::role::PathError),
    /// The archive folder is not this store's archive.
    #[error("archive folder {}: {reason}", dir.display())]
    ArchiveRefused {
        /// The archive folder.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// `index.csv` could not be rewritten; the bundles were imported, and the next run rewrites it.
    #[error("archive folder {}: writing {}: {source}", dir.display(), crate::archive::INDEX_FILE)]
    Index {
        /// The archive folder.
        dir: PathBuf,
        /// Why.
        source: StoreError,
    },
}

/// Imports `bundles` in order into the archive at `archive_dir` — the whole run every front end
/// shares: the domain is checked, the archive opened (its staging folder emptied), each bundle
/// imported or refused with its reason (the others go on), progress and per-bundle events
/// emitted, and `index.csv` refreshed at the end. `on_bundle` sees each bundle's outcome as it
/// comes, to print it. Call under the store lock (`Store::lock`).
pub fn run(
    store: &mut Store,
    archive_dir: &Path,
    bundles: &[PathBuf],
    options: &RunOptions,
    progress: &dyn Progress,
    on_bundle: &mut dyn FnMut(&Path, &Result<ImportOutcome, ImportError>),
) -> Result<RunSummary, RunError> {
    store.check_domain(&options.domain, true, options.new_domain)?;
    store.set_link_policy(options.policy)?;
    let archive = Archive::open_for(store, archive_dir, options.repair).map_err(|e| match e {
        StoreError::Io { source, .. } => RunError::ArchiveFolder(pseal::role::PathError::new(
            pseal::role::Role::ArchiveFolder,
            archive_dir,
            source,
        )),
        StoreError::Archive(refused) => RunError::ArchiveRefused {
            dir: archive_dir.to_path_buf(),
            reason: refused.to_string(),
        },
        other => RunError::Store(other),
    })?;
    let mut summary = RunSummary::default();
    let total = bundles.len() as u64;
    let bytes: u64 = bundles
        .iter()
        .filter_map(|b| std::fs::metadata(b).ok())
        .map(|m| m.len())
        .sum();
    for (i, bundle) in bundles.iter().enumerate() {
        progress.event(Event::Phase {
            name: "import",
            total: None,
        });
        if i == 0 {
            progress.event(Event::Size { bytes });
        }
        progress.event(Event::Item {
            unit: "bundle",
            index: i as u64 + 1,
            total,
        });
        let result = import_bundle_with(store, &archive, bundle, &options.domain, options.repair, progress);
        let shown = bundle.display().to_string();
        match &result {
            Ok(ImportOutcome::Imported { instances, linkage, .. }) => {
                summary.imported += 1;
                summary.instances += instances;
                match linkage {
                    ImportLink::Queued(k) => summary.links_queued += *k as u64,
                    ImportLink::AutoLinked(_) => summary.auto_linked += 1,
                    _ => {}
                }
                progress.event(Event::Imported {
                    bundle: shown,
                    outcome: "imported",
                    instances: *instances,
                });
            }
            Ok(ImportOutcome::Repaired { instances }) => {
                summary.imported += 1;
                summary.instances += instances;
                progress.event(Event::Imported {
                    bundle: shown,
                    outcome: "repaired",
                    instances: *instances,
                });
            }
            Ok(ImportOutcome::AlreadyImported) => {
                summary.already_imported += 1;
                progress.event(Event::Imported {
                    bundle: shown,
                    outcome: "already-imported",
                    instances: 0,
                });
            }
            Err(e) => {
                summary.refused += 1;
                progress.event(Event::Refused {
                    bundle: shown,
                    reason: e.to_string(),
                });
            }
        }
        on_bundle(bundle, &result);
    }
    refresh_index(store, &archive).map_err(|source| RunError::Index {
        dir: archive_dir.to_path_buf(),
        source,
    })?;
    Ok(summary)
}
