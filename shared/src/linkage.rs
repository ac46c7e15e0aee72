//! Cross-site linkage, hospital side: the demographic fields a site that opted in seals for the
//! steward, read from the files and reduced to one value per field per patient.
//!
//! A site with `[linkage] enabled = true` (`pseal init --linkage on`) adds a [`LinkageRecord`] to
//! each patient's sealed identity record: family name, given names, birth name, birth date and
//! sex as found in Patient's Name, Patient's Birth Name, Patient's Birth Date and Patient's Sex.
//! Nothing else changes at the hospital: no key, no table, no network. The steward encodes the
//! fields and drops them (`pseal_central::linkage`, `docs/linkage.md`).
//!
//! A patient's files may disagree (a name corrected in the RIS between two studies): the
//! [`LinkageTally`] keeps the most frequent value of each field and counts the distinct values,
//! which the export report lists per patient — field names and counts, never the values.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The fields in the order reports list them, as reports name them.
pub const FIELD_NAMES: [&str; 5] = ["family name", "given names", "birth name", "birth date", "sex"];

/// The first tag after the attributes linkage reads (all are in group 0010), so a header is
/// parsed only that far.
pub const PARSE_UNTIL: Tag = Tag(0x0011, 0x0000);

const PATIENT_NAME: Tag = Tag(0x0010, 0x0010);
const PATIENT_BIRTH_DATE: Tag = Tag(0x0010, 0x0030);
const PATIENT_SEX: Tag = Tag(0x0010, 0x0040);
const PATIENT_BIRTH_NAME: Tag = Tag(0x0010, 0x1005);

/// The linkage site's configuration (`[linkage]` in `pseal.toml`). Off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkageConfig {
    /// Seal family name, given names, birth name, birth date and sex for cross-site linkage.
    pub enabled: bool,
}

impl LinkageConfig {
    /// True when linkage is off (the configuration then leaves the table out).
    pub fn is_off(&self) -> bool {
        !self.enabled
    }
}

/// What one patient's identity record carries for linkage. The values are exactly as in the
/// files (trimmed of DICOM padding); the steward normalises them. `Debug` shows which fields are
/// present, never a value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkageRecord {
    /// Family name: the first component of Patient's Name (alphabetic group).
    pub family_name: Option<String>,
    /// Given names: the second and third components of Patient's Name, space-separated.
    pub given_names: Option<String>,
    /// Birth name: the family-name component of Patient's Birth Name.
    pub birth_name: Option<String>,
    /// Patient's Birth Date as written (DA, `YYYYMMDD`).
    pub birth_date: Option<String>,
    /// Patient's Sex (`M`, `F`, `O`).
    pub sex: Option<String>,
    /// Fields whose value differed across the patient's files: field name → number of distinct
    /// values seen. The most frequent value is the one sealed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conflicts: BTreeMap<String, u32>,
}

impl fmt::Debug for LinkageRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkageRecord")
            .field("family_name", &self.family_name.is_some())
            .field("given_names", &self.given_names.is_some())
            .field("birth_name", &self.birth_name.is_some())
            .field("birth_date", &self.birth_date.is_some())
            .field("sex", &self.sex.is_some())
            .field("conflicts", &self.conflicts)
            .finish()
    }
}

impl Drop for LinkageRecord {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in [
            &mut self.family_name,
            &mut self.given_names,
            &mut self.birth_name,
            &mut self.birth_date,
            &mut self.sex,
        ] {
            v.zeroize();
        }
    }
}

impl LinkageRecord {
    /// The values in [`FIELD_NAMES`] order.
    pub fn values(&self) -> [Option<&str>; 5] {
        [
            self.family_name.as_deref(),
            self.given_names.as_deref(),
            self.birth_name.as_deref(),
            self.birth_date.as_deref(),
            self.sex.as_deref(),
        ]
    }

    /// True when no field has a value (nothing to link on).
    pub fn is_empty(&self) -> bool {
        self.values().iter().all(Option::is_none)
    }
}

/// The linkage fields of one file (what [`read_fields`] found). `Debug` is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FileFields(pub [Option<String>; 5]);

impl fmt::Debug for FileFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileFields(<{} present>)", self.0.iter().flatten().count())
    }
}

/// Reads the linkage fields of one file from its top-level dataset (parsed at least up to
/// [`PARSE_UNTIL`]). Text is decoded by dicom-rs under the file's Specific Character Set.
pub fn read_fields(object: &InMemDicomObject) -> FileFields {
    let text = |tag: Tag| -> Option<String> {
        let element = object.element(tag).ok()?;
        let s = element.to_str().ok()?;
        let first = s.split('\\').next().unwrap_or_default();
        clean(first)
    };
    let (family, given) = match text(PATIENT_NAME) {
        Some(pn) => split_person_name(&pn),
        None => (None, None),
    };
    let birth_name = text(PATIENT_BIRTH_NAME).and_then(|pn| split_person_name(&pn).0);
    FileFields([
        family,
        given,
        birth_name,
        text(PATIENT_BIRTH_DATE),
        text(PATIENT_SEX).map(|s| s.to_ascii_uppercase()),
    ])
}

