//! The BIDS release: each patient a `sub-<pseudonym without hyphens>`, each study a `ses-<NN>` in
//! the store's session order, each series classified by the rule file ([`rules`]) and converted
//! on its own by dcm2niix ([`dcm2niix`]) in a scratch folder whose files go straight into the
//! package and are deleted, so memory and scratch space stay those of one series.
//!
//! Every series of the selection ends up in `sourcedata/series.tsv` with its outcome: converted,
//! excluded by a rule, unmatched (no rule: never guessed) or failed (with dcm2niix's reason).

pub mod dcm2niix;
pub mod rules;

use super::metadata::{tsv_field, SeriesOutcomes, SERIES_COLUMNS};
use super::package::Package;
use super::subjects::{read_header, Patient, Series, Session};
use super::{ReleaseError, Stats};
use dcm2niix::{clean_sidecar, echo_of, Dcm2niix, Image};
use pseal::progress::{Event, Progress};
use rules::{Decision, Rules, Target, ENTITY_ORDER};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a release stops at an archive file that is not there.
const MISSING: &str = "the archive file is missing (restore the archive, or rebuild it with import --repair)";

/// How many not-converted series the summary lists by name (all are in `sourcedata/series.tsv`).
const SUMMARY_LIST_MAX: usize = 100;

/// Why a BIDS release cannot start: its rules or its converter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BidsSetupError {
    /// The rule file could not be read or is not valid.
    #[error(transparent)]
    Rules(#[from] rules::RulesError),
    /// dcm2niix was not found or does not run.
    #[error(transparent)]
    Converter(#[from] dcm2niix::ConverterError),
}

/// What a BIDS release needs besides the selection.
#[derive(Debug, Clone)]
pub struct BidsOptions {
    /// The classification rules.
    pub rules: Rules,
    /// The converter.
    pub converter: Dcm2niix,
    /// Keep series that were not converted (unmatched or failed) as DICOM under `sourcedata/dicom/`.
    pub keep_unconverted: bool,
}

impl BidsOptions {
    /// The rules from `rules` (or the shipped default) and dcm2niix from `dcm2niix` (or
    /// `PSEAL_DCM2NIIX`, or `PATH`).
    pub fn load(
        rules: Option<&Path>,
        dcm2niix: Option<&Path>,
        keep_unconverted: bool,
    ) -> Result<BidsOptions, BidsSetupError> {
        let rules = match rules {
            Some(p) => Rules::read(p),
            None => Rules::default_rules(),
        }?;
        let converter = Dcm2niix::locate(dcm2niix)?;
        Ok(BidsOptions {
            rules,
            converter,
            keep_unconverted,
        })
    }
}

/// A series that was not converted, as the summary reports it (no value that identifies anyone:
/// labels, the series number and the description de-identification kept).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotConverted {
    /// BIDS participant label (`sub-…`).
    pub participant_id: String,
    /// BIDS session label (`ses-…`).
    pub session_id: String,
    /// Series Number.
    pub series_number: String,
    /// Series Description.
    pub series_description: String,
    /// `excluded`, `unmatched` or `failed`.
    pub outcome: &'static str,
    /// Why.
    pub reason: String,
}

/// The BIDS label of a pseudonym: its letters and digits.
pub fn participant_label(pseudonym: &str) -> String {
    format!(
        "sub-{}",
        pseudonym
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    )
}

/// What becomes of one series.
enum Outcome {
    Converted(Vec<String>),
    Excluded(String),
    Unmatched,
    Failed(String),
}

/// A BIDS release being written.
pub(crate) struct BidsRelease<'a> {
    options: &'a BidsOptions,
    participants: BufWriter<File>,
    participants_path: PathBuf,
    series: BufWriter<File>,
    series_path: PathBuf,
    /// What became of the series so far.
    pub(crate) outcomes: SeriesOutcomes,
    /// The first not-converted series, for the summary.
    pub(crate) not_converted: Vec<NotConverted>,
    out: PathBuf,
}

