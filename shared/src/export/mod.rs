//! `pseal export`: a folder of DICOM files in, one sealed bundle per patient out.
//!
//! Scan the input ([`scan`]), group instances by local patient ID, then for each patient
//! de-identify the files in parallel chunks ([`instance`]), stream them into a [`BundleWriter`] and
//! the captured originals into the sealed identity record, and finish the bundle. Quarantined and
//! unreadable files are reported, never silently dropped, and never stop the others. The report
//! ([`report`]) stays at the hospital and holds no value read from inside a file.

mod cancel;
pub mod instance;
pub mod report;
pub mod scan;

pub use cancel::Cancel;

use crate::bundle::{BundleWriter, Compressor, ProfileInfo};
use crate::config::{ConfigError, SiteConfig};
use crate::deid::{ActionCounts, DeidConfig, Profile, UidPlaceholderKey};
use crate::identity::{IdentityHeader, IdentitySealer, InstanceRecord, LocalId};
use crate::keys::SiteSecretKey;
use crate::progress::{Event, Progress};
use crate::role::{PathError, Role};
use rayon::prelude::*;
use report::{BundleSummary, ExportReport, FailedPatient, LeftOut};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Files de-identified in parallel before their results are written in order; bounds memory.
pub(crate) const CHUNK: usize = 32;

/// Name of the report written into the output folder.
pub const REPORT_FILE: &str = "export-report.json";

