//! `pseal review`: de-identify exactly as export would, but write plain files for the hospital's
//! data-protection officer to inspect, with a report of every action taken. Nothing is sealed.
//!
//! Output: `OUT/patient-NNNN/instances/NNNNNN.dcm` (the names the files would carry inside a
//! bundle, under a per-patient folder numbered in export order), `OUT/review-report.json` (the
//! whole truth, including which input file became which output file) and `OUT/review-report.md`.

use crate::bundle::{instance_entry_name, ProfileInfo};
use crate::deid::{ActionCounts, UidPlaceholderKey};
use crate::export::report::LeftOut;
use crate::export::{instance, scan, ExportContext, ExportError, CHUNK};
use crate::progress::{Event, Progress};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Name of the JSON report in the review folder.
pub const REPORT_JSON: &str = "review-report.json";
/// Name of the human-readable report in the review folder.
pub const REPORT_MD: &str = "review-report.md";

/// Everything a review found.
#[derive(Debug, Serialize)]
pub struct ReviewReport {
    /// Producing tool.
    pub tool: String,
    /// The site.
    pub site: String,
    /// Profile and options in force.
    pub profile: ProfileInfo,
    /// The attribute the local patient ID is taken from.
    pub local_id_attribute: String,
    /// Counts.
    pub counts: ReviewCounts,
    /// Which input file became which output file (paths relative to input and output folders).
    pub files: Vec<ReviewedFile>,
    /// DICOM files that would be left out, and why.
    pub quarantined: Vec<LeftOut>,
    /// Files that are not DICOM.
    pub skipped: Vec<LeftOut>,
    /// What de-identification did, per attribute and action.
    pub actions: ActionCounts,
    /// What would go into the sealed identity records (for the steward only).
    pub sealed_identity: SealedSummary,
    /// Instances of SOP Classes that pseal's IOD tables do not hold, per class: their combined
    /// codes took the alternative that conforms whatever the Type (docs/deidentification.md).
    pub without_iod_data: Vec<ClassCount>,
}

/// Instances of one SOP Class.
#[derive(Debug, Serialize)]
pub struct ClassCount {
    /// The SOP Class UID.
    pub sop_class_uid: String,
    /// How many instances.
    pub instances: u64,
}

/// Review counts.
#[derive(Debug, Default, Serialize)]
pub struct ReviewCounts {
    /// Regular files under the input.
    pub files_seen: u64,
    /// Patients (bundles an export would write).
    pub patients: u64,
    /// Instances de-identified.
    pub reviewed: u64,
    /// DICOM files quarantined.
    pub quarantined: u64,
    /// Non-DICOM files skipped.
    pub skipped: u64,
}

/// One reviewed file.
#[derive(Debug, Serialize)]
pub struct ReviewedFile {
    /// Input path, relative to the input folder.
    pub input: String,
    /// Output path, relative to the review folder.
    pub output: String,
}

/// What the sealed identity records would hold, counted (never the values).
#[derive(Debug, Default, Serialize)]
pub struct SealedSummary {
    /// Local patient IDs (one per patient).
    pub local_ids: u64,
    /// Original UIDs recorded against their placeholders.
    pub uids: u64,
    /// Original dates and times recorded for the steward to shift, per attribute.
    pub values: BTreeMap<String, u64>,
    /// Birth dates recorded (for age at scan).
    pub birth_dates: u64,
}

/// A de-identified file written under a pending name, waiting for its final one.
struct Pending {
    captured: crate::deid::Captured,
    actions: ActionCounts,
    without_iod: Option<String>,
    path: std::path::PathBuf,
    written: std::io::Result<()>,
}

fn attribute_label(tag: u32) -> String {
    use dicom_core::dictionary::DataDictionary;
    let t = dicom_core::Tag((tag >> 16) as u16, (tag & 0xffff) as u16);
    let name = dicom_dictionary_std::StandardDataDictionary
        .by_tag(t)
        .map(|e| e.alias)
        .unwrap_or("(unknown)");
    format!("({:04X},{:04X}) {name}", t.0, t.1)
}

