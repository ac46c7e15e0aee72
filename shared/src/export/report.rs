//! `export-report.json`: what an export wrote and what it left out, and why.
//!
//! The report stays at the hospital. It names input files by their path relative to the input
//! folder so an operator can find them, and never holds a value read from inside a file.

use super::scan::Scanned;
use crate::bundle::ProfileInfo;
use crate::deid::ActionCounts;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// The export report.
#[derive(Debug, Serialize)]
pub struct ExportReport {
    /// Producing tool.
    pub tool: String,
    /// The site.
    pub site: String,
    /// Profile and options applied.
    pub profile: ProfileInfo,
    /// Counts.
    pub counts: Counts,
    /// Bundles written.
    pub bundles: Vec<BundleSummary>,
    /// DICOM files left out, with the reason.
    pub quarantined: Vec<LeftOut>,
    /// Files that are not DICOM, or could not be read at all.
    pub skipped: Vec<LeftOut>,
    /// Patients whose bundle could not be written.
    pub failed: Vec<FailedPatient>,
    /// What de-identification did, per attribute.
    pub actions: ActionCounts,
    /// The name the report of an earlier export in the same outbox was kept under, if there was
    /// one (`export-report-<its time, UTC>.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_report_kept_as: Option<String>,
    /// Cross-site linkage, when the site has it on: which fields were sealed, and which
    /// patients' files disagreed on a field (the most frequent value was sealed). Never a value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkage: Option<LinkageSummary>,
}

/// What the sealed identity records carry for cross-site linkage.
#[derive(Debug, Clone, Serialize)]
pub struct LinkageSummary {
    /// The fields sealed for every patient (names of fields, not values).
    pub sealed_fields: Vec<String>,
    /// Patients whose files held more than one value of a field.
    pub conflicts: Vec<LinkageConflict>,
}

/// One patient whose files disagree on linkage fields (named by position, never by ID).
#[derive(Debug, Clone, Serialize)]
pub struct LinkageConflict {
    /// 1-based position among the patients of this export (as in `failed`).
    pub patient: usize,
    /// Field name → number of distinct values among the patient's files.
    pub fields: std::collections::BTreeMap<String, u32>,
}

/// Export counts.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// Regular files under the input.
    pub files_seen: u64,
    /// Files skipped as not DICOM.
    pub skipped: u64,
    /// Patients found.
    pub patients: u64,
    /// Instances written into bundles.
    pub exported: u64,
    /// DICOM files quarantined.
    pub quarantined: u64,
    /// Bundles written.
    pub bundles: u64,
    /// Patients whose bundle failed.
    pub failed: u64,
}

/// One bundle written.
#[derive(Debug, Clone, Serialize)]
pub struct BundleSummary {
    /// Bundle file name in the output folder.
    pub file: String,
    /// Its random ID.
    pub bundle_id: String,
    /// Instances inside.
    pub instances: u64,
}

/// A file left out.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    /// Path relative to the input folder.
    pub path: String,
    /// Why, and how to act on it.
    pub reason: String,
}

/// A patient whose bundle could not be written (named by position, never by ID).
#[derive(Debug, Clone, Serialize)]
pub struct FailedPatient {
    /// 1-based position among the patients of this export.
    pub patient: usize,
    /// Files of this patient.
    pub files: usize,
    /// Why.
    pub reason: String,
}

impl ExportReport {
    pub(crate) fn new(site: &str, profile: ProfileInfo, scanned: &Scanned) -> ExportReport {
        ExportReport {
            tool: crate::TOOL_VERSION.into(),
            site: site.into(),
            profile,
            counts: Counts {
                files_seen: scanned.files_seen,
                patients: scanned.patients.len() as u64,
                ..Counts::default()
            },
            bundles: Vec::new(),
            quarantined: scanned.quarantined.clone(),
            skipped: scanned.skipped.clone(),
            failed: Vec::new(),
            actions: ActionCounts::default(),
            earlier_report_kept_as: None,
            linkage: None,
        }
    }

