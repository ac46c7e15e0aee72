//! The documents every release carries: README (how the data were made), CHANGES,
//! `dataset_description.json`, the participants table's dictionary, and the data dictionary of
//! `index.csv`. Their text depends only on the release's content, the settings and the release
//! date, so two releases of the same selection differ in the date alone.

use super::config::ReleaseConfig;
use super::subjects::AGE_CAP;
use crate::archive::INDEX_COLUMNS;
use chrono::NaiveDate;
use serde_json::json;
use std::collections::BTreeMap;

/// The BIDS version releases follow.
pub const BIDS_VERSION: &str = "1.10.0";

/// Which layout a release has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The archive's DICOM files keyed by pseudonym, with `index.csv`.
    Dicom,
    /// BIDS: NIfTI images with JSON sidecars, converted by dcm2niix.
    Bids,
}

impl Format {
    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Format::Dicom => "dicom",
            Format::Bids => "bids",
        }
    }

    /// The top folder of the release (`archive/` as before, `bids/`).
    pub fn root(self) -> &'static str {
        match self {
            Format::Dicom => "archive",
            Format::Bids => "bids",
        }
    }
}

/// Counts the README and the summary report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Participants (patients).
    pub participants: u64,
    /// Sessions (studies).
    pub sessions: u64,
    /// DICOM series read.
    pub series: u64,
    /// DICOM instances read.
    pub instances: u64,
}

/// What became of the series of a BIDS release.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeriesOutcomes {
    /// Converted to NIfTI.
    pub converted: u64,
    /// Left out by an `exclude` rule.
    pub excluded: u64,
    /// Matched by no rule.
    pub unmatched: u64,
    /// Matched, but dcm2niix could not convert them as BIDS needs.
    pub failed: u64,
}

/// The BIDS-specific facts of a release.
#[derive(Debug, Clone)]
pub struct BidsFacts {
    /// The rule file's name and SHA-256.
    pub rules: (String, String),
    /// dcm2niix's version.
    pub dcm2niix_version: String,
    /// The options pseal gave dcm2niix.
    pub dcm2niix_options: String,
    /// Series outcomes.
    pub outcomes: SeriesOutcomes,
    /// Whether unconverted series are kept as DICOM under `sourcedata/dicom/`.
    pub keep_unconverted: bool,
}

/// Everything the README says about one release.
#[derive(Debug, Clone)]
pub struct About<'a> {
    /// The format.
    pub format: Format,
    /// The pseudonym domain.
    pub domain: &'a str,
    /// The release date.
    pub date: NaiveDate,
    /// `None` for the whole domain, else how many pseudonyms the steward listed.
    pub listed: Option<usize>,
    /// The steward's settings.
    pub config: &'a ReleaseConfig,
    /// Counts.
    pub counts: &'a Counts,
    /// De-identification Method values found, with the number of series carrying each.
    pub deidentification: &'a BTreeMap<String, u64>,
    /// BIDS facts (BIDS releases only).
    pub bids: Option<&'a BidsFacts>,
    /// Pseudonyms merged (one patient at two sites) or split again since the previous release.
    pub pseudonym_changes: &'a [crate::linkage::changes::MergeChange],
}

/// pseal's version.
pub fn pseal_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn placeholder(setting: &str) -> String {
    format!(
        "[not configured: the steward sets `{setting}` in {}]",
        super::config::CONFIG_FILE
    )
}

