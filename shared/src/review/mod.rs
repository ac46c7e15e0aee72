//! `pseal review`: de-identify exactly as export would, but write plain files for the hospital's
//! data-protection officer to inspect, with a report of every action taken. Nothing is sealed.
//!
//! Output: `OUT/patient-NNNN/instances/NNNNNN.dcm` (the names the files would carry inside a
//! bundle, under a per-patient folder numbered in export order), `OUT/review-report.json` (the
//! whole truth, including which input file became which output file), `OUT/review-report.md` and
//! `OUT/review-report.html` (the same for a person: [`html`], [`markdown`], in the words of
//! [`outcome`]). A review writes only into an empty folder, or empties one it wrote before when
//! told to ([`Replace`]).

pub mod html;
pub mod markdown;
pub mod outcome;
pub mod thumbnail;
pub mod values;

use crate::bundle::{instance_entry_name, ProfileInfo};
use crate::deid::{ActionCounts, UidPlaceholderKey};
use crate::export::report::LeftOut;
use crate::export::{instance, scan, Cancel, ExportContext, ExportError};
use crate::progress::{Event, Progress};
use crate::role::{PathError, Role};
use outcome::AttributeOutcomes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use values::{TagValues, ValueCounts};

/// Name of the JSON report in the review folder.
pub const REPORT_JSON: &str = "review-report.json";
/// Name of the human-readable report in the review folder.
pub const REPORT_MD: &str = "review-report.md";
/// Name of the self-contained HTML report in the review folder (for the DPO to read and sign).
pub const REPORT_HTML: &str = "review-report.html";
/// Written first into a review folder, so that `--replace` recognises one a review wrote (even an
/// interrupted one) and never empties any other folder.
pub const MARKER: &str = ".pseal-review";
/// Quarantined images that get a thumbnail (a bound on memory; the report says when it is reached).
pub const MAX_THUMBNAILS: usize = 200;

/// What to do with a review folder that is not empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Refuse it (the default).
    No,
    /// Empty it first, if it is a folder a review wrote (it holds the review marker or a
    /// review report); refuse any other non-empty folder.
    Yes,
}

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
    /// Per attribute, the outcome in the report's words (see [`outcome::Outcome`]).
    pub attributes: Vec<AttributeOutcomes>,
    /// The distinct values of every text attribute of the de-identified files (what leaves), by
    /// tag `(GGGG,EEEE)`.
    pub values: BTreeMap<String, TagValues>,
    /// The quarantined files grouped by reason, with thumbnails of the images.
    pub quarantine_groups: Vec<QuarantineGroup>,
    /// The SOP classes the site allows despite the burned-in rules.
    pub allow_burned_in: Vec<String>,
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

/// Quarantined files that share a reason.
#[derive(Debug, Serialize)]
pub struct QuarantineGroup {
    /// A short code: the quarantine reason's (`burned-in-annotation`, …), `no-local-id` or
    /// `unreadable`.
    pub code: String,
    /// The full reason, said once for the group.
    pub reason: String,
    /// The files (paths relative to the input folder), in input order.
    pub files: Vec<QuarantinedFile>,
}

/// One quarantined file.
#[derive(Debug, Serialize)]
pub struct QuarantinedFile {
    /// Path relative to the input folder.
    pub path: String,
    /// Why there is no thumbnail, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_thumbnail: Option<String>,
    /// The thumbnail (PNG), embedded in the HTML report only.
    #[serde(skip)]
    pub thumbnail: Option<thumbnail::Thumbnail>,
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
    /// With cross-site linkage on: the fields sealed for the steward to link patients across
    /// sites (names of fields; their values are never in a report).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub linkage_fields: Vec<String>,
}