    /// Records that linkage fields are sealed, and each patient whose files disagree on one.
    pub(crate) fn note_linkage(&mut self, scanned: &Scanned) {
        let conflicts = scanned
            .patients
            .keys()
            .enumerate()
            .filter_map(|(i, id)| {
                let record = scanned.linkage.get(id)?.record();
                (!record.conflicts.is_empty()).then(|| LinkageConflict {
                    patient: i + 1,
                    fields: record.conflicts.clone(),
                })
            })
            .collect();
        self.linkage = Some(LinkageSummary {
            sealed_fields: crate::linkage::FIELD_NAMES.iter().map(|s| s.to_string()).collect(),
            conflicts,
        });
    }

    pub(crate) fn finish(&mut self, actions: ActionCounts) {
        self.counts.skipped = self.skipped.len() as u64;
        self.counts.quarantined = self.quarantined.len() as u64;
        self.counts.bundles = self.bundles.len() as u64;
        self.counts.failed = self.failed.len() as u64;
        self.actions = actions;
    }

    /// True when every patient with exportable files got a bundle.
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
    }

    /// The `summary` event that ends `pseal export --json` (and a Python caller's progress
    /// stream): the counts, where the report of the export into `out` is, and where an earlier
    /// export's report was kept.
    pub fn summary_event(&self, out: &Path) -> serde_json::Value {
        serde_json::json!({
            "event": "summary",
            "bundles": self.counts.bundles,
            "exported": self.counts.exported,
            "quarantined": self.counts.quarantined,
            "skipped": self.counts.skipped,
            "failed": self.counts.failed,
            // Lossy: a folder name that is not UTF-8 must not stop the run at its last line.
            "report": out.join(super::REPORT_FILE).to_string_lossy(),
            "earlier_report_kept_as": self
                .earlier_report_kept_as
                .as_ref()
                .map(|n| out.join(n).to_string_lossy().into_owned()),
        })
    }

    /// Writes the report atomically and durably ([`crate::atomic`]). A report already at `path`
    /// is replaced: call [`keep_earlier`] first to keep it.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::atomic::write_atomically(path, ".pseal-report-", |file| {
            let mut out = std::io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut out, self)?;
            out.write_all(b"\n")?;
            out.flush()
        })
    }
}

/// Keeps the report of an earlier export at `path` by renaming it to
/// `export-report-<YYYY-MM-DDTHHMMSSZ>.json` after the time it was written (UTC), with `-2`, `-3`, …
/// added when that name is taken. Returns the new name, or `None` when there was no report.
pub fn keep_earlier(path: &Path) -> std::io::Result<Option<std::path::PathBuf>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
    }
    let written = meta.modified().unwrap_or_else(|_| std::time::SystemTime::now());
    let stamp = chrono::DateTime::<chrono::Utc>::from(written).format("%Y-%m-%dT%H%M%SZ");
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export-report".into());
    let dir = path.parent().unwrap_or(Path::new("."));
    for n in 1u32.. {
        let name = match n {
            1 => format!("{stem}-{stamp}.json"),
            n => format!("{stem}-{stamp}-{n}.json"),
        };
        let target = dir.join(name);
        // A hard link never replaces an existing file, so two exports cannot overwrite each
        // other's kept report; the old name is then removed.
        match std::fs::hard_link(path, &target) {
            Ok(()) => {
                std::fs::remove_file(path)?;
                return Ok(Some(target));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // File systems without hard links (FAT on a USB stick): a checked rename.
            Err(_) if !target.exists() => {
                std::fs::rename(path, &target)?;
                return Ok(Some(target));
            }
            Err(_) => continue,
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn an_earlier_report_is_kept_under_a_dated_name_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export-report.json");
        assert_eq!(super::keep_earlier(&path).unwrap(), None, "no report, nothing to keep");
        std::fs::write(&path, b"first").unwrap();
        let first = super::keep_earlier(&path).unwrap().unwrap();
        assert!(!path.exists());
        std::fs::write(&path, b"second").unwrap();
        let second = super::keep_earlier(&path).unwrap().unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"first");
        assert_eq!(std::fs::read(&second).unwrap(), b"second");
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("export-report-20") && name.ends_with("Z.json"),
            "{name}"
        );
    }
}
