//! The DICOM release: the archive's files under `archive/<pseudonym>/<study>/<series>/<sop>.dcm`
//! as before, `index.csv` (with its dictionary `index.json`), the participants table and the
//! README. Rows and files follow the archive's path order; the index and the participants table
//! are spooled to scratch files, so memory does not grow with the cohort.

use super::package::Package;
use super::subjects::{read_header, Patient};
use super::{ReleaseError, Stats};
use crate::archive::{IndexRow, INDEX_COLUMNS, INDEX_FILE};
use pseal::progress::{Event, Progress};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A DICOM release being written.
pub(crate) struct DicomRelease {
    index: csv::Writer<BufWriter<File>>,
    index_path: PathBuf,
    participants: BufWriter<File>,
    participants_path: PathBuf,
    out: PathBuf,
}

/// Errors of the scratch files name the release being written, not a temporary name.
fn scratch_err(out: &Path) -> impl Fn(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Scratch {
        out: out.to_path_buf(),
        source,
    }
}

impl DicomRelease {
    /// Starts the spooled tables in `work`.
    pub(crate) fn new(work: &Path, out: &Path) -> Result<DicomRelease, ReleaseError> {
        let index_path = work.join(INDEX_FILE);
        let participants_path = work.join("participants.tsv");
        let file = File::create(&index_path).map_err(scratch_err(out))?;
        let mut index = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(file));
        index
            .write_record(INDEX_COLUMNS)
            .map_err(|e| scratch_err(out)(std::io::Error::other(e)))?;
        let mut participants = BufWriter::new(File::create(&participants_path).map_err(scratch_err(out))?);
        participants
            .write_all(b"pseudonym\tage\tsex\tsessions\n")
            .map_err(scratch_err(out))?;
        Ok(DicomRelease {
            index,
            index_path,
            participants,
            participants_path,
            out: out.to_path_buf(),
        })
    }

    /// Adds one patient's files (`rows` ordered by path) to the package.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_patient(
        &mut self,
        package: &mut Package,
        out: &Path,
        archive: &Path,
        pseudonym: &str,
        rows: Vec<IndexRow>,
        stats: &mut Stats,
        progress: &dyn Progress,
    ) -> Result<(), ReleaseError> {
        let mut seen_series = BTreeSet::new();
        for row in &rows {
            let src = archive.join(&row.path);
            if seen_series.insert(row.series_uid.clone()) {
                // One instance per series says how the series was de-identified (README).
                let method = read_header(&src).map_or_else(|_| "(unreadable)".to_string(), |h| h.deidentification);
                *stats.deidentification.entry(method).or_default() += 1;
            }
            package.add_path(&row.path, &src).map_err(|source| {
                if src.exists() {
                    ReleaseError::Io {
                        path: out.to_path_buf(),
                        source,
                    }
                } else {
                    ReleaseError::Io {
                        path: src.clone(),
                        source,
                    }
                }
            })?;
            self.index
                .serialize(row)
                .map_err(|e| scratch_err(&self.out)(std::io::Error::other(e)))?;
            if let Ok(meta) = std::fs::metadata(&src) {
                progress.event(Event::Bytes { n: meta.len() });
            }
            progress.event(Event::Advance { n: 1 });
        }
        let patient = Patient::from_rows(pseudonym, rows);
        stats.add(&patient);
        writeln!(
            self.participants,
            "{}\t{}\t{}\t{}",
            patient.pseudonym,
            patient
                .age_at_first_session()
                .map_or("n/a".to_string(), |a| a.to_string()),
            super::metadata::tsv_field(&patient.sex),
            patient.sessions.len()
        )
        .map_err(scratch_err(&self.out))?;
        Ok(())
    }

    /// Adds the index, the participants table and their dictionaries.
    pub(crate) fn finish(self, package: &mut Package, out: &Path) -> Result<(), ReleaseError> {
        let io_out = |source| ReleaseError::Io {
            path: out.to_path_buf(),
            source,
        };
        let mut index = self
            .index
            .into_inner()
            .map_err(|e| scratch_err(&self.out)(e.into_error()))?;
        index.flush().map_err(scratch_err(&self.out))?;
        drop(index);
        let mut participants = self.participants;
        participants.flush().map_err(scratch_err(&self.out))?;
        drop(participants);
        package.add_path(INDEX_FILE, &self.index_path).map_err(io_out)?;
        package
            .add_bytes("index.json", &super::metadata::index_json())
            .map_err(io_out)?;
        package
            .add_path("participants.tsv", &self.participants_path)
            .map_err(io_out)?;
        package
            .add_bytes(
                "participants.json",
                &super::metadata::participants_json(super::metadata::Format::Dicom),
            )
            .map_err(io_out)?;
        Ok(())
    }
}
