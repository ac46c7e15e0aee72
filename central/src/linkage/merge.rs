//! Reviewing and carrying out links: `pseal-central links show | accept | reject | undo`.
//!
//! Accepting a link merges two patients: the studies of the patient seen later are re-keyed
//! under the surviving (earlier) pseudonym with its date offset, so intervals across both
//! hospitals stay true, and its age at scan (from each bundle's sealed birth date) stays what it
//! was. Re-keying starts from the bundles as received (the steward keeps them: they are also
//! what `import --repair` rebuilds from), so the result is byte for byte what an import under the
//! survivor would have written. Undo splits them again the same way. The retired pseudonym stays
//! in the store as an alias of the survivor.
//!
//! Order of durable steps, so that a kill at any point converges when the command is run again
//! (every `links` command first finishes what an interrupted one left):
//! 1. the decision is committed with `pending` set (`merge` or `split`) and audited;
//! 2. every moving bundle is re-keyed under its new pseudonym into the archive's staging folder,
//!    flushed and renamed into place (`archive::Batch`; deterministic, so a re-run writes the
//!    same bytes to the same paths);
//! 3. one transaction moves the instance rows, updates the aliases, records the old paths for
//!    removal, marks `index.csv` stale and audits the merge;
//! 4. the old files are removed (only paths no instance row holds), then `pending` is cleared;
//! 5. the caller rewrites `index.csv` (`import::refresh_index`).

use crate::archive::{Archive, IndexRow};
use crate::fault;
use crate::rekey::{self, RekeyContext, RekeyError};
use crate::store::links::{self, LinkSide, LinkStatus};
use crate::store::merges::MovedBundle;
use crate::store::{PatientRef, Store, StoreError};
use pseal::bundle::{BundleError, BundleReader};
use pseal::identity::{IdentityError, IdentityOpener, LinkageRecord, LocalId};
use pseal::progress::{Event, Progress};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Steps of a merge or split, in order, for the crash tests (`PSEAL_TEST_ABORT_AT`).
pub const MERGE_STEPS: &[&str] = &[
    "link-decided",
    "link-archive-file",
    "link-archive-synced",
    "link-committed",
    "link-cleaned",
];