/// Errors of the scratch files name the release being written, not a temporary name.
fn scratch_err(out: &Path) -> impl Fn(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Scratch {
        out: out.to_path_buf(),
        source,
    }
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file name of a BIDS image without extension.
fn bids_name(sub: &str, ses: &str, entities: &BTreeMap<String, String>, suffix: &str) -> String {
    let mut name = format!("{sub}_{ses}");
    for key in ENTITY_ORDER.iter().chain(std::iter::once(&"part")) {
        if let Some(v) = entities.get(*key) {
            name.push_str(&format!("_{key}-{v}"));
        }
    }
    name.push('_');
    name.push_str(suffix);
    name
}

impl<'a> BidsRelease<'a> {
    /// Starts the spooled tables in `work`.
    pub(crate) fn new(options: &'a BidsOptions, work: &Path, out: &Path) -> Result<BidsRelease<'a>, ReleaseError> {
        let participants_path = work.join("participants.tsv");
        let series_path = work.join("series.tsv");
        let mut participants = BufWriter::new(File::create(&participants_path).map_err(scratch_err(out))?);
        participants
            .write_all(b"participant_id\tpseudonym\tage\tsex\n")
            .map_err(scratch_err(out))?;
        let mut series = BufWriter::new(File::create(&series_path).map_err(scratch_err(out))?);
        writeln!(series, "{}", SERIES_COLUMNS.join("\t")).map_err(scratch_err(out))?;
        Ok(BidsRelease {
            options,
            participants,
            participants_path,
            series,
            series_path,
            outcomes: SeriesOutcomes::default(),
            not_converted: Vec::new(),
            out: out.to_path_buf(),
        })
    }

    /// Converts one patient's series and adds the images, sidecars and tables to the package.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_patient(
        &mut self,
        package: &mut Package,
        out: &Path,
        archive: &Path,
        patient: &Patient,
        stats: &mut Stats,
        progress: &dyn Progress,
    ) -> Result<(), ReleaseError> {
        let sub = participant_label(&patient.pseudonym);
        let last = patient.sessions.last().map_or(1, |s| s.index);
        let width = last.to_string().len().max(2);
        let mut sessions_rows = String::new();
        for session in &patient.sessions {
            let ses = format!("ses-{:0width$}", session.index);
            let scans = self.add_session(package, out, archive, &sub, &ses, session, stats, progress)?;
            if scans.is_empty() {
                continue;
            }
            let mut table = String::from("filename\tseries_number\n");
            for (file, number) in &scans {
                table.push_str(&format!("{file}\t{}\n", tsv_field(number)));
            }
            package
                .add_bytes(&format!("{sub}/{ses}/{sub}_{ses}_scans.tsv"), table.as_bytes())
                .map_err(io_at(out))?;
            sessions_rows.push_str(&format!(
                "{ses}\t{}\t{}\n",
                session.days.map_or("n/a".to_string(), |d| d.to_string()),
                session.age.map_or("n/a".to_string(), |a| a.to_string())
            ));
        }
        stats.add(patient);
        if sessions_rows.is_empty() {
            // Nothing converted: the participant is in sourcedata/series.tsv only (BIDS lists
            // in participants.tsv exactly the subjects that have data).
            return Ok(());
        }
        package
            .add_bytes(
                &format!("{sub}/{sub}_sessions.tsv"),
                format!("session_id\tdays_since_first_session\tage\n{sessions_rows}").as_bytes(),
            )
            .map_err(io_at(out))?;
        writeln!(
            self.participants,
            "{sub}\t{}\t{}\t{}",
            patient.pseudonym,
            patient
                .age_at_first_session()
                .map_or("n/a".to_string(), |a| a.to_string()),
            tsv_field(&patient.sex)
        )
        .map_err(scratch_err(&self.out))?;
        Ok(())
    }

    /// Classifies, names and converts the series of one session; returns the scans (file
    /// relative to the session folder, series number).
    #[allow(clippy::too_many_arguments)]
    fn add_session(
        &mut self,
        package: &mut Package,
        out: &Path,
        archive: &Path,
        sub: &str,
        ses: &str,
        session: &Session,
        stats: &mut Stats,
        progress: &dyn Progress,
    ) -> Result<Vec<(String, String)>, ReleaseError> {
        // Classify every series first: names need to know whether a session holds two series
        // of one name (then run-1, run-2… in series order).
        let mut decided = Vec::with_capacity(session.series.len());
        for series in &session.series {
            // A missing file is a damaged archive, not a series dcm2niix could not convert: the
            // release stops, as a DICOM release does.
            for row in &series.instances {
                let src = archive.join(&row.path);
                if !src.is_file() {
                    return Err(ReleaseError::Io {
                        path: src,
                        source: std::io::Error::new(std::io::ErrorKind::NotFound, MISSING),
                    });
                }
            }
            let first = archive.join(&series.instances[0].path);
            let decision = match read_header(&first) {
                Ok(header) => {
                    *stats
                        .deidentification
                        .entry(header.deidentification.clone())
                        .or_default() += 1;
                    Ok(self.options.rules.classify(&header.attributes))
                }
                Err(e) => {
                    *stats.deidentification.entry("(unreadable)".into()).or_default() += 1;
                    Err(format!("its first instance could not be read: {e}"))
                }
            };
            decided.push(decision);
        }
        let mut names: BTreeMap<String, u32> = BTreeMap::new();
        for d in &decided {
            if let Ok(Decision::Matched {
                target:
                    Target::Bids {
                        datatype,
                        suffix,
                        entities,
                    },
                ..
            }) = d
            {
                *names
                    .entry(format!("{datatype}/{}", bids_name(sub, ses, entities, suffix)))
                    .or_default() += 1;
            }
        }
        let mut runs: BTreeMap<String, u32> = BTreeMap::new();
        let mut scans = Vec::new();
        for (series, decision) in session.series.iter().zip(decided) {
            let (rule, outcome) = match decision {
                Err(reason) => (String::new(), Outcome::Failed(reason)),
                Ok(Decision::Unmatched) => (String::new(), Outcome::Unmatched),
                Ok(Decision::Matched {
                    rule,
                    target: Target::Exclude(reason),
                }) => (rule, Outcome::Excluded(reason)),
                Ok(Decision::Matched {
                    rule,
                    target:
                        Target::Bids {
                            datatype,
                            suffix,
                            mut entities,
                        },
                }) => {
                    let key = format!("{datatype}/{}", bids_name(sub, ses, &entities, &suffix));
                    if names.get(&key).copied().unwrap_or(0) > 1 {
                        let run = runs.entry(key).or_default();
                        *run += 1;
                        entities.insert("run".into(), run.to_string());
                    }
                    let outcome =
                        self.convert(package, out, archive, series, sub, ses, &datatype, &suffix, &entities)?;
                    if let Outcome::Converted(files) = &outcome {
                        for f in files.iter().filter(|f| f.ends_with(".nii.gz")) {
                            scans.push((f.clone(), series.series_number.clone()));
                        }
                    }
                    (rule, outcome)
                }
            };
            self.record(package, out, archive, sub, ses, series, &rule, outcome)?;
            progress.event(Event::Advance { n: 1 });
        }
        Ok(scans)
    }

    /// Runs dcm2niix on one series in a scratch folder and adds what it wrote; a conversion that
    /// does not give what BIDS needs is a [`Outcome::Failed`] with the reason, not an error.
    #[allow(clippy::too_many_arguments)]
    fn convert(
        &self,
        package: &mut Package,
        out: &Path,
        archive: &Path,
        series: &Series,
        sub: &str,
        ses: &str,
        datatype: &str,
        suffix: &str,
        entities: &BTreeMap<String, String>,
    ) -> Result<Outcome, ReleaseError> {
        let scratch = package.work_dir().join("series");
        let (input, output) = (scratch.join("in"), scratch.join("out"));
        let _ = std::fs::remove_dir_all(&scratch);
        for d in [&input, &output] {
            std::fs::create_dir_all(d).map_err(scratch_err(out))?;
        }
        for (i, row) in series.instances.iter().enumerate() {
            let link = input.join(format!("{:06}.dcm", i + 1));
            let src = archive.join(&row.path);
            link_or_copy(&src, &link).map_err(|source| {
                if src.is_file() {
                    scratch_err(out)(source)
                } else {
                    ReleaseError::Io {
                        path: src.clone(),
                        source,
                    }
                }
            })?;
        }
        let converted = self.options.converter.convert(&input, &output);
        let result = match converted {
            Err(reason) => Ok(Outcome::Failed(reason.to_string())),
            Ok(images) => match name_images(images, entities, datatype) {
                Err(reason) => Ok(Outcome::Failed(reason.to_string())),
                Ok(named) => self.add_images(package, out, named, sub, ses, datatype, suffix),
            },
        };
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    /// Adds the named images of one series (after checking every sidecar), or says why not.
    #[allow(clippy::too_many_arguments)]
    fn add_images(
        &self,
        package: &mut Package,
        out: &Path,
        named: Vec<(Image, Entities)>,
        sub: &str,
        ses: &str,
        datatype: &str,
        suffix: &str,
    ) -> Result<Outcome, ReleaseError> {
        // Every sidecar is read and cleaned before anything is added, so that a series is added
        // whole or not at all.
        let mut sidecars = Vec::with_capacity(named.len());
        for (image, _) in &named {
            let Some(json) = &image.json else {
                return Ok(Outcome::Failed("dcm2niix wrote no JSON sidecar".into()));
            };
            let bytes = std::fs::read(json).map_err(scratch_err(out))?;
            match clean_sidecar(&bytes) {
                Ok(clean) => sidecars.push(clean),
                Err(reason) => return Ok(Outcome::Failed(reason.to_string())),
            }
        }
        let mut files = Vec::new();
        for ((image, entities), sidecar) in named.into_iter().zip(sidecars) {
            let stem = format!("{datatype}/{}", bids_name(sub, ses, &entities, suffix));
            let base = format!("{sub}/{ses}/{stem}");
            package
                .add_path(&format!("{base}.nii.gz"), &image.nifti)
                .map_err(io_at(out))?;
            package
                .add_bytes(&format!("{base}.json"), &sidecar)
                .map_err(io_at(out))?;
            files.push(format!("{stem}.nii.gz"));
            files.push(format!("{stem}.json"));
            for (ext, path) in [("bval", &image.bval), ("bvec", &image.bvec)] {
                if let Some(p) = path {
                    package.add_path(&format!("{base}.{ext}"), p).map_err(io_at(out))?;
                    files.push(format!("{stem}.{ext}"));
                }
            }
        }
        Ok(Outcome::Converted(files))
    }

    /// Writes the series' line of `sourcedata/series.tsv`, keeps its DICOM files when asked, and
    /// counts it.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        package: &mut Package,
        out: &Path,
        archive: &Path,
        sub: &str,
        ses: &str,
        series: &Series,
        rule: &str,
        outcome: Outcome,
    ) -> Result<(), ReleaseError> {
        let (label, reason, files) = match outcome {
            Outcome::Converted(files) => {
                self.outcomes.converted += 1;
                let files = files.iter().map(|f| format!("{sub}/{ses}/{f}")).collect::<Vec<_>>();
                ("converted", String::new(), files.join(" "))
            }
            Outcome::Excluded(reason) => {
                self.outcomes.excluded += 1;
                ("excluded", reason, String::new())
            }
            Outcome::Unmatched => {
                self.outcomes.unmatched += 1;
                ("unmatched", "no rule matched".to_string(), String::new())
            }
            Outcome::Failed(reason) => {
                self.outcomes.failed += 1;
                ("failed", reason, String::new())
            }
        };
        let mut files = files;
        if matches!(label, "unmatched" | "failed") {
            if self.options.keep_unconverted {
                let folder = format!("sourcedata/dicom/{sub}/{ses}/{}", series.series_uid);
                for row in &series.instances {
                    let src = archive.join(&row.path);
                    package
                        .add_path(&format!("{folder}/{}.dcm", row.sop_uid), &src)
                        .map_err(io_at(out))?;
                }
                files = format!("{folder}/");
            }
            if self.not_converted.len() < SUMMARY_LIST_MAX {
                self.not_converted.push(NotConverted {
                    participant_id: sub.to_string(),
                    session_id: ses.to_string(),
                    series_number: series.series_number.clone(),
                    series_description: series.description.clone(),
                    outcome: label,
                    reason: reason.clone(),
                });
            }
        }
        let fields = [
            sub,
            ses,
            &series.series_number,
            &series.series_uid,
            &series.modality,
            &series.description,
            &series.instances.len().to_string(),
            label,
            rule,
            &reason,
            &files,
        ];
        let line = fields.iter().map(|f| tsv_field(f)).collect::<Vec<_>>().join("\t");
        writeln!(self.series, "{line}").map_err(scratch_err(&self.out))?;
        Ok(())
    }

    /// Adds the participants table, the series table and the dictionaries.
    pub(crate) fn finish(mut self, package: &mut Package, out: &Path) -> Result<(), ReleaseError> {
        self.participants.flush().map_err(scratch_err(&self.out))?;
        self.series.flush().map_err(scratch_err(&self.out))?;
        let io_out = io_at(out);
        package
            .add_path("participants.tsv", &self.participants_path)
            .map_err(&io_out)?;
        package
            .add_bytes(
                "participants.json",
                &super::metadata::participants_json(super::metadata::Format::Bids),
            )
            .map_err(&io_out)?;
        package
            .add_bytes("sessions.json", &super::metadata::sessions_json())
            .map_err(&io_out)?;
        package
            .add_bytes("scans.json", &super::metadata::scans_json())
            .map_err(&io_out)?;
        package
            .add_path("sourcedata/series.tsv", &self.series_path)
            .map_err(&io_out)?;
        package
            .add_bytes("sourcedata/series.json", &super::metadata::series_json())
            .map_err(&io_out)?;
        // The checksum file is not BIDS; the validator is told to pass over it.
        package
            .add_bytes(
                ".bidsignore",
                format!("{}\n", super::package::CHECKSUMS_FILE).as_bytes(),
            )
            .map_err(&io_out)?;
        Ok(())
    }
}

/// Why dcm2niix's images of a series get no BIDS names (a reason the release lists).
#[derive(Debug, thiserror::Error)]
enum NotNamed {
    /// Several images that are not the echoes of one series (their dcm2niix postfixes).
    #[error("dcm2niix split the series into {} images ({}); pseal does not guess how they map to BIDS", .0.len(), .0.join(", "))]
    Split(Vec<String>),
    /// A dwi series without b-values and vectors.
    #[error("dcm2niix wrote no b-values and vectors, which BIDS dwi requires (a trace or derived image?)")]
    NoGradients,
}

/// BIDS entities of a file name (key → label).
type Entities = BTreeMap<String, String>;

/// Gives each image dcm2niix wrote its entities: one image as it is; several only when they are
/// the echoes of a multi-echo series (`echo-N`). Anything else is not guessed.
fn name_images(
    images: Vec<Image>,
    entities: &BTreeMap<String, String>,
    datatype: &str,
) -> Result<Vec<(Image, Entities)>, NotNamed> {
    let named = if images.len() == 1 && images[0].postfix.is_empty() {
        images.into_iter().map(|i| (i, entities.clone())).collect::<Vec<_>>()
    } else if images.iter().all(|i| echo_of(&i.postfix).is_some()) {
        images
            .into_iter()
            .map(|i| {
                let mut e = entities.clone();
                e.insert("echo".into(), echo_of(&i.postfix).unwrap_or(1).to_string());
                (i, e)
            })
            .collect()
    } else {
        let postfixes: Vec<String> = images
            .iter()
            .map(|i| {
                if i.postfix.is_empty() {
                    "(none)".to_string()
                } else {
                    i.postfix.clone()
                }
            })
            .collect();
        return Err(NotNamed::Split(postfixes));
    };
    if datatype == "dwi" && named.iter().any(|(i, _)| i.bval.is_none() || i.bvec.is_none()) {
        return Err(NotNamed::NoGradients);
    }
    Ok(named)
}

#[cfg(unix)]
fn link_or_copy(src: &Path, link: &Path) -> std::io::Result<()> {
    if !src.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, MISSING));
    }
    std::os::unix::fs::symlink(src, link)
}