/// Family name and given names (given + middle) of a PN value's alphabetic group.
pub fn split_person_name(pn: &str) -> (Option<String>, Option<String>) {
    let alphabetic = pn.split('=').next().unwrap_or_default();
    let mut parts = alphabetic.split('^');
    let family = parts.next().and_then(clean);
    let given: Vec<String> = parts.take(2).filter_map(clean).collect();
    let given = (!given.is_empty()).then(|| given.join(" "));
    (family, given)
}

fn clean(s: &str) -> Option<String> {
    let t = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!t.is_empty()).then(|| t.to_string())
}

/// Counts each field's values over a patient's files and picks the most frequent.
#[derive(Default)]
pub struct LinkageTally {
    /// Per field: (value, count), in the order first seen.
    fields: [Vec<(String, u32)>; 5],
}

impl fmt::Debug for LinkageTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let distinct: Vec<usize> = self.fields.iter().map(Vec::len).collect();
        f.debug_struct("LinkageTally").field("distinct", &distinct).finish()
    }
}

impl Drop for LinkageTally {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for field in &mut self.fields {
            for (value, _) in field.iter_mut() {
                value.zeroize();
            }
        }
    }
}

impl LinkageTally {
    /// Counts one file's fields (absent fields count for nothing).
    pub fn add(&mut self, file: FileFields) {
        for (slot, value) in self.fields.iter_mut().zip(file.0) {
            let Some(value) = value else { continue };
            match slot.iter_mut().find(|(v, _)| *v == value) {
                Some((_, n)) => *n += 1,
                None => slot.push((value, 1)),
            }
        }
    }

    /// The record to seal: each field's most frequent value (the first seen among equals, files
    /// being counted in path order), with the conflicting fields counted.
    pub fn record(&self) -> LinkageRecord {
        let mut chosen: [Option<String>; 5] = Default::default();
        let mut conflicts = BTreeMap::new();
        for (i, slot) in self.fields.iter().enumerate() {
            let mut best: Option<&(String, u32)> = None;
            for candidate in slot {
                if best.is_none_or(|b| candidate.1 > b.1) {
                    best = Some(candidate);
                }
            }
            chosen[i] = best.map(|(v, _)| v.clone());
            if slot.len() > 1 {
                conflicts.insert(FIELD_NAMES[i].to_string(), slot.len() as u32);
            }
        }
        let [family_name, given_names, birth_name, birth_date, sex] = chosen;
        LinkageRecord {
            family_name,
            given_names,
            birth_name,
            birth_date,
            sex,
            conflicts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(values: [&str; 5]) -> FileFields {
        FileFields(values.map(|v| (!v.is_empty()).then(|| v.to_string())))
    }

    #[test]
    fn person_names_split_into_family_and_given() {
        assert_eq!(
            split_person_name("Müller-Lüdenscheidt^Hans^Peter^Dr.^"),
            (Some("Müller-Lüdenscheidt".into()), Some("Hans Peter".into()))
        );
        assert_eq!(split_person_name("Gruber"), (Some("Gruber".into()), None));
        assert_eq!(
            split_person_name("Yamada^Tarou=山田^太郎"),
            (Some("Yamada".into()), Some("Tarou".into()))
        );
        assert_eq!(split_person_name("^Anna"), (None, Some("Anna".into())));
    }

    #[test]
    fn the_most_frequent_value_is_sealed_and_conflicts_are_counted() {
        let mut tally = LinkageTally::default();
        tally.add(fields(["Meier", "Anna", "", "19600101", "F"]));
        tally.add(fields(["Meyer", "Anna", "", "19600101", "F"]));
        tally.add(fields(["Meyer", "Anna", "Huber", "", "F"]));
        let record = tally.record();
        assert_eq!(record.family_name.as_deref(), Some("Meyer"));
        assert_eq!(record.birth_name.as_deref(), Some("Huber"));
        assert_eq!(record.birth_date.as_deref(), Some("19600101"));
        assert_eq!(record.conflicts.len(), 1);
        assert_eq!(record.conflicts.get("family name"), Some(&2));
        // Equal counts: the first seen wins, so the result does not depend on hashing.
        let mut tie = LinkageTally::default();
        tie.add(fields(["A", "", "", "", ""]));
        tie.add(fields(["B", "", "", "", ""]));
        assert_eq!(tie.record().family_name.as_deref(), Some("A"));
    }

    #[test]
    fn debug_output_holds_no_value() {
        let mut tally = LinkageTally::default();
        tally.add(fields(["Zwetschke", "Amalia", "Quast", "19451231", "F"]));
        let record = tally.record();
        for text in [
            format!("{record:?}"),
            format!("{tally:?}"),
            format!("{:?}", fields(["Zwetschke", "", "", "", ""])),
        ] {
            for value in ["Zwetschke", "Amalia", "Quast", "19451231"] {
                assert!(!text.contains(value), "{text}");
            }
        }
    }
}