/// Why a links command could not do what was asked. Nothing is half-done: see the module's
/// order of steps.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No link with that number.
    #[error("there is no link {0} in this store (`pseal-central links list --all` lists them)")]
    NoSuchLink(i64),
    /// The link is not in a state the command applies to.
    #[error("link {id} is {status}; {what}")]
    State {
        /// The link.
        id: i64,
        /// Its status.
        status: &'static str,
        /// What the command needs, and what to do.
        what: String,
    },
    /// Bundles needed to re-key are not in the folders given.
    #[error("the bundles as received are needed to re-key the studies, and these are not under {dirs}: {names}; give the folder(s) where the bundles are kept with --bundles")]
    MissingBundles {
        /// The folders searched.
        dirs: String,
        /// The file names looked for.
        names: String,
    },
    /// A kept bundle is not the one the store imported.
    #[error("{path}: {reason}")]
    WrongBundle {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A kept bundle failed verification.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Its identity record could not be read.
    #[error("{path}: {source}")]
    Identity {
        /// The bundle.
        path: PathBuf,
        /// Why.
        source: IdentityError,
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
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing or removing archive files failed.
    #[error("writing the archive {path}: {source}")]
    Archive {
        /// The archive folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The bundles as received, found by their file names (`<site>-<first 16 hex digits of the
/// bundle ID>.pseal`, as `pseal export` names them) under the folders given.
#[derive(Debug, Default)]
pub struct KeptBundles {
    dirs: Vec<PathBuf>,
    by_name: HashMap<String, PathBuf>,
}

impl KeptBundles {
    /// Lists every `.pseal` file under `dirs` (recursively).
    pub fn new(dirs: &[PathBuf]) -> Result<KeptBundles, MergeError> {
        let mut by_name = HashMap::new();
        for dir in dirs {
            for entry in walkdir::WalkDir::new(dir).follow_links(true) {
                let entry = entry.map_err(|e| MergeError::Archive {
                    path: dir.clone(),
                    source: e.into(),
                })?;
                if entry.file_type().is_file() && entry.path().extension().is_some_and(|x| x == "pseal") {
                    by_name
                        .entry(entry.file_name().to_string_lossy().into_owned())
                        .or_insert_with(|| entry.path().to_path_buf());
                }
            }
        }
        Ok(KeptBundles {
            dirs: dirs.to_vec(),
            by_name,
        })
    }

    /// The file name a bundle was written under.
    pub fn file_name(site: &str, bundle_id: &str) -> String {
        format!("{site}-{}.pseal", bundle_id.get(..16).unwrap_or(bundle_id))
    }

    fn find(&self, site: &str, bundle_id: &str) -> Option<&Path> {
        self.by_name
            .get(&Self::file_name(site, bundle_id))
            .map(PathBuf::as_path)
    }

    fn dirs_text(&self) -> String {
        if self.dirs.is_empty() {
            return "(no --bundles folder given)".into();
        }
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

use crate::store::merges::RecordedBundle as Recorded;

/// One bundle whose studies move to another patient's pseudonym.
#[derive(Debug, Clone)]
struct Move {
    bundle: Recorded,
    /// The patient whose pseudonym its instances are under now.
    from: i64,
    /// The patient whose pseudonym they go under.
    to: i64,
}

/// What a links command did.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    /// Bundles re-keyed.
    pub bundles: usize,
    /// Instances written under their new pseudonym.
    pub instances: usize,
    /// Old files removed.
    pub removed: usize,
    /// Links whose interrupted work was finished first.
    pub resumed: Vec<i64>,
}

fn recorded_of(store: &Store, domain: &str, rows: &BTreeSet<i64>) -> Result<Vec<Recorded>, MergeError> {
    Ok(store.recorded_bundles(domain, rows)?)
}

/// The bundles that must move for the clusters of `seeds` to be as `links` says (with `edge`
/// counted as linked, or `without` as not linked, for a decision not yet committed).
fn plan(
    store: &Store,
    domain: &str,
    seeds: &[i64],
    edge: Option<(i64, i64)>,
    without: Option<i64>,
) -> Result<Vec<Move>, MergeError> {
    let desired = store.clusters_around(seeds, edge, without)?;
    let mut moving: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (&row, &to) in &desired {
        let from = store.current_survivor(row)?;
        if from != to {
            moving.insert(row, (from, to));
        }
    }
    let rows: BTreeSet<i64> = moving.keys().copied().collect();
    Ok(recorded_of(store, domain, &rows)?
        .into_iter()
        .map(|bundle| {
            let (from, to) = moving[&bundle.owner];
            Move { bundle, from, to }
        })
        .collect())
}

fn check_bundles(kept: &KeptBundles, moves: &[Move]) -> Result<(), MergeError> {
    let missing: Vec<String> = moves
        .iter()
        .filter(|m| kept.find(&m.bundle.site, &m.bundle.bundle_id).is_none())
        .map(|m| KeptBundles::file_name(&m.bundle.site, &m.bundle.bundle_id))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MergeError::MissingBundles {
            dirs: kept.dirs_text(),
            names: missing.join(", "),
        })
    }
}

fn link_or_fail(store: &Store, id: i64) -> Result<links::Link, MergeError> {
    store.link(id)?.ok_or(MergeError::NoSuchLink(id))
}

/// Finishes every decision an interrupted command left pending (re-keying, cleanup).
pub fn resume(
    store: &mut Store,
    archive: &Archive,
    kept: &KeptBundles,
    progress: &dyn Progress,
) -> Result<Carried, MergeError> {
    let pending = store.pending_links()?;
    let mut total = Carried::default();
    for (id, what) in pending {
        let done = if what == "cleanup" {
            cleanup(store, archive)?
        } else {
            carry_out(store, archive, id, kept, progress)?
        };
        total.bundles += done.bundles;
        total.instances += done.instances;
        total.removed += done.removed;
        total.resumed.push(id);
    }
    Ok(total)
}

/// Accepts link `id`: merges the two patients (see the module's order of steps).
pub fn accept(
    store: &mut Store,
    archive: &Archive,
    id: i64,
    kept: &KeptBundles,
    progress: &dyn Progress,
) -> Result<Carried, MergeError> {
    let resumed = resume(store, archive, kept, progress)?;
    let link = link_or_fail(store, id)?;
    if link.status == LinkStatus::Linked {
        return Ok(resumed);
    }
    let (a, b) = (link.earlier.patient_id, link.later.patient_id);
    refuse_same_site(store, &link)?;
    let steps = Decision {
        id,
        link: &link,
        join: Some((a, b)),
        split: None,
    };
    steps.carry(store, archive, kept, progress, resumed, |store| {
        let desired = store.clusters_around(&[a, b], Some((a, b)), None)?;
        let into = desired.get(&a).copied().unwrap_or(a);
        let from_row = [a, b]
            .into_iter()
            .map(|r| store.current_survivor(r))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .find(|s| *s != into)
            .unwrap_or(b);
        let into_p = pseudonym(store, into)?;
        let from_p = pseudonym(store, from_row)?;
        store.accept_link(
            id,
            &from_p,
            &into_p,
            &serde_json::json!({ "link": id, "domain": link.domain, "merged_from": from_p, "merged_into": into_p }),
        )?;
        Ok(())
    })
}

/// What accept and undo share: the link decided on and the clusters it makes (`join` two patient
/// rows, or `split` the link's merge apart).
struct Decision<'a> {
    id: i64,
    link: &'a links::Link,
    join: Option<(i64, i64)>,
    split: Option<i64>,
}

impl Decision<'_> {
    /// Plans the moves, checks every bundle they re-key is kept (before anything changes), records
    /// the decision with `record`, then carries it out; `resumed` is what finishing earlier
    /// decisions did.
    fn carry(
        &self,
        store: &mut Store,
        archive: &Archive,
        kept: &KeptBundles,
        progress: &dyn Progress,
        resumed: Carried,
        record: impl FnOnce(&mut Store) -> Result<(), MergeError>,
    ) -> Result<Carried, MergeError> {
        let rows = [self.link.earlier.patient_id, self.link.later.patient_id];
        let moves = plan(store, &self.link.domain, &rows, self.join, self.split)?;
        check_bundles(kept, &moves)?;
        record(store)?;
        fault::point("link-decided");
        let mut done = carry_out(store, archive, self.id, kept, progress)?;
        done.resumed = resumed.resumed;
        Ok(done)
    }
}

