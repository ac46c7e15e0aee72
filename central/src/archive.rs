//! The research archive: `ARCHIVE/<pseudonym>/<study>/<series>/<instance>.dcm` and `index.csv`.
//!
//! Every file is written under `ARCHIVE/.pseal-staging/` first, synced, then renamed into place, so
//! a crash never leaves a half-written file under a final name; the staging folder is emptied at
//! the start of each import (under the store lock) and removed at its end when empty. Names are
//! archive UIDs and pseudonyms only.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the staging folder inside the archive.
pub const STAGING: &str = ".pseal-staging";
/// Marker file naming the store an archive belongs to.
pub const MARKER: &str = ".pseal-archive";
/// Name of the index file inside the archive (contract).
pub const INDEX_FILE: &str = "index.csv";
/// Columns of `index.csv`, in order (contract: the first eight at least; columns are only ever
/// appended, so readers select them by name). They are [`IndexRow`]'s field names as serde
/// writes them (a test holds the two together), kept as a constant for the header of an empty
/// index and the release's column dictionary.
pub const INDEX_COLUMNS: [&str; 22] = [
    "pseudonym",
    "study_uid",
    "series_uid",
    "sop_uid",
    "modality",
    "study_date",
    "series_description",
    "path",
    "patient_age",
    "patient_sex",
    "domain",
    "session_index",
    "days_since_first_session",
    "series_number",
    "instance_number",
    "manufacturer",
    "model",
    "field_strength",
    "sequence_name",
    "slice_thickness",
    "rows",
    "columns",
];

/// One row of `index.csv`, the one type for it: re-keying makes it, the store keeps and numbers
/// it, releases read it. Its fields serialize in the order of [`INDEX_COLUMNS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexRow {
    /// The pseudonym.
    pub pseudonym: String,
    /// Archive Study Instance UID.
    pub study_uid: String,
    /// Archive Series Instance UID.
    pub series_uid: String,
    /// Archive SOP Instance UID.
    pub sop_uid: String,
    /// Modality.
    pub modality: String,
    /// Shifted study date.
    pub study_date: String,
    /// Series description.
    pub series_description: String,
    /// Path relative to the archive, `/`-separated.
    pub path: String,
    /// Age at scan.
    pub patient_age: String,
    /// Sex.
    pub patient_sex: String,
    /// The pseudonym domain (research project) the patient belongs to.
    pub domain: String,
    /// The patient's session (study) number, from 1, in order of shifted study date (and time);
    /// `ses-NN` in a BIDS release. Computed when rows are read from the store.
    pub session_index: String,
    /// Days from the patient's first session to this one (empty without a study date).
    pub days_since_first_session: String,
    /// Series Number.
    pub series_number: String,
    /// Instance Number.
    pub instance_number: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Manufacturer's Model Name.
    pub model: String,
    /// Magnetic Field Strength, tesla.
    pub field_strength: String,
    /// Sequence Name.
    pub sequence_name: String,
    /// Slice Thickness, mm.
    pub slice_thickness: String,
    /// Rows.
    pub rows: String,
    /// Columns.
    pub columns: String,
    /// Study Time: orders two sessions of one day; not a column.
    #[serde(skip)]
    pub study_time: String,
}

/// Why a folder is not this store's archive (see [`Archive::bind`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The folder's marker names another store.
    #[error("{} belongs to another pseal store ({}); use that store's archive folder", dir.display(), marker.display())]
    OtherStore {
        /// The archive folder.
        dir: PathBuf,
        /// Its marker file.
        marker: PathBuf,
    },
    /// The folder holds files and no marker.
    #[error("{} is not empty and is not a pseal archive; give an empty or new folder", dir.display())]
    NotAnArchive {
        /// The folder.
        dir: PathBuf,
    },
    /// A new folder for a store that archived instances elsewhere.
    #[error("this store already archived instances in another folder; {} is not its archive", dir.display())]
    ArchivedElsewhere {
        /// The folder.
        dir: PathBuf,
    },
    /// The folder or its marker could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The folder or marker.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// An archive folder.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: PathBuf,
    /// The marker to write before the first file, when [`Archive::bind`] found a new folder.
    pending_marker: std::cell::RefCell<Option<String>>,
}

