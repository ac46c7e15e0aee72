//! Releases to researchers: part of the archive with its index, as tar + zstd, sealed with age to
//! the researcher's recipient. Stock `age -d | zstd -d | tar -x` opens it. Every release is audited.

use crate::archive::{Archive, IndexRow, INDEX_COLUMNS};
use crate::store::{audit, Store, StoreError};
use pseal::bundle::writer::normalized_header;
use pseal::keys::StewardRecipient;
use pseal::progress::{Event, Progress};
use pseal::pseudonym::Pseudonym;
use serde::Serialize;
use sha2::Digest;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Which patients a release holds.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Everything in the archive.
    All,
    /// Only these pseudonyms.
    Pseudonyms(BTreeSet<Pseudonym>),
}

/// What a release wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    /// The package file.
    pub out: PathBuf,
    /// Patients included.
    pub patients: u64,
    /// Instances included.
    pub instances: u64,
    /// SHA-256 of the package file (recorded in the audit log).
    pub sha256: String,
}

/// Why a release could not be made.
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
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Encryption setup failed.
    #[error("cannot encrypt to the researcher: {0}")]
    Encrypt(String),
    /// The release file cannot be written; names its role, never a temporary name.
    #[error(transparent)]
    Path(#[from] pseal::role::PathError),
}

/// Parses a pseudonyms file: one per line, `#` comments and blank lines ignored.
pub fn read_pseudonyms(path: &Path) -> Result<BTreeSet<Pseudonym>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut set = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let p = line.parse().map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        set.insert(p);
    }
    Ok(set)
}

/// Writes a release package of `selection` within pseudonym `domain` to `out`, sealed to `to`.
/// A release never mixes research projects: only the domain's patients can be selected.
#[allow(clippy::too_many_arguments)]
pub fn release(
    store: &mut Store,
    domain: &str,
    archive: &Archive,
    to: &StewardRecipient,
    selection: &Selection,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ReleaseSummary, ReleaseError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReleaseError::Io {
            path: path.clone(),
            source,
        }
    };
    let mut rows: Vec<IndexRow> = Vec::new();
    let wanted: Option<BTreeSet<String>> = match selection {
        Selection::All => None,
        Selection::Pseudonyms(set) => Some(set.iter().map(ToString::to_string).collect()),
    };
    store.for_each_index_row(|row| {
        if row.domain == domain && wanted.as_ref().is_none_or(|w| w.contains(&row.pseudonym)) {
            rows.push(row);
        }
        Ok(())
    })?;
    if let Some(w) = &wanted {
        let found: BTreeSet<&String> = rows.iter().map(|r| &r.pseudonym).collect();
        let missing: Vec<&str> = w.iter().filter(|p| !found.contains(p)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(ReleaseError::Unknown(format!(
                "{} (domain {domain})",
                missing.join(", ")
            )));
        }
    }
    if rows.is_empty() {
        return Err(ReleaseError::Empty);
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let temp = tempfile::Builder::new()
        .prefix(".pseal-release-")
        .tempfile_in(&dir)
        .map_err(|e| {
            use pseal::role::{PathError, Role};
            if dir.is_dir() {
                PathError::new(Role::ReleaseFile, out, e)
            } else {
                let detail = format!("its folder {} does not exist or is not a folder", dir.display());
                PathError::explained(Role::ReleaseFile, out, e, detail)
            }
        })?;
    let recipient = to.age_recipient();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .map_err(|e| ReleaseError::Encrypt(e.to_string()))?;
    let stream = enc.wrap_output(io::BufWriter::new(temp)).map_err(io_at(out))?;
    let zstd = pseal::bundle::Compressor::new().map_err(io_at(out))?.writer(stream);
    let mut tar = tar::Builder::new(zstd);

    progress.event(Event::Phase {
        name: "release",
        total: Some(rows.len() as u64),
    });
    let mut index = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    index.write_record(INDEX_COLUMNS).map_err(|e| ReleaseError::Io {
        path: out.to_path_buf(),
        source: io::Error::other(e),
    })?;
    for row in &rows {
        let src = archive.dir().join(&row.path);
        let file = std::fs::File::open(&src).map_err(io_at(&src))?;
        let size = file.metadata().map_err(io_at(&src))?.len();
        let h = normalized_header(&format!("archive/{}", row.path), size).map_err(io_at(out))?;
        tar.append(&h, file).map_err(io_at(out))?;
        index.serialize(row).map_err(|e| ReleaseError::Io {
            path: out.to_path_buf(),
            source: io::Error::other(e),
        })?;
        progress.event(Event::Bytes { n: size });
        progress.event(Event::Advance { n: 1 });
    }
    let index = index.into_inner().map_err(|e| ReleaseError::Io {
        path: out.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    let h = normalized_header("archive/index.csv", index.len() as u64).map_err(io_at(out))?;
    tar.append(&h, index.as_slice()).map_err(io_at(out))?;
    let zstd = tar.into_inner().map_err(io_at(out))?;
    let (stream, _) = pseal::bundle::Compressor::finish(zstd).map_err(io_at(out))?;
    let mut buffered = stream.finish().map_err(io_at(out))?;
    buffered.flush().map_err(io_at(out))?;
    let temp = buffered.into_inner().map_err(|e| ReleaseError::Io {
        path: out.to_path_buf(),
        source: e.into_error(),
    })?;
    temp.as_file().sync_all().map_err(io_at(out))?;
    temp.persist_noclobber(out)
        .map_err(|e| pseal::role::PathError::new(pseal::role::Role::ReleaseFile, out, e.error))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(&dir))?;

    let mut hasher = sha2::Sha256::new();
    let mut f = std::fs::File::open(out).map_err(io_at(out))?;
    io::copy(&mut f, &mut hasher).map_err(io_at(out))?;
    let sha256 = hex::encode(hasher.finalize());
    let patients = rows.iter().map(|r| &r.pseudonym).collect::<BTreeSet<_>>().len() as u64;
    let summary = ReleaseSummary {
        out: out.to_path_buf(),
        patients,
        instances: rows.len() as u64,
        sha256,
    };
    let path = store.db_path();
    let tx = store.conn.transaction().map_err(|source| StoreError::Database {
        path: path.clone(),
        source,
    })?;
    audit::append(
        &tx,
        &store.secrets,
        "release",
        &serde_json::json!({ "to": to.to_string(), "domain": domain, "patients": patients, "instances": summary.instances, "file": out.file_name().map(|n| n.to_string_lossy().into_owned()), "sha256": summary.sha256 }),
    )
    .map_err(|source| StoreError::Database { path: path.clone(), source })?;
    tx.commit().map_err(|source| StoreError::Database { path, source })?;
    Ok(summary)
}