/// The README.
pub fn readme(a: &About<'_>) -> String {
    let c = a.counts;
    let name = a
        .config
        .name
        .clone()
        .unwrap_or_else(|| format!("pseal research release, project {}", a.domain));
    let mut s = String::new();
    let line = |s: &mut String, text: &str| {
        s.push_str(text);
        s.push('\n');
    };
    line(&mut s, &name);
    line(&mut s, &"=".repeat(name.chars().count()));
    line(&mut s, "");
    line(
        &mut s,
        &format!(
            "A pseudonymised research release in {} format, made with pseal {} on {}.",
            match a.format {
                Format::Dicom => "DICOM",
                Format::Bids => "BIDS",
            },
            pseal_version(),
            a.date.format("%Y-%m-%d")
        ),
    );
    line(&mut s, "");
    line(&mut s, &format!("Research project (pseudonym domain): {}", a.domain));
    line(
        &mut s,
        &match a.listed {
            None => "Selection: every patient of the project in the steward's archive".to_string(),
            Some(n) => format!("Selection: the {n} patient(s) the steward listed"),
        },
    );
    line(
        &mut s,
        &format!(
            "Participants: {}; sessions: {}; DICOM series: {}; DICOM instances: {}",
            c.participants, c.sessions, c.series, c.instances
        ),
    );
    if let Some(b) = a.bids {
        let o = &b.outcomes;
        line(
            &mut s,
            &format!(
                "Series converted to NIfTI: {}; excluded by a rule: {}; matched by no rule: {}; failed to convert: {}",
                o.converted, o.excluded, o.unmatched, o.failed
            ),
        );
    }
    line(&mut s, "");
    line(&mut s, &format!("Contact: {}", a.config.contact_or_placeholder()));
    line(&mut s, &format!("How to cite: {}", a.config.citation_or_placeholder()));
    line(
        &mut s,
        &format!(
            "Licence and terms of use: {}",
            a.config.license.clone().unwrap_or_else(|| placeholder("license"))
        ),
    );
    line(&mut s, "");
    line(&mut s, "How the data were made");
    line(&mut s, "----------------------");
    line(&mut s, "");
    line(
        &mut s,
        "1. De-identification at the hospitals. Before any file left a hospital, pseal applied the DICOM\n   \
         PS3.15 Basic Application Level Confidentiality Profile to it. Each file records what was applied\n   \
         in De-identification Method (0012,0063); in this release:",
    );
    if a.deidentification.is_empty() {
        line(&mut s, "     (no file states a method)");
    }
    for (method, n) in a.deidentification {
        let method = if method.is_empty() { "(empty)" } else { method };
        line(&mut s, &format!("     {n} series: {method}"));
    }
    line(
        &mut s,
        "   Removed or emptied: names, IDs, birth date, addresses, accession numbers, physicians and\n   \
         operators, institution and device identifiers, every private (vendor) attribute, overlays,\n   \
         and free text no rule keeps. Descriptions were kept only when every word is acquisition\n   \
         vocabulary. Files that may show identifying text in their pixels (burned-in annotation,\n   \
         screenshots, secondary captures) stayed at the hospital. Faces are NOT removed: a 3D head\n   \
         image can be rendered into a recognisable face.",
    );
    line(
        &mut s,
        "2. Pseudonymisation by the network's data steward. Each patient got a random pseudonym (not\n   \
         derived from any identity); every UID was replaced by an archive UID derived with a key only\n   \
         the steward holds (different in each research project); every date of a patient was moved by\n   \
         the same random number of whole days (366 to 3652 days into the past), so intervals are\n   \
         exact; the age at each scan was computed from the true dates (ages over 89 written as 90 in\n   \
         DICOM).",
    );
    match a.bids {
        None => line(
            &mut s,
            "3. Packaging. The archived DICOM files are released unchanged, with index.csv (one row per\n   \
             instance; its columns are described in index.json), the participants table and SHA256SUMS.",
        ),
        Some(b) => {
            line(
                &mut s,
                &format!(
                    "3. Conversion. Each DICOM series was classified by the rule file\n   \
                     \"{}\"\n   \
                     (SHA-256 {}):\n   \
                     the first rule whose conditions hold decides its BIDS datatype and suffix, or\n   \
                     excludes it with a reason; a series no rule matches is not converted (never\n   \
                     guessed). dcm2niix {} converted each classified series on its own, with the\n   \
                     options `{}`;\n   \
                     the JSON sidecars were written anonymised (-ba y) and pseal removed every key\n   \
                     naming a site, a person, a UID or a date. sourcedata/series.tsv lists every series\n   \
                     and what became of it.",
                    b.rules.0, b.rules.1, b.dcm2niix_version, b.dcm2niix_options
                ),
            );
            if b.keep_unconverted {
                line(
                    &mut s,
                    "   Series that were not converted (no rule matched, or conversion failed) are kept as DICOM\n   \
                     under sourcedata/dicom/sub-<label>/ses-<NN>/<series UID>/. Unlike the BIDS files, those\n   \
                     DICOM files carry shifted absolute dates.",
                );
            }
        }
    }
    line(&mut s, "");
    line(&mut s, "Dates and ages");
    line(&mut s, "--------------");
    line(&mut s, "");
    match a.format {
        Format::Bids => line(
            &mut s,
            "No absolute date appears in this dataset. sub-<label>_sessions.tsv gives, for each session,\n\
             the days since the participant's first session (exact, from the shifted dates) and the age at\n\
             that session. Sessions are numbered ses-01, ses-02… in date order (two sessions on one day in\n\
             order of study time).",
        ),
        Format::Dicom => line(
            &mut s,
            "Dates in the files and in index.csv are SHIFTED: the same offset for all dates of a patient,\n\
             different between patients. Intervals within a patient are exact (index.csv's\n\
             days_since_first_session); do not compare dates across patients or study calendar effects.",
        ),
    }
    line(
        &mut s,
        &format!(
            "Ages are whole years at the scan, computed by the steward from the true dates; {AGE_CAP} stands\n\
             for {AGE_CAP} or older (participants.tsv gives the age at the first session)."
        ),
    );
    line(&mut s, "");
    line(&mut s, "Files");
    line(&mut s, "-----");
    line(&mut s, "");
    match a.format {
        Format::Bids => line(
            &mut s,
            "dataset_description.json   name, BIDS version, the tools that made the dataset (GeneratedBy)\n\
             participants.tsv (+ .json) participant_id, pseudonym, age at first session, sex\n\
             sub-<label>/sub-<label>_sessions.tsv        session_id, days_since_first_session, age\n\
             sub-<label>/ses-<NN>/sub-<label>_ses-<NN>_scans.tsv   each image with its DICOM series number\n\
             sub-<label>/ses-<NN>/<datatype>/*.nii.gz (+ .json, .bval, .bvec)   images and sidecars\n\
             sourcedata/series.tsv (+ .json)   every DICOM series: its outcome, rule and reason\n\
             SHA256SUMS   SHA-256 of every other file; check with `sha256sum -c SHA256SUMS`\n\
             The participant label is the pseudonym without its hyphens (BIDS labels are alphanumeric);\n\
             participants.tsv gives the pseudonym as the network writes it.",
        ),
        Format::Dicom => line(
            &mut s,
            "index.csv (+ index.json)   one row per DICOM instance; index.json describes every column\n\
             participants.tsv (+ .json) pseudonym, age at first session, sex, sessions\n\
             <pseudonym>/<study UID>/<series UID>/<SOP instance UID>.dcm   the DICOM files\n\
             SHA256SUMS   SHA-256 of every other file; check with `sha256sum -c SHA256SUMS`",
        ),
    }
    line(&mut s, "");
    line(&mut s, "Your obligations");
    line(&mut s, "----------------");
    line(&mut s, "");
    line(
        &mut s,
        "The data are pseudonymised, not anonymous: the data steward can, under an audited procedure, go\n\
         back from a pseudonym to a hospital patient. Use the data only as your data use agreement allows,\n\
         never try to find out who a patient is, and report an incidental finding with the pseudonym and\n\
         the session to the contact above.",
    );
    s
}