/// A de-identified file written under a pending name, waiting for its final one.
struct Pending {
    captured: crate::deid::Captured,
    actions: ActionCounts,
    without_iod: Option<String>,
    values: ValueCounts,
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

/// Makes `out` an empty review folder: creates it, or checks that it is empty, or (with
/// [`Replace::Yes`]) empties a folder an earlier review wrote. Then writes the review marker.
pub fn prepare_folder(out: &Path, input: &Path, replace: Replace) -> Result<(), ExportError> {
    let at = PathError::at(Role::ReviewFolder, out);
    if out.exists() && !out.is_dir() {
        crate::role::ensure_dir(Role::ReviewFolder, out)?;
    }
    let non_empty = crate::role::is_non_empty_dir(out).map_err(&at)?;
    if non_empty {
        let ours = out.join(MARKER).exists() || out.join(REPORT_JSON).exists();
        let not_empty = |reason: String| ExportError::NotEmpty {
            path: out.to_path_buf(),
            reason,
        };
        match replace {
            Replace::No => {
                return Err(not_empty(if ours {
                    "is not empty (an earlier review is in it); give --replace to empty it first, or choose a new folder".into()
                } else {
                    "is not empty; choose an empty or new folder".into()
                }))
            }
            Replace::Yes if !ours => {
                return Err(not_empty(format!(
                    "is not empty and was not written by pseal review (it holds neither {MARKER} nor {REPORT_JSON}); \
                     --replace empties only an earlier review folder: choose an empty or new folder"
                )))
            }
            Replace::Yes => {
                let (o, i) = (absolute(out), absolute(input));
                if i.starts_with(&o) {
                    return Err(not_empty(format!(
                        "holds the input folder {}; --replace would delete the input: choose another folder",
                        input.display()
                    )));
                }
                for entry in std::fs::read_dir(out).map_err(&at)? {
                    let path = entry.map_err(&at)?.path();
                    let removed = if path.is_dir() && !path.is_symlink() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                    removed.map_err(|e| PathError::new(Role::ReviewFolder, &path, e))?;
                }
            }
        }
    }
    std::fs::create_dir_all(out).map_err(&at)?;
    std::fs::write(
        out.join(MARKER),
        b"written by pseal review; pseal review --replace may empty this folder\n",
    )
    .map_err(&at)?;
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// Runs a review of `input` into `out`, which must be empty or not exist (see [`review_with`]).
pub fn review(
    ctx: &ExportContext,
    input: &Path,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ReviewReport, ExportError> {
    review_with(ctx, input, out, Replace::No, progress, &Cancel::new())
}

/// [`review`], stopping with [`ExportError::Cancelled`] soon after `cancel` is set: the files
/// already under their final names stay, the pending ones are removed, no report is written.
pub fn review_cancellable(
    ctx: &ExportContext,
    input: &Path,
    out: &Path,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ReviewReport, ExportError> {
    review_with(ctx, input, out, Replace::No, progress, cancel)
}

/// Runs a review of `input` into `out`; `replace` says what to do with a non-empty folder, and
/// `cancel` stops the run as [`review_cancellable`] says.
pub fn review_with(
    ctx: &ExportContext,
    input: &Path,
    out: &Path,
    replace: Replace,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ReviewReport, ExportError> {
    // The input is checked before anything in the review folder is touched.
    let local_id_tag = ctx.config.local_id.tag()?;
    match std::fs::metadata(input) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ExportError::Input {
                path: input.to_path_buf(),
                reason: "is a file, not a folder".into(),
            })
        }
        Err(e) => {
            return Err(ExportError::Input {
                path: input.to_path_buf(),
                reason: crate::role::describe(&e),
            })
        }
    }
    prepare_folder(out, input, replace)?;
    let scanned = scan::scan(input, local_id_tag, progress, cancel)?;
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
        sealed_identity: SealedSummary {
            linkage_fields: if ctx.config.linkage.enabled {
                crate::linkage::FIELD_NAMES.iter().map(|f| f.to_string()).collect()
            } else {
                Vec::new()
            },
            ..SealedSummary::default()
        },
        attributes: Vec::new(),
        values: BTreeMap::new(),
        quarantine_groups: Vec::new(),
        allow_burned_in: ctx.profile.allow_burned_in().to_vec(),
        without_iod_data: Vec::new(),
    };
    let mut without_iod: BTreeMap<String, u64> = BTreeMap::new();
    let mut groups = Groups::default();
    for q in &scanned.quarantined {
        groups.add(
            &input.join(&q.path),
            q.path.clone(),
            scan_code(&q.reason),
            q.reason.clone(),
        );
    }
    let mut kept_values = ValueCounts::default();
    let in_table = |tag: u32| crate::deid::in_table(&ctx.profile, tag);
    let total: u64 = scanned.patients.values().map(|v| v.len() as u64).sum();
    progress.event(Event::Phase {
        name: "review",
        total: Some(total),
    });
    progress.event(Event::Size { bytes: scanned.bytes });
    let patients = scanned.patients.len() as u64;
    for (n, files) in scanned.patients.values().enumerate() {
        progress.event(Event::Item {
            unit: "patient",
            index: n as u64 + 1,
            total: patients,
        });
        let folder = format!("patient-{:04}", n + 1);
        let dir = out.join(&folder).join("instances");
        let uid_key = UidPlaceholderKey::random();
        let mut index = 0u64;
        let mut wrote_any = false;
        // Review writes as much as it reads, so the writing is done on every core too: each
        // file is de-identified and written under a pending name in parallel, then, in input
        // order, renamed to the name it would carry in a bundle (numbered among the files that
        // were not left out) and recorded. Once cancelled or failed, the pending files not
        // renamed yet are removed and not announced.
        let work = |i: usize, path: &Path| -> Result<Pending, instance::LeftOutReason> {
            let mut values = ValueCounts::default();
            let done = instance::deidentify_path_visiting(path, &ctx.profile, &uid_key, &mut |ds| {
                values.add_dataset(ds, &in_table)
            })?;
            let pending = dir.join(format!(".pending-{i:03}.dcm"));
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::File::create(&pending))
                .and_then(|mut file| done.encoded.write_to_file(&mut file));
            Ok(Pending {
                captured: done.captured,
                actions: done.actions,
                without_iod: done.without_iod,
                values,
                path: pending,
                written,
            })
        };
        let discard = |result: Result<Pending, instance::LeftOutReason>| {
            if let Ok(pending) = result {
                let _ = std::fs::remove_file(&pending.path);
            }
        };
        let handle = |path: &Path, result: Result<Pending, instance::LeftOutReason>| -> Result<(), ExportError> {
            let rel_in = scan::relative(input, path);
            match result {
                Ok(pending) => {
                    index += 1;
                    let rel_out = format!("{folder}/{}", instance_entry_name(index));
                    let written = pending
                        .written
                        .and_then(|()| std::fs::rename(&pending.path, out.join(&rel_out)));
                    if let Err(e) = written {
                        let _ = std::fs::remove_file(&pending.path);
                        return Err(PathError::new(Role::ReviewFolder, out, e).into());
                    }
                    wrote_any = true;
                    report.actions.merge(&pending.actions);
                    kept_values.merge(pending.values);
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
                    let code = match &left_out {
                        instance::LeftOutReason::Quarantined(q) => q.code(),
                        instance::LeftOutReason::Unreadable(_) => "unreadable",
                        instance::LeftOutReason::Unwritable(_) => "unwritable",
                    };
                    groups.add(path, rel_in.clone(), code, left_out.to_string());
                    report.quarantined.push(LeftOut {
                        path: rel_in,
                        reason: left_out.to_string(),
                    });
                }
            }
            Ok(())
        };
        crate::export::for_each_instance(files, progress, cancel, work, handle, discard)?;
        if wrote_any {
            report.sealed_identity.local_ids += 1;
        }
    }
    cancel.check()?;
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
    report.attributes = outcome::attribute_outcomes(&report.actions, &ctx.profile);
    report.values = report
        .actions
        .iter()
        .filter_map(|line| kept_values.get(line.tag).map(|v| (line.tag_string, v.clone())))
        .collect();
    report.quarantine_groups = groups.groups;
    write_report(
        out,
        REPORT_JSON,
        &serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )?;
    write_report(out, REPORT_MD, report.to_markdown().as_bytes())?;
    write_report(out, REPORT_HTML, html::render(&report, &ctx.profile).as_bytes())?;
    Ok(report)
}

