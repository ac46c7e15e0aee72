//! Releases to researchers: part of the archive, in DICOM (the archive's files with
//! `index.csv`) or BIDS (NIfTI converted by dcm2niix, with sidecars and tables) format, with a
//! README, participants table and `SHA256SUMS`; written as one tar sealed with age to the
//! researcher's recipient, or as a plain folder. Every release is audited.
//!
//! Patients are released one at a time in pseudonym order, each from its own index rows, and
//! the tables are spooled to scratch files: memory does not grow with the cohort. The same
//! archive and selection give the same files byte for byte, except the release date in README
//! and CHANGES (`SOURCE_DATE_EPOCH` fixes it, as for reproducible builds).

pub mod bids;
pub mod config;
mod dicom;
pub mod metadata;
pub mod package;
pub mod subjects;

use crate::archive::Archive;
use crate::store::{Store, StoreError};
use bids::{BidsOptions, BidsRelease, NotConverted};
use chrono::NaiveDate;
use config::ReleaseConfig;
pub use metadata::Format;
use metadata::{About, BidsFacts, Counts, SeriesOutcomes};
pub use package::Compression;
use package::Package;
use pseal::keys::StewardRecipient;
use pseal::progress::{Event, Progress};
use pseal::pseudonym::Pseudonym;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use subjects::Patient;
use thiserror::Error;

/// Which patients a release holds.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Everything in the archive.
    All,
    /// Only these pseudonyms.
    Pseudonyms(BTreeSet<Pseudonym>),
}

/// Where a release goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// One tar file, sealed with age to the researcher.
    Package {
        /// The file (must not exist).
        path: PathBuf,
        /// The researcher's recipient.
        to: StewardRecipient,
        /// Compression inside the encryption.
        compression: Compression,
    },
    /// A plain folder (must not exist), for a steward who hands the data over another way.
    Folder(PathBuf),
}

impl Output {
    /// The file or folder written.
    pub fn path(&self) -> &Path {
        match self {
            Output::Package { path, .. } | Output::Folder(path) => path,
        }
    }
}

/// Everything that defines a release.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    /// The pseudonym domain (research project).
    pub domain: String,
    /// The patients.
    pub selection: Selection,
    /// The format; BIDS needs its options.
    pub format: Format,
    /// BIDS options (for [`Format::Bids`]).
    pub bids: Option<BidsOptions>,
    /// Where it goes.
    pub output: Output,
    /// The steward's settings (README, `dataset_description.json`).
    pub config: ReleaseConfig,
    /// The release date written into README and CHANGES.
    pub date: NaiveDate,
}

/// What a release wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    /// `dicom` or `bids`.
    pub format: &'static str,
    /// The package file or folder.
    pub out: PathBuf,
    /// Patients included.
    pub patients: u64,
    /// Sessions included.
    pub sessions: u64,
    /// DICOM instances read (and, in a DICOM release, included).
    pub instances: u64,
    /// Files in the release.
    pub files: u64,
    /// SHA-256 of the package file, or of the folder's `SHA256SUMS` (recorded in the audit log).
    pub sha256: String,
    /// What became of the series (BIDS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesOutcomes>,
    /// The first series that were not converted (BIDS; all are in `sourcedata/series.tsv`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_converted: Vec<NotConverted>,
}

/// Why a release could not be made. Nothing is left under the output's name when it fails.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// A store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Pseudonyms that are not in the store.
    #[error("these pseudonyms are not in the archive: {0}")]
    Unknown(String),
    /// Nothing selected.
    #[error("the selection holds no instance; nothing to release")]
    Empty,
    /// The output exists already.
    #[error("{0} already exists; a release never overwrites: choose a new name")]
    Exists(PathBuf),
    /// BIDS without its options.
    #[error("--format bids needs the BIDS options (rules and dcm2niix)")]
    NoBidsOptions,
    /// A scratch file beside the output could not be written (disk full, permissions).
    #[error("{out}: the release's scratch files beside it cannot be written: {source}")]
    Scratch {
        /// The release being written.
        out: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The release file or folder cannot be written; names its role, never a temporary name.
    #[error(transparent)]
    Path(#[from] pseal::role::PathError),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A `--pseudonyms FILE` that cannot be used.
#[derive(Debug, Error)]
pub enum PseudonymsFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line is not a pseudonym (the steward wrote the file; the line number says where).
    #[error("{}:{line}: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// Why the line is not a pseudonym.
        source: pseal::pseudonym::PseudonymError,
    },
}

/// Parses a pseudonyms file: one per line, `#` comments and blank lines ignored.
pub fn read_pseudonyms(path: &Path) -> Result<BTreeSet<Pseudonym>, PseudonymsFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PseudonymsFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut set = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let p = line.parse().map_err(|source| PseudonymsFileError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            source,
        })?;
        set.insert(p);
    }
    Ok(set)
}