/// A failure that stops the whole export (before any bundle is written).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The configuration or site key is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The input folder does not exist or cannot be read.
    #[error("input folder {path}: {reason}")]
    Input {
        /// The input folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output folder cannot be created or written (kept for callers that match on it; pseal
    /// itself now reports [`ExportError::Path`], which names the folder's role).
    #[error("output folder {path}: {source}")]
    Output {
        /// The output folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file or folder the run writes cannot be created or written; names its role (outbox,
    /// review folder, report file).
    #[error(transparent)]
    Path(#[from] crate::role::PathError),
    /// The review folder holds files and `--replace` was not given (or it is not a folder a
    /// review wrote, so emptying it is refused).
    #[error("review folder {}: {reason}", path.display())]
    NotEmpty {
        /// The review folder.
        path: PathBuf,
        /// What is in the way and what to do.
        reason: String,
    },
    /// The run was stopped through its [`Cancel`].
    #[error("cancelled: what was finished before (bundles announced as written, reviewed files) is whole, what was in progress was removed, and no report was written")]
    Cancelled,
}

/// Everything an export needs, resolved from the site configuration.
pub struct ExportContext {
    /// The configuration.
    pub config: SiteConfig,
    /// The workstation's site key.
    pub site_key: SiteSecretKey,
    /// The de-identification profile.
    pub profile: Profile,
}

impl ExportContext {
    /// Reads the configuration and the site key.
    pub fn load(config_path: &Path) -> Result<ExportContext, ExportError> {
        let config = SiteConfig::read(config_path)?;
        let site_key = config.read_site_key(config_path)?;
        let profile = Profile::new(&config.deid);
        Ok(ExportContext {
            config,
            site_key,
            profile,
        })
    }

    /// The profile as recorded in manifests.
    pub fn profile_info(&self) -> ProfileInfo {
        profile_info(&self.config.deid, &self.profile)
    }
}

/// The profile as recorded in manifests and reports.
pub fn profile_info(config: &DeidConfig, profile: &Profile) -> ProfileInfo {
    ProfileInfo {
        options: config.options.names().iter().map(|s| s.to_string()).collect(),
        method: profile.method_description(),
    }
}

/// Runs an export of `input` into `out` and writes `out/export-report.json`.
pub fn export(
    ctx: &ExportContext,
    input: &Path,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ExportReport, ExportError> {
    export_cancellable(ctx, input, out, progress, &Cancel::new())
}

/// [`export`], stopping with [`ExportError::Cancelled`] soon after `cancel` is set (see
/// [`Cancel`] for what is left behind then).
pub fn export_cancellable(
    ctx: &ExportContext,
    input: &Path,
    out: &Path,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ExportReport, ExportError> {
    crate::role::ensure_dir(Role::Outbox, out)?;
    let local_id_tag = ctx.config.local_id.tag()?;
    let linkage = ctx.config.linkage.enabled;
    let scanned = scan::scan_with(input, local_id_tag, linkage, progress, cancel)?;
    let mut report = ExportReport::new(&ctx.config.site, ctx.profile_info(), &scanned);
    if linkage {
        report.note_linkage(&scanned);
    }
    let mut actions = ActionCounts::default();

    let total: u64 = scanned.patients.values().map(|v| v.len() as u64).sum();
    progress.event(Event::Phase {
        name: "export",
        total: Some(total),
    });
    progress.event(Event::Size { bytes: scanned.bytes });
    let patients = scanned.patients.len() as u64;
    // A bundle's end — the identity record, manifest and site tag, the last compression job, the
    // sync and the rename — runs on its own thread while the next patient's bundle is written:
    // done in line, it would leave one core idle (the last job) and then both (the disk). At most
    // one bundle is finishing at a time, and results are recorded in patient order. The two
    // bundles in flight pass two compressors back and forth: one made per bundle would let the
    // heap grow with the number of bundles (see `Compressor`).
    let profile = ctx.profile_info();
    std::thread::scope(|scope| {
        let mut finishing: Option<(usize, usize, std::thread::ScopedJoinHandle<_>)> = None;
        let mut spare: Option<Compressor> = None;
        for (patient_index, (local_id, files)) in scanned.patients.iter().enumerate() {
            progress.event(Event::Item {
                unit: "patient",
                index: patient_index as u64 + 1,
                total: patients,
            });
            let compressor = spare.take();
            let linkage_record = scanned.linkage.get(local_id).map(|tally| tally.record());
            let linkage_record = match linkage_record {
                None if linkage => Some(crate::linkage::LinkageRecord::default()),
                other => other,
            };
            let written = export_patient(
                ctx,
                input,
                out,
                local_id,
                linkage_record,
                files,
                compressor,
                &mut report,
                &mut actions,
                progress,
                cancel,
            );
            if let Some((index, count, handle)) = finishing.take() {
                spare = record_finished(&mut report, progress, index, count, handle.join());
            }
            // The bundle that was finishing is whole and announced; the one in hand (if any)
            // is dropped here, which removes its temporary files.
            cancel.check()?;
            match written {
                Ok(Some(pending)) => {
                    let profile = profile.clone();
                    let handle = scope.spawn(move || pending.finish(profile, &ctx.site_key));
                    finishing = Some((patient_index, files.len(), handle));
                }
                Ok(None) => {}
                Err(reason) => report.failed.push(FailedPatient {
                    patient: patient_index + 1,
                    files: files.len(),
                    reason: reason.to_string(),
                }),
            }
        }
        if let Some((index, count, handle)) = finishing.take() {
            record_finished(&mut report, progress, index, count, handle.join());
        }
        Ok::<(), ExportError>(())
    })?;
    // A cancel that came while the last bundle was finishing still means "no report".
    cancel.check()?;
    report.finish(actions);
    let report_path = out.join(REPORT_FILE);
    report.earlier_report_kept_as = report::keep_earlier(&report_path)
        .map_err(PathError::at(Role::ReportFile, &report_path))?
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    report
        .write(&report_path)
        .map_err(PathError::at(Role::ReportFile, &report_path))?;
    Ok(report)
}

/// Works through `files` in parallel chunks and hands each result to `handle` in input order,
/// so memory holds two chunks and the output order is deterministic. `work` runs on every core,
/// once per file, with the file's index in `files` (export de-identifies; review de-identifies
/// and writes the file under a pending name). Stops at the first error `handle` returns, or with
/// [`ExportError::Cancelled`] before the next file once `cancel` is set; the results not handled
/// then go to `discard` (review removes the pending files they name).
///
/// The next chunk is worked on while `handle` takes the current one (writes it into a bundle or
/// renames it into a folder): de-identification overlaps with compression and encryption instead
/// of alternating with them, so both cores stay busy.
pub(crate) fn for_each_instance<T, E>(
    files: &[PathBuf],
    progress: &dyn Progress,
    cancel: &Cancel,
    work: impl Fn(usize, &Path) -> T + Sync,
    mut handle: impl FnMut(&Path, T) -> Result<(), E> + Send,
    discard: impl Fn(T) + Sync,
) -> Result<(), E>
where
    T: Send,
    E: From<ExportError> + Send,
{
    // Each result comes with the input file's size, for the byte rate of the progress display.
    let prepare = |start: usize, chunk: &[PathBuf]| -> Vec<(u64, T)> {
        chunk
            .par_iter()
            .enumerate()
            .map(|(i, path)| {
                let size = std::fs::metadata(path).map_or(0, |m| m.len());
                (size, work(start + i, path))
            })
            .collect()
    };
    let mut chunks = files.chunks(CHUNK).enumerate().map(|(n, chunk)| (n * CHUNK, chunk));
    let Some((start, first)) = chunks.next() else {
        return Ok(());
    };
    let mut current = (first, prepare(start, first));
    loop {
        let next = chunks.next();
        let (handled, next) = rayon::join(
            || -> Result<(), E> {
                let (paths, results) = current;
                let mut results = results.into_iter();
                let mut outcome = Ok(());
                for (path, (size, result)) in paths.iter().zip(&mut results) {
                    if cancel.is_cancelled() {
                        discard(result);
                        outcome = Err(ExportError::Cancelled.into());
                        break;
                    }
                    progress.event(Event::Bytes { n: size });
                    progress.event(Event::Advance { n: 1 });
                    if let Err(e) = handle(path, result) {
                        outcome = Err(e);
                        break;
                    }
                }
                results.for_each(|(_, result)| discard(result));
                outcome
            },
            || next.map(|(start, chunk)| (chunk, prepare(start, chunk))),
        );
        match (handled, next) {
            (Ok(()), Some(n)) => current = n,
            (Ok(()), None) => return Ok(()),
            (Err(e), next) => {
                for (_, result) in next.into_iter().flat_map(|(_, results)| results) {
                    discard(result);
                }
                return Err(e);
            }
        }
    }
}

/// Why one patient's bundle was not written: the reason the report's `failed` list gives. The
/// text names the outbox and the step, never a value read from a file.
#[derive(Debug, Error)]
enum PatientError {
    /// The bundle could not be written.
    #[error(transparent)]
    Write(#[from] crate::bundle::writer::WriteError),
    /// The sealed identity record could not be written.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// A temporary file in the outbox could not be made.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Reading an input or a temporary file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The run was stopped (the caller checks its [`Cancel`] and reports that instead).
    #[error(transparent)]
    Stopped(#[from] ExportError),
    /// The thread finishing the bundle panicked.
    #[error("the thread finishing the bundle stopped unexpectedly")]
    FinisherStopped,
}

/// A patient's bundle with every instance written; what is left (identity record, manifest,
/// site tag, the end of compression, sync and rename) is [`PendingBundle::finish`].
struct PendingBundle {
    writer: BundleWriter,
    /// Keeps the sealed identity record's temporary file until the bundle holds it.
    identity: tempfile::NamedTempFile,
    sealed_identity: std::fs::File,
    instances: u64,
}

impl PendingBundle {
    /// Finishes and commits the bundle; gives back its compressor when all went well.
    fn finish(
        self,
        profile: ProfileInfo,
        site_key: &SiteSecretKey,
    ) -> Result<(BundleSummary, Compressor), PatientError> {
        let bundle_id = self.writer.bundle_id().to_string();
        let (path, compressor) = self
            .writer
            .finish_keeping_compressor(self.sealed_identity, profile, site_key)?;
        drop(self.identity);
        let summary = BundleSummary {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bundle_id,
            instances: self.instances,
        };
        Ok((summary, compressor))
    }
}

/// Records how finishing patient `index`'s bundle ended (a panic in the finishing thread counts
/// as a failure, never as a written bundle) and returns its compressor for reuse.
fn record_finished(
    report: &mut ExportReport,
    progress: &dyn Progress,
    index: usize,
    files: usize,
    joined: std::thread::Result<Result<(BundleSummary, Compressor), PatientError>>,
) -> Option<Compressor> {
    let outcome = joined.unwrap_or(Err(PatientError::FinisherStopped));
    match outcome {
        Ok((summary, compressor)) => {
            progress.event(Event::BundleWritten {
                file: summary.file.clone(),
                instances: summary.instances,
            });
            report.bundles.push(summary);
            Some(compressor)
        }
        Err(reason) => {
            report.failed.push(FailedPatient {
                patient: index + 1,
                files,
                reason: reason.to_string(),
            });
            None
        }
    }
}

/// Writes one patient's instances into a bundle and seals the identity record. `Ok(None)` when
/// every file was left out (no bundle); `Err` with a reason (holding no patient data) when the
/// bundle could not be written.
#[allow(clippy::too_many_arguments)]
fn export_patient(
    ctx: &ExportContext,
    input: &Path,
    out: &Path,
    local_id: &LocalId,
    linkage: Option<crate::linkage::LinkageRecord>,
    files: &[PathBuf],
    compressor: Option<Compressor>,
    report: &mut ExportReport,
    actions: &mut ActionCounts,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<Option<PendingBundle>, PatientError> {
    let mut writer = match compressor {
        Some(c) => BundleWriter::create_with(out, &ctx.config.site, &ctx.config.recipients, c),
        None => BundleWriter::create(out, &ctx.config.site, &ctx.config.recipients),
    }?;
    let identity_file = tempfile::Builder::new()
        .prefix(".pseal-identity-")
        .tempfile_in(out)
        .map_err(|e| PathError::new(Role::Outbox, out, e))?;
    let header = IdentityHeader::new(writer.bundle_id().to_string(), local_id.clone(), linkage);
    let mut sealer = IdentitySealer::new(
        std::io::BufWriter::new(identity_file.reopen()?),
        &ctx.config.recipients,
        &header,
    )?;
    let uid_key = UidPlaceholderKey::random();

    let deidentify = |_: usize, path: &Path| instance::deidentify_path(path, &ctx.profile, &uid_key);
    for_each_instance(
        files,
        progress,
        cancel,
        deidentify,
        |path, result| {
            match result {
                Ok(done) => {
                    let mut data = done.encoded.reader()?;
                    let entry = writer.add_instance_from(done.encoded.len(), &mut data)?;
                    drop(data);
                    sealer.add(&InstanceRecord {
                        entry,
                        captured: done.captured,
                    })?;
                    actions.merge(&done.actions);
                    report.counts.exported += 1;
                }
                Err(left_out) => {
                    let rel = scan::relative(input, path);
                    progress.event(Event::Quarantined {
                        path: rel.clone(),
                        reason: left_out.to_string(),
                    });
                    report.quarantined.push(LeftOut {
                        path: rel,
                        reason: left_out.to_string(),
                    });
                }
            }
            Ok::<(), PatientError>(())
        },
        drop,
    )?;
    let instances = writer.instance_count();
    if instances == 0 {
        return Ok(None);
    }
    let sealed = sealer.finish()?;
    sealed.into_inner().map_err(|e| e.into_error())?;
    let sealed_identity = identity_file.reopen()?;
    Ok(Some(PendingBundle {
        writer,
        identity: identity_file,
        sealed_identity,
        instances,
    }))
}