/// Undoes accepted link `id`: the patients get their own pseudonyms and date offsets again.
pub fn undo(
    store: &mut Store,
    archive: &Archive,
    id: i64,
    kept: &KeptBundles,
    progress: &dyn Progress,
) -> Result<Carried, MergeError> {
    let resumed = resume(store, archive, kept, progress)?;
    let link = link_or_fail(store, id)?;
    match link.status {
        LinkStatus::Linked => {}
        LinkStatus::Undone => return Ok(resumed),
        other => {
            return Err(MergeError::State {
                id,
                status: other.as_str(),
                what: "only an accepted (linked) link can be undone".into(),
            })
        }
    }
    let steps = Decision {
        id,
        link: &link,
        join: None,
        split: Some(id),
    };
    steps.carry(store, archive, kept, progress, resumed, |store| {
        store.undo_link(
            id,
            &serde_json::json!({ "link": id, "domain": link.domain, "merged_from": link.merged_from, "merged_into": link.merged_into }),
        )?;
        Ok(())
    })
}

/// Rejects queued link `id`: the two stay two patients (nothing in the archive changes).
pub fn reject(store: &mut Store, id: i64, reason: Option<&str>) -> Result<(), MergeError> {
    let link = link_or_fail(store, id)?;
    match link.status {
        LinkStatus::Queued => {}
        LinkStatus::Rejected => return Ok(()),
        other => {
            return Err(MergeError::State {
                id,
                status: other.as_str(),
                what: "only a queued link can be rejected (an accepted one is undone with `links undo`)".into(),
            })
        }
    }
    Ok(store.reject_link(
        id,
        &serde_json::json!({ "link": id, "domain": link.domain, "pseudonyms": [link.earlier.pseudonym, link.later.pseudonym], "reason": reason }),
    )?)
}

