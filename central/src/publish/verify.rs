//! `publish --verify`: the server's studies, series and instances of the release's studies
//! (QIDO-RS) against the release's `index.csv`, and the difference instance by instance.

use super::release::IndexRow;
use super::{Server, ServerError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Studies, series and instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Studies.
    pub studies: u64,
    /// Series.
    pub series: u64,
    /// Instances.
    pub instances: u64,
}

/// An instance the server holds under one of the release's studies that the release lacks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Extra {
    /// Study Instance UID.
    pub study: String,
    /// Series Instance UID.
    pub series: String,
    /// SOP Instance UID.
    pub sop: String,
}

/// The comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// What `index.csv` lists.
    pub release: Counts,
    /// What the server holds of the release's studies.
    pub server: Counts,
    /// Release paths of instances the server lacks.
    pub missing: Vec<String>,
    /// Instances the server holds under the release's studies that the release does not list.
    pub extra: Vec<Extra>,
    /// Release paths of instances the server files under another series.
    pub wrong_series: Vec<String>,
}

impl VerifyReport {
    /// True when the server holds exactly what the release lists.
    pub fn matches(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.wrong_series.is_empty() && self.release == self.server
    }
}

/// Compares, study by study, what the server holds with `rows`.
pub fn compare(server: &dyn Server, rows: &[IndexRow]) -> Result<VerifyReport, ServerError> {
    // study → sop → (series, path)
    let mut release: BTreeMap<&str, BTreeMap<&str, (&str, &str)>> = BTreeMap::new();
    for row in rows {
        release
            .entry(row.study.as_str())
            .or_default()
            .insert(row.sop.as_str(), (row.series.as_str(), row.path.as_str()));
    }
    let mut report = VerifyReport::default();
    let mut release_series = BTreeSet::new();
    let mut server_series = BTreeSet::new();
    for (study, instances) in &release {
        report.release.studies += 1;
        report.release.instances += instances.len() as u64;
        release_series.extend(instances.values().map(|(series, _)| (*study, *series)));
        let held = server.study_instances(study)?;
        if !held.is_empty() {
            report.server.studies += 1;
        }
        report.server.instances += held.len() as u64;
        let mut seen = BTreeSet::new();
        for h in held {
            server_series.insert((study.to_string(), h.series.clone()));
            match instances.get(h.sop.as_str()) {
                Some((series, path)) => {
                    // A server that leaves the series out of the answer is not contradicted.
                    if !h.series.is_empty() && h.series != *series {
                        report.wrong_series.push(path.to_string());
                    }
                    seen.insert(h.sop);
                }
                None => report.extra.push(Extra {
                    study: study.to_string(),
                    series: h.series,
                    sop: h.sop,
                }),
            }
        }
        for (sop, (_, path)) in instances {
            if !seen.contains(*sop) {
                report.missing.push(path.to_string());
            }
        }
    }
    report.release.series = release_series.len() as u64;
    report.server.series = server_series.len() as u64;
    report.missing.sort();
    report.extra.sort();
    report.wrong_series.sort();
    Ok(report)
}