/// A `SOURCE_DATE_EPOCH` that is not a number of seconds since 1970.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("SOURCE_DATE_EPOCH={0} is not a number of seconds since 1970")]
pub struct BadSourceDateEpoch(pub String);

/// The release date: `SOURCE_DATE_EPOCH` (seconds since 1970, UTC) when set, else today (UTC).
pub fn release_date() -> Result<NaiveDate, BadSourceDateEpoch> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.date_naive())
            .ok_or(BadSourceDateEpoch(v)),
        Err(_) => Ok(chrono::Utc::now().date_naive()),
    }
}

/// Running totals over the released patients.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) counts: Counts,
    pub(crate) deidentification: BTreeMap<String, u64>,
}

impl Stats {
    pub(crate) fn add(&mut self, p: &Patient) {
        self.counts.participants += 1;
        self.counts.sessions += p.sessions.len() as u64;
        self.counts.series += p.sessions.iter().map(|s| s.series.len() as u64).sum::<u64>();
        self.counts.instances += p.instances() as u64;
    }
}

/// The pseudonyms to release, sorted, after checking a list against the domain.
fn selected(store: &Store, domain: &str, selection: &Selection) -> Result<Vec<String>, ReleaseError> {
    let present = store.pseudonyms_with_instances(domain)?;
    let chosen = match selection {
        Selection::All => present,
        Selection::Pseudonyms(wanted) => {
            let have: BTreeSet<&str> = present.iter().map(String::as_str).collect();
            let wanted: Vec<String> = wanted.iter().map(ToString::to_string).collect();
            let missing: Vec<&str> = wanted
                .iter()
                .map(String::as_str)
                .filter(|p| !have.contains(p))
                .collect();
            if !missing.is_empty() {
                return Err(ReleaseError::Unknown(format!(
                    "{} (domain {domain})",
                    missing.join(", ")
                )));
            }
            wanted
        }
    };
    if chosen.is_empty() {
        return Err(ReleaseError::Empty);
    }
    Ok(chosen)
}