/// A merge must not give one site two local IDs under one pseudonym: a hospital that has two IDs
/// for one person resolves that itself.
fn refuse_same_site(store: &Store, link: &links::Link) -> Result<(), MergeError> {
    let (a, b) = (link.earlier.patient_id, link.later.patient_id);
    let both: Vec<String> = store
        .cluster_sites(a)?
        .intersection(&store.cluster_sites(b)?)
        .cloned()
        .collect();
    if both.is_empty() {
        Ok(())
    } else {
        Err(MergeError::State {
            id: link.id,
            status: link.status.as_str(),
            what: format!(
                "accepting it would give site {} two local IDs under one pseudonym; if they are one person, the site should merge its records",
                both.join(", ")
            ),
        })
    }
}

fn pseudonym(store: &Store, row: i64) -> Result<String, MergeError> {
    Ok(store.row_pseudonym(row)?)
}

/// Steps 2–4 for link `id`, whose decision is committed: re-key what must move, commit, clean.
fn carry_out(
    store: &mut Store,
    archive: &Archive,
    id: i64,
    kept: &KeptBundles,
    progress: &dyn Progress,
) -> Result<Carried, MergeError> {
    let link = link_or_fail(store, id)?;
    let (a, b) = (link.earlier.patient_id, link.later.patient_id);
    let moves = plan(store, &link.domain, &[a, b], None, None)?;
    check_bundles(kept, &moves)?;
    progress.event(Event::Phase {
        name: "merge",
        total: None,
    });
    let mut batch = archive.batch();
    let mut moved: Vec<(Move, Vec<IndexRow>)> = Vec::with_capacity(moves.len());
    let mut targets: HashMap<i64, PatientRef> = HashMap::new();
    for m in moves {
        if let std::collections::hash_map::Entry::Vacant(slot) = targets.entry(m.to) {
            slot.insert(store.patient_ref(m.to)?);
        }
        let target = &targets[&m.to];
        let path = kept
            .find(&m.bundle.site, &m.bundle.bundle_id)
            .map(Path::to_path_buf)
            .ok_or_else(|| MergeError::MissingBundles {
                dirs: kept.dirs_text(),
                names: KeptBundles::file_name(&m.bundle.site, &m.bundle.bundle_id),
            })?;
        let rows = rekey_bundle(
            store,
            archive,
            &mut batch,
            &path,
            &m.bundle,
            target,
            &link.domain,
            progress,
        )?;
        moved.push((m, rows));
    }
    batch.commit().map_err(|source| MergeError::Archive {
        path: archive.dir().to_path_buf(),
        source,
    })?;
    fault::point("link-archive-synced");
    let carried = commit_moves(store, id, &link.domain, &[a, b], &moved)?;
    fault::point("link-committed");
    let cleaned = cleanup(store, archive)?;
    Ok(Carried {
        removed: cleaned.removed,
        ..carried
    })
}