/// The group code of a file left out while scanning (the scan words its reasons itself).
fn scan_code(reason: &str) -> &'static str {
    if reason.starts_with("no local patient ID") {
        "no-local-id"
    } else {
        "unreadable"
    }
}

/// Quarantined files grouped by their reason, in order of first appearance.
#[derive(Default)]
struct Groups {
    groups: Vec<QuarantineGroup>,
    thumbnails: usize,
}

impl Groups {
    fn add(&mut self, path: &Path, rel: String, code: &str, reason: String) {
        let (thumbnail, no_thumbnail) = if self.thumbnails < MAX_THUMBNAILS {
            match thumbnail::of_file(path) {
                Ok(t) => {
                    self.thumbnails += 1;
                    (Some(t), None)
                }
                Err(why) => (None, Some(why.to_string())),
            }
        } else {
            (
                None,
                Some(format!(
                    "no thumbnail: the report shows at most {MAX_THUMBNAILS}; look at the file in a DICOM viewer"
                )),
            )
        };
        let file = QuarantinedFile {
            path: rel,
            no_thumbnail,
            thumbnail,
        };
        match self.groups.iter_mut().find(|g| g.reason == reason) {
            Some(g) => g.files.push(file),
            None => self.groups.push(QuarantineGroup {
                code: code.to_string(),
                reason,
                files: vec![file],
            }),
        }
    }
}

fn write_report(out: &Path, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
    let path = out.join(name);
    crate::atomic::write_atomically(&path, ".pseal-review-", |f| f.write_all(bytes))
        .map_err(|e| PathError::new(Role::ReportFile, &path, e).into())
}

/// The words for a quarantine group's code.
pub fn group_title(code: &str) -> &'static str {
    match code {
        "burned-in-annotation" => "Burned-in annotation declared",
        "secondary-capture-undeclared" => "Screenshot-like image (secondary capture) without a declaration",
        "ultrasound-undeclared" => "Ultrasound image without a declaration",
        "visible-light" => "Photograph or video",
        "encapsulated-document" => "Encapsulated document (PDF, CDA, 3D model)",
        "media-directory" => "DICOMDIR (media directory)",
        "no-local-id" => "No local patient ID",
        "unwritable" => "Could not be written after de-identification",
        _ => "Unreadable DICOM",
    }
}
