//! One released patient as both release formats see it: sessions in the store's order (see
//! `store::instances`), series per session, instances per series, age and sex; and what the first
//! instance of a series says about it (for classification and the README).

use super::bids::rules::SeriesAttributes;
use crate::archive::IndexRow;
use dicom_dictionary_std::tags;
use std::collections::BTreeMap;
use std::path::Path;

/// Ages at or above this many years are reported as [`AGE_CAP`] (HIPAA Safe Harbor aggregates
/// ages over 89).
const AGE_CAP_FROM: u32 = 90;
/// The age reported for 90 and over ("89 or older").
pub const AGE_CAP: u32 = 89;

/// A released patient.
#[derive(Debug, Clone)]
pub struct Patient {
    /// The pseudonym (`XXXX-XXXX-XXXXX`).
    pub pseudonym: String,
    /// Patient's Sex as archived (`F`, `M`, `O`), empty when unknown.
    pub sex: String,
    /// Sessions, first to last.
    pub sessions: Vec<Session>,
}

/// One study of a patient.
#[derive(Debug, Clone)]
pub struct Session {
    /// 1-based number (the `session_index` of `index.csv`).
    pub index: u32,
    /// Days since the patient's first session (`None` without a study date).
    pub days: Option<i64>,
    /// Age at this session in whole years, capped at [`AGE_CAP`].
    pub age: Option<u32>,
    /// Series, by series number then UID.
    pub series: Vec<Series>,
}

/// One series of a session.
#[derive(Debug, Clone)]
pub struct Series {
    /// Archive Series Instance UID.
    pub series_uid: String,
    /// Series Number as text (may be empty).
    pub series_number: String,
    /// Modality.
    pub modality: String,
    /// Series Description as archived.
    pub description: String,
    /// Instances in instance-number order.
    pub instances: Vec<IndexRow>,
}

impl Series {
    /// Series Number as a number, for ordering (series without one sort last).
    pub fn number(&self) -> u64 {
        self.series_number.trim().parse().unwrap_or(u64::MAX)
    }
}

/// Whole years of a DICOM age string (`NNNY`, `NNNM`, `NNNW`, `NNND`), capped at [`AGE_CAP`].
pub fn age_years(age: &str) -> Option<u32> {
    let a = age.trim();
    if a.len() < 2 {
        return None;
    }
    let (n, unit) = a.split_at(a.len() - 1);
    let n: u32 = n.parse().ok()?;
    let years = match unit {
        "Y" => n,
        "M" => n / 12,
        "W" => n / 52,
        "D" => n / 365,
        _ => return None,
    };
    Some(if years >= AGE_CAP_FROM { AGE_CAP } else { years })
}

impl Patient {
    /// Groups one patient's index rows (any order) into sessions and series.
    pub fn from_rows(pseudonym: &str, rows: Vec<IndexRow>) -> Patient {
        let sex = rows
            .iter()
            .map(|r| r.patient_sex.trim())
            .find(|s| !s.is_empty())
            .unwrap_or_default()
            .to_string();
        // session index → (days, age, series UID → instances)
        type Grouped = BTreeMap<u32, (Option<i64>, Option<u32>, BTreeMap<String, Vec<IndexRow>>)>;
        let mut sessions: Grouped = BTreeMap::new();
        for row in rows {
            let index = row.session_index.parse().unwrap_or(u32::MAX);
            let entry = sessions.entry(index).or_insert_with(|| {
                (
                    row.days_since_first_session.parse().ok(),
                    age_years(&row.patient_age),
                    BTreeMap::new(),
                )
            });
            entry.2.entry(row.series_uid.clone()).or_default().push(row);
        }
        let sessions = sessions
            .into_iter()
            .map(|(index, (days, age, series))| {
                let mut series: Vec<Series> = series
                    .into_iter()
                    .map(|(series_uid, mut instances)| {
                        instances.sort_by(|a, b| {
                            let n = |r: &IndexRow| r.instance_number.trim().parse::<u64>().unwrap_or(u64::MAX);
                            n(a).cmp(&n(b)).then_with(|| a.path.cmp(&b.path))
                        });
                        let first = &instances[0];
                        Series {
                            series_uid,
                            series_number: first.series_number.clone(),
                            modality: first.modality.clone(),
                            description: first.series_description.clone(),
                            instances,
                        }
                    })
                    .collect();
                series.sort_by(|a, b| {
                    a.number()
                        .cmp(&b.number())
                        .then_with(|| a.series_uid.cmp(&b.series_uid))
                });
                Session {
                    index,
                    days,
                    age,
                    series,
                }
            })
            .collect();
        Patient {
            pseudonym: pseudonym.to_string(),
            sex,
            sessions,
        }
    }

    /// Age at the first session.
    pub fn age_at_first_session(&self) -> Option<u32> {
        self.sessions.first().and_then(|s| s.age)
    }