/// Runs a review of `input` into `out`.
pub fn review(
    ctx: &ExportContext,
    input: &Path,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ReviewReport, ExportError> {
    let out_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Output {
            path: path.clone(),
            source,
        }
    };
    std::fs::create_dir_all(out).map_err(out_err(out))?;
    let scanned = scan::scan(input, ctx.config.local_id.tag()?, progress)?;
    let mut report = ReviewReport {
        tool: crate::TOOL_VERSION.into(),
        site: ctx.config.site.clone(),
        profile: ctx.profile_info(),
        local_id_attribute: ctx.config.local_id.attribute.clone(),
        counts: ReviewCounts {
            files_seen: scanned.files_seen,
            patients: scanned.patients.len() as u64,
            ..ReviewCounts::default()
        },
        files: Vec::new(),
        quarantined: scanned.quarantined.clone(),
        skipped: scanned.skipped.clone(),
        actions: ActionCounts::default(),
        sealed_identity: SealedSummary::default(),
        without_iod_data: Vec::new(),
    };
    let mut without_iod: BTreeMap<String, u64> = BTreeMap::new();
    let total: u64 = scanned.patients.values().map(|v| v.len() as u64).sum();
    progress.event(Event::Phase {
        name: "review",
        total: Some(total),
    });
    for (n, files) in scanned.patients.values().enumerate() {
        let folder = format!("patient-{:04}", n + 1);
        let dir = out.join(&folder).join("instances");
        let uid_key = UidPlaceholderKey::random();
        let mut index = 0u64;
        let mut wrote_any = false;
        for chunk in files.chunks(CHUNK) {
            // Review writes as much as it reads, so the writing is done on every core too: each
            // file is de-identified and written under a pending name in parallel, then, in input
            // order, renamed to the name it would carry in a bundle (numbered among the files
            // that were not left out) and recorded.
            let results: Vec<_> = chunk
                .par_iter()
                .enumerate()
                .map(|(i, path)| {
                    let done = instance::deidentify_path(path, &ctx.profile, &uid_key)?;
                    let pending = dir.join(format!(".pending-{i:03}.dcm"));
                    let written = std::fs::create_dir_all(&dir)
                        .and_then(|()| std::fs::File::create(&pending))
                        .and_then(|mut file| done.write_to_file(&mut file));
                    Ok::<_, instance::LeftOutReason>(Pending {
                        captured: done.captured,
                        actions: done.actions,
                        without_iod: done.without_iod,
                        path: pending,
                        written,
                    })
                })
                .collect();
            let mut failure = None;
            for (path, result) in chunk.iter().zip(results) {
                progress.event(Event::Advance { n: 1 });
                let rel_in = scan::relative(input, path);
                match result {
                    Ok(pending) if failure.is_some() => {
                        let _ = std::fs::remove_file(&pending.path);
                    }
                    Ok(pending) => {
                        index += 1;
                        let rel_out = format!("{folder}/{}", instance_entry_name(index));
                        let written = pending
                            .written
                            .and_then(|()| std::fs::rename(&pending.path, out.join(&rel_out)));
                        if let Err(e) = written {
                            let _ = std::fs::remove_file(&pending.path);
                            failure = Some(e);
                            continue;
                        }
                        wrote_any = true;
                        report.actions.merge(&pending.actions);
                        if let Some(class) = pending.without_iod {
                            *without_iod.entry(class).or_default() += 1;
                        }
                        let s = &mut report.sealed_identity;
                        s.uids += pending.captured.uids.len() as u64;
                        s.birth_dates += u64::from(pending.captured.birth_date.is_some());
                        for v in &pending.captured.values {
                            *s.values.entry(attribute_label(v.tag)).or_default() += 1;
                        }
                        report.files.push(ReviewedFile {
                            input: rel_in,
                            output: rel_out,
                        });
                    }
                    Err(left_out) => {
                        progress.event(Event::Quarantined {
                            path: rel_in.clone(),
                            reason: left_out.to_string(),
                        });
                        report.quarantined.push(LeftOut {
                            path: rel_in,
                            reason: left_out.to_string(),
                        });
                    }
                }
            }
            if let Some(e) = failure {
                return Err(ExportError::Output {
                    path: out.to_path_buf(),
                    source: e,
                });
            }
        }
        if wrote_any {
            report.sealed_identity.local_ids += 1;
        }
    }
    report.without_iod_data = without_iod
        .into_iter()
        .map(|(sop_class_uid, instances)| ClassCount {
            sop_class_uid,
            instances,
        })
        .collect();
    report.counts.reviewed = report.files.len() as u64;
    report.counts.quarantined = report.quarantined.len() as u64;
    report.counts.skipped = report.skipped.len() as u64;
    write_atomically(
        &out.join(REPORT_JSON),
        &serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .map_err(out_err(&out.join(REPORT_JSON)))?;
    write_atomically(&out.join(REPORT_MD), report.to_markdown().as_bytes()).map_err(out_err(&out.join(REPORT_MD)))?;
    Ok(report)
}

/// The per-attribute table of the Markdown report.
fn actions_table(actions: &ActionCounts) -> String {
    let mut md = String::from("| tag | attribute | action | times |\n|---|---|---|---|\n");
    for line in actions.iter() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            line.tag_string,
            line.name.replace('|', "\\|"),
            line.action.name(),
            line.count
        );
    }
    if actions.is_empty() {
        md.push_str("| | nothing was de-identified | | |\n");
    }
    md
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new().prefix(".pseal-review-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl ReviewReport {
    /// The report for a person: profile, counts, per-attribute actions, sealed content, left out.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# pseal review — site {}\n", self.site);
        let _ = writeln!(md, "Produced by {}. Nothing was sealed or sent: these are the files an export would put into bundles, as they would leave the hospital.\n", self.tool);
        let _ = writeln!(md, "## Profile in force\n");
        let _ = writeln!(
            md,
            "- Options: {}",
            if self.profile.options.is_empty() {
                "none (Basic Profile alone)".to_string()
            } else {
                self.profile.options.join(", ")
            }
        );
        let _ = writeln!(
            md,
            "- DeidentificationMethod written into every file: {}",
            self.profile.method
        );
        let _ = writeln!(md, "- Local patient ID taken from: {}", self.local_id_attribute);
        for c in &self.without_iod_data {
            let _ = writeln!(md, "- {} instance(s) of SOP Class {} are not in pseal's IOD tables: their combined action codes took the alternative that conforms whatever the attribute's Type (D where D is among them, Z for X/Z)", c.instances, c.sop_class_uid);
        }
        md.push('\n');
        let _ = writeln!(md, "## Counts\n");
        let c = &self.counts;
        let _ = writeln!(md, "| files seen | patients | de-identified | quarantined | not DICOM |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n", c.files_seen, c.patients, c.reviewed, c.quarantined, c.skipped);
        let _ = writeln!(md, "## What was done to each attribute\n");
        md.push_str(&actions_table(&self.actions));
        let _ = writeln!(
            md,
            "\n## What goes into the sealed identity record (readable by the steward only)\n"
        );
        let s = &self.sealed_identity;
        let _ = writeln!(md, "- local patient IDs: {}\n- original UIDs (replaced in the files by placeholders): {}\n- birth dates (for age at scan; never stored by the steward): {}", s.local_ids, s.uids, s.birth_dates);
        for (attr, n) in &s.values {
            let _ = writeln!(
                md,
                "- {attr}: {n} original value(s), written back shifted by the steward"
            );
        }
        let _ = writeln!(md, "\n## Quarantined (not exported)\n");
        if self.quarantined.is_empty() {
            let _ = writeln!(md, "None.");
        }
        for q in &self.quarantined {
            let _ = writeln!(md, "- `{}`: {}", q.path, q.reason);
        }
        let _ = writeln!(md, "\n## Not DICOM (skipped)\n");
        if self.skipped.is_empty() {
            let _ = writeln!(md, "None.");
        }
        for q in &self.skipped {
            let _ = writeln!(md, "- `{}`: {}", q.path, q.reason);
        }
        let _ = writeln!(
            md,
            "\nWhich input file became which output file is listed in `{REPORT_JSON}` (`files`)."
        );
        md
    }
}