#[cfg(not(unix))]
fn link_or_copy(src: &Path, link: &Path) -> std::io::Result<()> {
    std::fs::copy(src, link).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn image(postfix: &str) -> Image {
        Image {
            postfix: postfix.into(),
            nifti: PathBuf::from(format!("pseal{postfix}.nii.gz")),
            json: None,
            bval: None,
            bvec: None,
        }
    }

    #[test]
    fn labels_and_names_follow_bids() {
        assert_eq!(participant_label("4DW3-34RH-EFV4R"), "sub-4DW334RHEFV4R");
        let e = BTreeMap::from([
            ("run".to_string(), "2".to_string()),
            ("ce".to_string(), "gadolinium".to_string()),
            ("echo".to_string(), "1".to_string()),
            ("acq".to_string(), "sag".to_string()),
        ]);
        assert_eq!(
            bids_name("sub-X", "ses-01", &e, "T1w"),
            "sub-X_ses-01_acq-sag_ce-gadolinium_run-2_echo-1_T1w"
        );
    }

    #[test]
    fn only_one_image_or_echoes_are_named_the_rest_is_not_guessed() {
        let none = BTreeMap::new();
        assert_eq!(
            name_images(vec![image("")], &none, "anat").map(|v| v.len()).ok(),
            Some(1)
        );
        let echoes = name_images(vec![image("_e1"), image("_e2")], &none, "anat").unwrap_or_default();
        assert_eq!(echoes[1].1.get("echo").map(String::as_str), Some("2"));
        let err = name_images(vec![image(""), image("_ph")], &none, "anat")
            .unwrap_err()
            .to_string();
        assert!(err.contains("(none), _ph"), "{err}");
        let err = name_images(vec![image("")], &none, "dwi").unwrap_err().to_string();
        assert!(err.contains("b-values"), "{err}");
    }
}