/// Re-keys one kept bundle under `target` into `batch`; returns its index rows.
#[allow(clippy::too_many_arguments)]
fn rekey_bundle(
    store: &Store,
    archive: &Archive,
    batch: &mut crate::archive::Batch<'_>,
    path: &Path,
    recorded: &Recorded,
    target: &PatientRef,
    domain: &str,
    progress: &dyn Progress,
) -> Result<Vec<IndexRow>, MergeError> {
    let p = path.to_path_buf();
    let verified = BundleReader::new(store.identity()).open(path, &archive.staging_dir())?;
    if verified.manifest.bundle_id != recorded.bundle_id || hex::encode(verified.manifest_digest) != recorded.digest {
        return Err(MergeError::WrongBundle {
            path: p,
            reason: "this is not the bundle the store imported under that name (another bundle ID or manifest)".into(),
        });
    }
    let identity_file = std::fs::File::open(verified.identity_path()).map_err(|source| MergeError::Archive {
        path: archive.dir().to_path_buf(),
        source,
    })?;
    let identity_err = |source| MergeError::Identity {
        path: p.clone(),
        source,
    };
    let mut opener =
        IdentityOpener::open(std::io::BufReader::new(identity_file), store.identity()).map_err(identity_err)?;
    drop(opener.take_linkage());
    if opener.header().bundle_id != recorded.bundle_id {
        return Err(MergeError::WrongBundle {
            path: p,
            reason: "its identity record belongs to another bundle".into(),
        });
    }
    let secrets = store.secrets();
    let archive_uid = |uid: &str| secrets.archive_uid(domain, uid);
    let ctx = RekeyContext {
        pseudonym: &target.pseudonym,
        date_offset_days: target.date_offset_days,
        domain,
        archive_uid: &archive_uid,
    };
    let mut rows = Vec::with_capacity(verified.instances().len());
    for (entry, staged) in verified.instances() {
        let record = opener
            .next_record()
            .map_err(identity_err)?
            .filter(|r| &r.entry == entry)
            .ok_or_else(|| MergeError::WrongBundle {
                path: p.clone(),
                reason: format!("the identity record does not list {entry} in order"),
            })?;
        let (rekeyed, row) =
            rekey::rekey_file(staged, entry, &record.captured, &ctx).map_err(|source| MergeError::Rekey {
                path: p.clone(),
                source,
            })?;
        batch
            .write(&row.path, |file| rekeyed.write_to_file(file))
            .map_err(|source| MergeError::Archive {
                path: archive.dir().to_path_buf(),
                source,
            })?;
        drop(rekeyed);
        let _ = std::fs::remove_file(staged);
        fault::point("link-archive-file");
        rows.push(row);
        progress.event(Event::Advance { n: 1 });
    }
    Ok(rows)
}

/// Step 3: one transaction moves the instance rows, updates aliases, records old paths.
fn commit_moves(
    store: &mut Store,
    id: i64,
    domain: &str,
    seeds: &[i64],
    moved: &[(Move, Vec<IndexRow>)],
) -> Result<Carried, MergeError> {
    let moves: Vec<MovedBundle<'_>> = moved
        .iter()
        .map(|(m, rows)| MovedBundle {
            bundle_id: &m.bundle.bundle_id,
            from: m.from,
            to: m.to,
            rows,
        })
        .collect();
    let (bundles, instances) = store.commit_moves(id, domain, seeds, &moves)?;
    let carried = Carried {
        bundles,
        instances,
        ..Carried::default()
    };
    Ok(carried)
}

/// Step 4: removes the files recorded for removal (never a path an instance row holds), the
/// folders left empty, then clears every `cleanup` mark.
fn cleanup(store: &mut Store, archive: &Archive) -> Result<Carried, MergeError> {
    let paths = store.cleanup_paths()?;
    let io = |source| MergeError::Archive {
        path: archive.dir().to_path_buf(),
        source,
    };
    let mut dirs = BTreeSet::new();
    let mut removed = 0;
    for rel in &paths {
        let full = archive.dir().join(rel);
        match std::fs::remove_file(&full) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let mut parent = full.parent();
        while let Some(d) = parent {
            if d == archive.dir() || !d.starts_with(archive.dir()) {
                break;
            }
            dirs.insert(d.to_path_buf());
            parent = d.parent();
        }
    }
    // Deepest first, so a folder emptied by removing its last sub-folder goes too.
    for d in dirs.iter().rev() {
        if std::fs::read_dir(d).map(|mut it| it.next().is_none()).unwrap_or(false) {
            let _ = std::fs::remove_dir(d);
        }
    }
    archive
        .sync_dirs(&[archive.dir().to_path_buf()].into_iter().collect())
        .map_err(io)?;
    fault::point("link-cleaned");
    store.clear_cleanup()?;
    Ok(Carried {
        removed,
        ..Carried::default()
    })
}