/// CHANGES, in the CPAN changelog form BIDS asks for; pseudonyms merged or split since the
/// previous release follow as items of their own.
pub fn changes(a: &About<'_>) -> String {
    let c = a.counts;
    let mut text = format!(
        "1.0.0 {}\n  - Release made with pseal {} for research project {} ({} format): {} participant(s), \
         {} session(s), {} DICOM series.\n",
        a.date.format("%Y-%m-%d"),
        pseal_version(),
        a.domain,
        a.format.name(),
        c.participants,
        c.sessions,
        c.series
    );
    for line in crate::linkage::changes::changes_text(a.pseudonym_changes).lines() {
        text.push_str("  - ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

/// `dataset_description.json` of a BIDS release.
pub fn dataset_description(a: &About<'_>, facts: &BidsFacts) -> Vec<u8> {
    let mut d = serde_json::Map::new();
    d.insert(
        "Name".into(),
        json!(a
            .config
            .name
            .clone()
            .unwrap_or_else(|| format!("pseal research release, project {}", a.domain))),
    );
    d.insert("BIDSVersion".into(), json!(BIDS_VERSION));
    d.insert("DatasetType".into(), json!("raw"));
    if let Some(l) = &a.config.license {
        d.insert("License".into(), json!(l));
    }
    if !a.config.authors.is_empty() {
        d.insert("Authors".into(), json!(a.config.authors));
    }
    if let Some(h) = &a.config.how_to_cite {
        d.insert("HowToAcknowledge".into(), json!(h));
    }
    if !a.config.funding.is_empty() {
        d.insert("Funding".into(), json!(a.config.funding));
    }
    if !a.config.ethics_approvals.is_empty() {
        d.insert("EthicsApprovals".into(), json!(a.config.ethics_approvals));
    }
    d.insert(
        "GeneratedBy".into(),
        json!([
            {
                "Name": "pseal",
                "Version": pseal_version(),
                "Description": format!("pseudonymised release of research project {}: de-identified at the hospitals (DICOM PS3.15), pseudonymised and date-shifted by the data steward", a.domain),
            },
            {
                "Name": "dcm2niix",
                "Version": facts.dcm2niix_version,
                "Description": format!("DICOM to NIfTI conversion, options {}", facts.dcm2niix_options),
            }
        ]),
    );
    pretty(&serde_json::Value::Object(d))
}

/// The dictionary of `participants.tsv`.
pub fn participants_json(format: Format) -> Vec<u8> {
    let age = json!({
        "Description": format!("Age at the participant's first session, in whole years, computed from the true dates; {AGE_CAP} stands for {AGE_CAP} or older; n/a when the hospital sent no birth date"),
        "Units": "year",
    });
    let sex = json!({
        "Description": "Patient's Sex as the hospital recorded it",
        "Levels": { "F": "female", "M": "male", "O": "other" },
    });
    let pseudonym = json!({
        "Description": "The patient's pseudonym as the network writes it (quote it when reporting an incidental finding)",
    });
    let value = match format {
        Format::Bids => json!({
            "participant_id": { "Description": "BIDS label: sub- and the pseudonym without hyphens" },
            "pseudonym": pseudonym,
            "age": age,
            "sex": sex,
        }),
        Format::Dicom => json!({
            "pseudonym": pseudonym,
            "age": age,
            "sex": sex,
            "sessions": { "Description": "Number of sessions (studies) of the participant in this release" },
        }),
    };
    pretty(&value)
}

/// Descriptions of the columns of `index.csv`, in column order: (column, description, units).
pub const INDEX_DICTIONARY: [(&str, &str, Option<&str>); 22] = [
    (
        "pseudonym",
        "The patient's pseudonym (also the folder name, and Patient ID and Patient's Name in the files)",
        None,
    ),
    (
        "study_uid",
        "Study Instance UID in the archive (a keyed 2.25 UID, stable across releases of one project)",
        None,
    ),
    ("series_uid", "Series Instance UID in the archive", None),
    ("sop_uid", "SOP Instance UID in the archive (also the file name)", None),
    ("modality", "Modality as acquired (MR, CT, …)", None),
    (
        "study_date",
        "Shifted Study Date, YYYYMMDD: all dates of a patient moved by the same number of days",
        None,
    ),
    (
        "series_description",
        "Series Description as kept by the hospital's de-identification (empty when removed)",
        None,
    ),
    (
        "path",
        "The file, relative to the folder that holds index.csv, /-separated",
        None,
    ),
    (
        "patient_age",
        "Age at the scan as DICOM writes it (NNNY, NNNM, NNND); 090Y means 90 or older",
        None,
    ),
    ("patient_sex", "Patient's Sex: F, M, O or empty", None),
    ("domain", "The research project (pseudonym domain)", None),
    (
        "session_index",
        "The patient's session (study) number from 1, in order of shifted study date and time",
        None,
    ),
    (
        "days_since_first_session",
        "Days from the patient's first session to this one (empty without a study date)",
        Some("day"),
    ),
    ("series_number", "Series Number", None),
    ("instance_number", "Instance Number", None),
    ("manufacturer", "Manufacturer of the scanner", None),
    ("model", "Manufacturer's Model Name", None),
    ("field_strength", "Magnetic Field Strength", Some("T")),
    ("sequence_name", "Sequence Name as the scanner wrote it", None),
    ("slice_thickness", "Slice Thickness", Some("mm")),
    ("rows", "Rows of the image", None),
    ("columns", "Columns of the image", None),
];

/// The data dictionary of `index.csv` (`index.json`), in the form BIDS uses for tabular files.
pub fn index_json() -> Vec<u8> {
    let mut map = serde_json::Map::new();
    for (column, description, units) in INDEX_DICTIONARY {
        let mut entry = serde_json::Map::new();
        entry.insert("Description".into(), json!(description));
        if let Some(u) = units {
            entry.insert("Units".into(), json!(u));
        }
        map.insert(column.into(), serde_json::Value::Object(entry));
    }
    // serde_json sorts keys; the column order is index.csv's own.
    debug_assert_eq!(INDEX_COLUMNS.len(), INDEX_DICTIONARY.len());
    pretty(&serde_json::Value::Object(map))
}

/// The dictionary of every `sub-*_sessions.tsv` (inherited from the dataset root).
pub fn sessions_json() -> Vec<u8> {
    pretty(&json!({
        "days_since_first_session": { "Description": "Days from the participant's first session to this one, exact (computed from dates shifted by one offset per participant); n/a without a study date", "Units": "day" },
        "age": { "Description": format!("Age at this session in whole years; {AGE_CAP} stands for {AGE_CAP} or older"), "Units": "year" },
    }))
}

/// The dictionary of every `*_scans.tsv` (inherited from the dataset root).
pub fn scans_json() -> Vec<u8> {
    pretty(&json!({
        "series_number": { "Description": "Series Number of the DICOM series the image was converted from (see sourcedata/series.tsv)" },
    }))
}

/// Columns of `sourcedata/series.tsv`.
pub const SERIES_COLUMNS: [&str; 11] = [
    "participant_id",
    "session_id",
    "series_number",
    "series_uid",
    "modality",
    "series_description",
    "instances",
    "outcome",
    "rule",
    "reason",
    "files",
];

/// The dictionary of `sourcedata/series.tsv`.
pub fn series_json() -> Vec<u8> {
    pretty(&json!({
        "participant_id": { "Description": "BIDS participant label" },
        "session_id": { "Description": "BIDS session label" },
        "series_number": { "Description": "Series Number" },
        "series_uid": { "Description": "Series Instance UID in the network's archive (the same as in a DICOM release of the project)" },
        "modality": { "Description": "Modality" },
        "series_description": { "Description": "Series Description as kept by de-identification" },
        "instances": { "Description": "DICOM instances in the series" },
        "outcome": { "Description": "What became of the series", "Levels": {
            "converted": "converted to the BIDS files listed under files",
            "excluded": "left out by a rule (see reason)",
            "unmatched": "no rule matched: not converted, not guessed",
            "failed": "a rule matched but dcm2niix could not convert it as BIDS needs (see reason)",
        } },
        "rule": { "Description": "The rule that decided, n/a when none matched" },
        "reason": { "Description": "Why the series was not converted" },
        "files": { "Description": "The files made from the series (space-separated, relative to the dataset root), or the folder its DICOM files are kept in" },
    }))
}

/// A value as one TSV field: tabs and line breaks become spaces, empty becomes `n/a`.
pub fn tsv_field(value: &str) -> String {
    let v: String = value
        .chars()
        .map(|c| if matches!(c, '\t' | '\n' | '\r') { ' ' } else { c })
        .collect();
    let v = v.trim();
    if v.is_empty() {
        "n/a".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_column_is_described_in_order() {
        let described: Vec<&str> = INDEX_DICTIONARY.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(described, INDEX_COLUMNS);
    }

    #[test]
    fn tsv_fields_never_break_a_row() {
        assert_eq!(tsv_field("a\tb\nc"), "a b c");
        assert_eq!(tsv_field("  "), "n/a");
    }

    #[test]
    fn the_readme_names_missing_settings_and_depends_only_on_the_inputs() {
        let config = ReleaseConfig::default();
        let counts = Counts {
            participants: 2,
            sessions: 4,
            series: 8,
            instances: 64,
        };
        let methods = BTreeMap::from([("DICOM PS3.15 E.1-1 Basic".to_string(), 8u64)]);
        let about = About {
            format: Format::Dicom,
            domain: "glioma",
            date: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap_or_default(),
            listed: None,
            config: &config,
            counts: &counts,
            deidentification: &methods,
            bids: None,
            pseudonym_changes: &[],
        };
        let text = readme(&about);
        assert!(text.contains("`contact` in release.toml"));
        assert!(text.contains("8 series: DICOM PS3.15 E.1-1 Basic"));
        assert!(text.contains("2026-11-03"));
        assert_eq!(text, readme(&about));
        assert!(changes(&about).starts_with("1.0.0 2026-11-03\n"));
        assert_eq!(changes(&about).lines().count(), 2, "no pseudonym changed");
        let merged = [crate::linkage::changes::MergeChange {
            at: 1_793_750_400,
            kind: "merged",
            link: 7,
            retired: "AAAA-BBBB-CCCC1".into(),
            survivor: "DDDD-EEEE-FFFF2".into(),
        }];
        let about = About {
            pseudonym_changes: &merged,
            ..about
        };
        assert!(
            changes(&about).contains("\n  - 2026-11-04  AAAA-BBBB-CCCC1 merged into DDDD-EEEE-FFFF2"),
            "{}",
            changes(&about)
        );
    }
}