fn safe_component(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Archive {
    /// The archive at `dir`, as found (no folder created, no marker pending).
    fn at(dir: &Path) -> Archive {
        Archive {
            dir: dir.to_path_buf(),
            pending_marker: std::cell::RefCell::new(None),
        }
    }

    /// Opens (creating if needed) the archive at `dir`.
    pub fn open(dir: &Path) -> io::Result<Archive> {
        fs::create_dir_all(dir.join(STAGING))?;
        Ok(Archive::at(dir))
    }

    /// Opens the archive of `store` at `dir` (creating a new one only while the store has archived
    /// nothing) and empties its staging folder. Call under the store lock.
    /// With `rebuild`, an empty folder is accepted as the store's archive even after it archived
    /// instances elsewhere (to rebuild a lost archive with `import --repair`).
    pub fn open_for(store: &crate::Store, dir: &Path, rebuild: bool) -> Result<Archive, crate::StoreError> {
        let io = |source| crate::StoreError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let archive = Archive::open(dir).map_err(io)?;
        archive.clean_staging().map_err(io)?;
        let id = store.store_id()?;
        let elsewhere = store.has_instances()? && !rebuild;
        archive.bind(&id, elsewhere)?;
        Ok(archive)
    }

    /// Opens the archive of `store` at `dir` to read it, as a release does: the folder must exist
    /// and be this store's archive (or, while the store has archived nothing, be empty). Nothing is
    /// created and the staging folder is left alone, so a release needs no store lock and cannot
    /// delete the temporary files of an import running beside it.
    pub fn open_to_read(store: &crate::Store, dir: &Path) -> Result<Archive, crate::StoreError> {
        if let Err(source) = fs::read_dir(dir) {
            return Err(crate::StoreError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
        let archive = Archive::at(dir);
        let id = store.store_id()?;
        archive.bind(&id, store.has_instances()?)?;
        Ok(archive)
    }

    /// Binds this archive to the store `store_id`, or checks that it is bound to it, so that two
    /// stores never write into one archive and one store never scatters over two. A new archive
    /// folder is accepted only while the store has archived nothing.
    pub fn bind(&self, store_id: &str, store_has_instances: bool) -> Result<(), BindError> {
        let marker = self.dir.join(MARKER);
        let expected = format!("pseal archive of store {store_id}\n");
        match fs::read_to_string(&marker) {
            Ok(text) if text == expected => Ok(()),
            Ok(_) => Err(BindError::OtherStore {
                dir: self.dir.clone(),
                marker,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let stray = fs::read_dir(&self.dir)
                    .map_err(|source| BindError::Io {
                        path: self.dir.clone(),
                        source,
                    })?
                    .filter_map(Result::ok)
                    .any(|e| e.file_name() != STAGING);
                if stray {
                    return Err(BindError::NotAnArchive { dir: self.dir.clone() });
                }
                if store_has_instances {
                    return Err(BindError::ArchivedElsewhere { dir: self.dir.clone() });
                }
                // Written with the first file, so that a run that imports nothing changes nothing.
                *self.pending_marker.borrow_mut() = Some(expected);
                Ok(())
            }
            Err(source) => Err(BindError::Io { path: marker, source }),
        }
    }

    /// The archive folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The staging folder (same file system, so renames are atomic).
    pub fn staging_dir(&self) -> PathBuf {
        self.dir.join(STAGING)
    }

    /// Removes whatever an interrupted import left in the staging folder. Call under the store lock.
    pub fn clean_staging(&self) -> io::Result<()> {
        for entry in fs::read_dir(self.staging_dir())? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Removes the staging folder if it is empty (the end of an import; under the store lock).
    /// A folder that holds something (an interrupted import's files) stays for the next import
    /// to empty.
    pub fn remove_staging_if_empty(&self) -> io::Result<()> {
        let staging = self.staging_dir();
        let empty = match fs::read_dir(&staging) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if empty {
            fs::remove_dir(&staging)?;
        }
        Ok(())
    }

    /// The relative path of an instance.
    pub fn instance_path(pseudonym: &str, study: &str, series: &str, sop: &str) -> String {
        format!(
            "{}/{}/{}/{}.dcm",
            safe_component(pseudonym),
            safe_component(study),
            safe_component(series),
            safe_component(sop)
        )
    }

    /// Writes the marker that pairs a new archive folder with its store, before its first file.
    fn write_pending_marker(&self) -> io::Result<()> {
        if let Some(marker) = self.pending_marker.borrow_mut().take() {
            let mut f = File::create(self.dir.join(MARKER))?;
            f.write_all(marker.as_bytes())?;
            f.sync_all()?;
            pseal::atomic::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Starts a batch of files made durable together (see [`Batch`]).
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            archive: self,
            pending: Vec::new(),
        }
    }

    /// Syncs folders so that renames into them are durable (and their own entries in their parents).
    pub fn sync_dirs(&self, dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
        let mut all = BTreeSet::new();
        for d in dirs {
            let mut cur = Some(d.as_path());
            while let Some(c) = cur {
                if !c.starts_with(&self.dir) {
                    break;
                }
                all.insert(c.to_path_buf());
                cur = c.parent();
            }
        }
        for d in all {
            pseal::atomic::sync_dir(&d)?;
        }
        Ok(())
    }

    /// Rewrites `index.csv` atomically from `rows`.
    pub fn write_index<E: std::fmt::Display>(
        &self,
        rows: impl FnOnce(&mut dyn FnMut(IndexRow) -> io::Result<()>) -> Result<(), E>,
    ) -> io::Result<()> {
        let index = self.dir.join(INDEX_FILE);
        pseal::atomic::write_atomically_via(&self.staging_dir(), &index, "index-", |file| {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(io::BufWriter::new(file));
            writer.write_record(INDEX_COLUMNS)?;
            rows(&mut |row: IndexRow| writer.serialize(row).map_err(io::Error::other))
                .map_err(|e| io::Error::other(e.to_string()))?;
            writer.flush()
        })
    }
}

/// Files written together and made durable together, so that an import pays for a few flushes
/// per bundle instead of one per file, and still never shows a half-written file under a final
/// name:
/// 1. [`write`](Batch::write) puts each file under a temporary name in the staging folder;
/// 2. [`commit`](Batch::commit) flushes them all to disk, renames each into place, and flushes
///    the renames (the folders). Only then may the store record them.
///
/// If the process dies before the commit, the temporary files are left in staging, which the
/// next import empties; if it dies between the renames and the store's commit, the re-run writes
/// identical bytes to the same paths (re-keying is deterministic).
pub struct Batch<'a> {
    archive: &'a Archive,
    pending: Vec<(tempfile::TempPath, PathBuf)>,
}

impl Batch<'_> {
    /// Writes one file at `rel` (relative to the archive) under a temporary name; `fill` writes
    /// its content. Not yet durable, not yet visible.
    pub fn write(&mut self, rel: &str, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
        let mut temp = tempfile::Builder::new()
            .prefix("out-")
            .tempfile_in(self.archive.staging_dir())?;
        fill(temp.as_file_mut())?;
        // Close the file now: a bundle may hold thousands of instances.
        self.pending.push((temp.into_temp_path(), self.archive.dir.join(rel)));
        Ok(())
    }

    /// Number of files written so far.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Makes every file durable, moves each to its final name, and makes the moves durable.
    pub fn commit(self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.archive.write_pending_marker()?;
        let staging = self.archive.staging_dir();
        flush_files(&staging, self.pending.iter().map(|(temp, _)| temp.as_ref()))?;
        let mut dirs = BTreeSet::new();
        for (temp, dest) in self.pending {
            let parent = dest
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.archive.dir.clone());
            if !dirs.contains(&parent) {
                fs::create_dir_all(&parent)?;
                dirs.insert(parent);
            }
            temp.persist(&dest).map_err(|e| e.error)?;
        }
        flush_dirs(self.archive, &staging, &dirs)
    }
}

/// Flushes the content of `files` (all in `staging`) to disk.
#[cfg(target_os = "linux")]
fn flush_files<'p>(staging: &Path, _files: impl Iterator<Item = &'p Path>) -> io::Result<()> {
    // One syncfs(2) writes back every dirty page of the file system and commits its journal:
    // for thousands of new files that is one flush instead of one journal commit per fsync.
    rustix::fs::syncfs(File::open(staging)?).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn flush_files<'p>(_staging: &Path, files: impl Iterator<Item = &'p Path>) -> io::Result<()> {
    for f in files {
        File::open(f)?.sync_all()?;
    }
    Ok(())
}

/// Flushes the renames into `dirs` (and the folders above them, up to the archive).
#[cfg(target_os = "linux")]
fn flush_dirs(_archive: &Archive, staging: &Path, _dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
    rustix::fs::syncfs(File::open(staging)?).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn flush_dirs(archive: &Archive, _staging: &Path, dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
    archive.sync_dirs(dirs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn index_columns_are_the_row_fields_as_serde_writes_them() {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(IndexRow::default()).unwrap();
        let bytes = writer.into_inner().unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, INDEX_COLUMNS);
    }
}