/// One side of a link as `links show` reveals it: who the patient is.
pub struct ShownSide {
    /// The side as `links list` shows it.
    pub side: LinkSide,
    /// The local ID at the site.
    pub local_id: LocalId,
    /// The linkage fields from the kept bundle (`None` when its site had linkage off then).
    pub record: Option<LinkageRecord>,
    /// The bundle they were read from.
    pub bundle: PathBuf,
}

/// Opens, from the kept bundles, the sealed identities of both sides of link `id` for the
/// steward to compare, and audits it with `reason` (refused when empty) before returning them.
/// Nothing of it is stored.
pub fn show(
    store: &mut Store,
    id: i64,
    kept: &KeptBundles,
    reason: &str,
) -> Result<(links::Link, [ShownSide; 2]), MergeError> {
    crate::store::reidentify::check_reason(reason)?;
    let link = link_or_fail(store, id)?;
    let staging = tempfile::Builder::new()
        .prefix(".pseal-show-")
        .tempdir_in(store.dir())
        .map_err(|source| MergeError::Archive {
            path: store.dir().to_path_buf(),
            source,
        })?;
    let earlier = open_side(store, &link.domain, &link.earlier, kept, staging.path())?;
    let later = open_side(store, &link.domain, &link.later, kept, staging.path())?;
    store.audit(
        "link-show",
        &serde_json::json!({ "link": id, "domain": link.domain, "pseudonyms": [link.earlier.pseudonym, link.later.pseudonym], "reason": reason }),
    )?;
    Ok((link, [earlier, later]))
}

fn open_side(
    store: &Store,
    domain: &str,
    side: &LinkSide,
    kept: &KeptBundles,
    staging: &Path,
) -> Result<ShownSide, MergeError> {
    let rows = BTreeSet::from([side.patient_id]);
    let recorded = recorded_of(store, domain, &rows)?;
    let Some((bundle, path)) = recorded
        .iter()
        .find_map(|r| kept.find(&r.site, &r.bundle_id).map(|p| (r, p.to_path_buf())))
    else {
        let names: Vec<String> = recorded
            .iter()
            .map(|r| KeptBundles::file_name(&r.site, &r.bundle_id))
            .collect();
        return Err(MergeError::MissingBundles {
            dirs: kept.dirs_text(),
            names: if names.is_empty() {
                format!("(no bundle of {} is recorded in this domain)", side.pseudonym)
            } else {
                names.join(" or ")
            },
        });
    };
    let verified = BundleReader::new(store.identity()).open(&path, staging)?;
    if verified.manifest.bundle_id != bundle.bundle_id {
        return Err(MergeError::WrongBundle {
            path,
            reason: "this is not the bundle the store imported under that name".into(),
        });
    }
    let file = std::fs::File::open(verified.identity_path()).map_err(|source| MergeError::Archive {
        path: staging.to_path_buf(),
        source,
    })?;
    let mut opener = IdentityOpener::open(std::io::BufReader::new(file), store.identity()).map_err(|source| {
        MergeError::Identity {
            path: path.clone(),
            source,
        }
    })?;
    Ok(ShownSide {
        side: side.clone(),
        local_id: opener.header().local_id.clone(),
        record: opener.take_linkage(),
        bundle: path,
    })
}