/// Writes the release `request` describes from `archive`, and records it in the audit log.
/// A release never mixes research projects: only the domain's patients can be selected.
pub fn release(
    store: &mut Store,
    archive: &Archive,
    request: &ReleaseRequest,
    progress: &dyn Progress,
) -> Result<ReleaseSummary, ReleaseError> {
    let out = request.output.path().to_path_buf();
    if out.exists() {
        return Err(ReleaseError::Exists(out));
    }
    let bids_options = match request.format {
        Format::Bids => Some(request.bids.as_ref().ok_or(ReleaseError::NoBidsOptions)?),
        Format::Dicom => None,
    };
    let pseudonyms = selected(store, &request.domain, &request.selection)?;
    // Rows archived by an older pseal lack the details index.csv now lists.
    store.backfill_details(archive.dir())?;
    let archive_dir = archive.dir().canonicalize().map_err(|source| ReleaseError::Io {
        path: archive.dir().to_path_buf(),
        source,
    })?;

    let root = request.format.root();
    // The output's role is named and never the scratch names beside it (tempfile adds them).
    let io_out = |source: io::Error| {
        use pseal::role::{PathError, Role};
        if source.kind() == io::ErrorKind::AlreadyExists {
            return ReleaseError::Exists(out.clone());
        }
        let role = match request.output {
            Output::Package { .. } => Role::ReleaseFile,
            Output::Folder(_) => Role::ReleaseFolder,
        };
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if parent.is_dir() {
            ReleaseError::Path(PathError::new(role, &out, source))
        } else {
            let detail = format!("its folder {} does not exist or is not a folder", parent.display());
            ReleaseError::Path(PathError::explained(role, &out, source, detail))
        }
    };
    let mut package = match &request.output {
        Output::Package { path, to, compression } => Package::tar(path, to, *compression, root),
        Output::Folder(path) => Package::folder(path, root),
    }
    .map_err(io_out)?;

    let mut stats = Stats::default();
    progress.event(Event::Phase {
        name: "release",
        total: Some(count_steps(store, &pseudonyms, request.format)?),
    });
    let mut bids_writer = match bids_options {
        Some(o) => Some(BidsRelease::new(o, package.work_dir(), &out)?),
        None => None,
    };
    let mut dicom_writer = match bids_options {
        None => Some(dicom::DicomRelease::new(package.work_dir(), &out)?),
        Some(_) => None,
    };
    for pseudonym in &pseudonyms {
        let mut rows = Vec::new();
        store.for_each_index_row_of(pseudonym, |row| {
            rows.push(row);
            Ok(())
        })?;
        if let Some(w) = dicom_writer.as_mut() {
            w.add_patient(&mut package, &out, &archive_dir, pseudonym, rows, &mut stats, progress)?;
        } else if let Some(w) = bids_writer.as_mut() {
            let patient = Patient::from_rows(pseudonym, rows);
            w.add_patient(&mut package, &out, &archive_dir, &patient, &mut stats, progress)?;
        }
    }

    let facts = match (&bids_writer, bids_options) {
        (Some(w), Some(o)) => Some(BidsFacts {
            rules: (o.rules.name.clone(), o.rules.sha256.clone()),
            dcm2niix_version: o.converter.version().to_string(),
            dcm2niix_options: bids::dcm2niix::OPTIONS.join(" "),
            outcomes: w.outcomes.clone(),
            keep_unconverted: o.keep_unconverted,
        }),
        _ => None,
    };
    // Merges and splits of pseudonyms since the domain's previous release (none before the first:
    // researchers never saw a pseudonym retired before then), limited to the pseudonyms a listed
    // selection holds, so that a release tells where data under a retired pseudonym went.
    let pseudonym_changes = match crate::linkage::changes::last_release_at(store, &request.domain)? {
        None => Vec::new(),
        Some(since) => crate::linkage::changes::merges_since(store, &request.domain, since)?
            .into_iter()
            .filter(|c| match &request.selection {
                Selection::All => true,
                Selection::Pseudonyms(listed) => listed
                    .iter()
                    .any(|p| p.to_string() == c.survivor || p.to_string() == c.retired),
            })
            .collect(),
    };
    let about = About {
        format: request.format,
        domain: &request.domain,
        date: request.date,
        listed: match &request.selection {
            Selection::All => None,
            Selection::Pseudonyms(p) => Some(p.len()),
        },
        config: &request.config,
        counts: &stats.counts,
        deidentification: &stats.deidentification,
        bids: facts.as_ref(),
        pseudonym_changes: &pseudonym_changes,
    };
    let mut not_converted = Vec::new();
    if let Some(w) = bids_writer {
        not_converted = w.not_converted.clone();
        w.finish(&mut package, &out)?;
        if let Some(f) = &facts {
            package
                .add_bytes("dataset_description.json", &metadata::dataset_description(&about, f))
                .map_err(io_out)?;
        }
    }
    if let Some(w) = dicom_writer {
        w.finish(&mut package, &out)?;
    }
    package
        .add_bytes("README", metadata::readme(&about).as_bytes())
        .map_err(io_out)?;
    package
        .add_bytes("CHANGES", metadata::changes(&about).as_bytes())
        .map_err(io_out)?;
    let written = package.finish().map_err(io_out)?;

    let summary = ReleaseSummary {
        format: request.format.name(),
        out: written.out,
        patients: stats.counts.participants,
        sessions: stats.counts.sessions,
        instances: stats.counts.instances,
        files: written.files,
        sha256: written.sha256,
        series: facts.map(|f| f.outcomes),
        not_converted,
    };
    audit_release(store, request, &summary)?;
    Ok(summary)
}

/// Progress steps: instances (DICOM) or series (BIDS).
fn count_steps(store: &Store, pseudonyms: &[String], format: Format) -> Result<u64, ReleaseError> {
    let mut steps = 0u64;
    for p in pseudonyms {
        let mut series = BTreeSet::new();
        let mut instances = 0u64;
        store.for_each_index_row_of(p, |row| {
            instances += 1;
            series.insert(row.series_uid);
            Ok(())
        })?;
        steps += match format {
            Format::Dicom => instances,
            Format::Bids => series.len() as u64,
        };
    }
    Ok(steps)
}

fn audit_release(store: &mut Store, request: &ReleaseRequest, summary: &ReleaseSummary) -> Result<(), ReleaseError> {
    let (to, kind) = match &request.output {
        Output::Package { to, .. } => (Some(to.to_string()), "package"),
        Output::Folder(_) => (None, "folder"),
    };
    let mut detail = serde_json::json!({
        "to": to,
        "output": kind,
        "format": summary.format,
        "domain": request.domain,
        "patients": summary.patients,
        "instances": summary.instances,
        "files": summary.files,
        "file": summary.out.file_name().map(|n| n.to_string_lossy().into_owned()),
        "sha256": summary.sha256,
    });
    if let (Some(b), Some(obj)) = (&request.bids, detail.as_object_mut()) {
        obj.insert("rules".into(), serde_json::json!(b.rules.name));
        obj.insert("rules_sha256".into(), serde_json::json!(b.rules.sha256));
        obj.insert("dcm2niix".into(), serde_json::json!(b.converter.version()));
        obj.insert("series".into(), serde_json::json!(summary.series));
    }
    store.audit("release", &detail)?;
    Ok(())
}
