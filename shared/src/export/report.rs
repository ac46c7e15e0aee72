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
        }
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
    /// stream): the counts, and where the report of the export into `out` is.
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
        })
    }

    /// Writes the report atomically (temporary file, sync, rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut temp = tempfile::Builder::new().prefix(".pseal-report-").tempfile_in(dir)?;
        serde_json::to_writer_pretty(&mut temp, self)?;
        temp.write_all(b"\n")?;
        temp.as_file().sync_all()?;
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}