    /// Instances of every session.
    pub fn instances(&self) -> usize {
        self.sessions
            .iter()
            .flat_map(|s| &s.series)
            .map(|s| s.instances.len())
            .sum()
    }
}

/// What the first instance of a series says about the series.
#[derive(Debug, Clone, Default)]
pub struct SeriesHeader {
    /// The attributes rules classify on.
    pub attributes: SeriesAttributes,
    /// De-identification Method (0012,0063), as the hospital's tool wrote it.
    pub deidentification: String,
}

/// Contrast/bolus attributes: any of them holding a value means contrast was given.
const CONTRAST_TAGS: [dicom_core::Tag; 8] = [
    tags::CONTRAST_BOLUS_AGENT,
    tags::CONTRAST_BOLUS_AGENT_SEQUENCE,
    tags::CONTRAST_BOLUS_ROUTE,
    tags::CONTRAST_BOLUS_VOLUME,
    tags::CONTRAST_BOLUS_START_TIME,
    tags::CONTRAST_BOLUS_TOTAL_DOSE,
    tags::CONTRAST_BOLUS_INGREDIENT,
    tags::CONTRAST_BOLUS_INGREDIENT_CONCENTRATION,
];

/// Reads the attributes of the archived instance `path` (header only).
pub fn read_header(path: &Path) -> Result<SeriesHeader, pseal::part10::OpenError> {
    use crate::rekey::element_text;
    let (obj, _) = pseal::part10::open_split(path)?;
    let multi = |tag| -> Vec<String> {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_multi_str().ok())
            .map(|v| {
                v.iter()
                    .map(|s| s.trim_matches(['\0', ' ']).to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let number = |tag| -> Option<f64> { element_text(&obj, tag).split('\\').next()?.trim().parse().ok() };
    let contrast = CONTRAST_TAGS.iter().any(|tag| match obj.element(*tag) {
        Ok(e) => match e.items() {
            Some(items) => !items.is_empty(),
            None => e.to_str().is_ok_and(|s| !s.trim_matches(['\0', ' ']).is_empty()),
        },
        Err(_) => false,
    });
    Ok(SeriesHeader {
        attributes: SeriesAttributes {
            modality: element_text(&obj, tags::MODALITY),
            series_description: element_text(&obj, tags::SERIES_DESCRIPTION),
            protocol_name: element_text(&obj, tags::PROTOCOL_NAME),
            sequence_name: element_text(&obj, tags::SEQUENCE_NAME),
            mr_acquisition_type: element_text(&obj, tags::MR_ACQUISITION_TYPE),
            image_type: multi(tags::IMAGE_TYPE),
            scanning_sequence: multi(tags::SCANNING_SEQUENCE),
            sequence_variant: multi(tags::SEQUENCE_VARIANT),
            contrast,
            echo_time_ms: number(tags::ECHO_TIME),
            repetition_time_ms: number(tags::REPETITION_TIME),
            inversion_time_ms: number(tags::INVERSION_TIME),
        },
        deidentification: element_text(&obj, tags::DEIDENTIFICATION_METHOD),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_whole_years_and_89_stands_for_89_or_older() {
        assert_eq!(age_years("035Y"), Some(35));
        assert_eq!(age_years("089Y"), Some(89));
        assert_eq!(age_years("090Y"), Some(89));
        assert_eq!(age_years("014M"), Some(1));
        assert_eq!(age_years("010D"), Some(0));
        assert_eq!(age_years(""), None);
        assert_eq!(age_years("abcY"), None);
    }

    fn row(session: &str, series: &str, number: &str, instance: &str) -> IndexRow {
        IndexRow {
            session_index: session.into(),
            days_since_first_session: if session == "1" { "0".into() } else { "90".into() },
            series_uid: series.into(),
            series_number: number.into(),
            instance_number: instance.into(),
            patient_age: "047Y".into(),
            patient_sex: "F".into(),
            path: format!("{series}/{instance}"),
            ..IndexRow::default()
        }
    }

    #[test]
    fn rows_group_into_ordered_sessions_series_and_instances() {
        let rows = vec![
            row("2", "b", "1", "1"),
            row("1", "c", "10", "2"),
            row("1", "d", "2", "10"),
            row("1", "d", "2", "9"),
        ];
        let p = Patient::from_rows("X", rows);
        assert_eq!(p.sex, "F");
        assert_eq!(p.sessions.len(), 2);
        assert_eq!(p.sessions[0].index, 1);
        assert_eq!(p.sessions[1].days, Some(90));
        let first: Vec<&str> = p.sessions[0].series.iter().map(|s| s.series_uid.as_str()).collect();
        assert_eq!(first, ["d", "c"], "series by number, not by UID");
        let instances: Vec<&str> = p.sessions[0].series[0]
            .instances
            .iter()
            .map(|r| r.instance_number.as_str())
            .collect();
        assert_eq!(instances, ["9", "10"], "instances by number");
        assert_eq!(p.age_at_first_session(), Some(47));
        assert_eq!(p.instances(), 4);
    }
}
