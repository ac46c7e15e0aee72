//! The words of the review report: what happened to an attribute's value, as a data-protection
//! officer reads it, and what each option of the profile changes. The HTML and Markdown reports,
//! and `docs/hospital-guide.md`, use exactly these words and definitions.

use crate::deid::{ActionCounts, DeidOption, Profile, TakenAction};
use serde::Serialize;
use std::collections::BTreeMap;

/// What happened to one occurrence of an attribute, in the report's words. New kinds may be
/// added (the report lists whatever kinds it meets, in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// The attribute is not in the output.
    Removed,
    /// The attribute is in the output with no value.
    Emptied,
    /// The value was replaced by a fixed dummy.
    ReplacedByDummy,
    /// The UID was replaced by a new one.
    ReplacedUid,
    /// The value leaves as it was, by the profile's rule for the attribute.
    KeptUnchanged,
    /// The value leaves as it was, because it passed a check.
    KeptAfterCheck,
    /// The value was checked, failed the check and does not leave.
    RemovedAfterCheck,
    /// pseal wrote the attribute (the de-identification markers).
    WrittenByPseal,
}

impl Outcome {
    /// Every outcome, in the order of the report's columns.
    pub const ALL: [Outcome; 8] = [
        Outcome::Removed,
        Outcome::Emptied,
        Outcome::ReplacedByDummy,
        Outcome::ReplacedUid,
        Outcome::KeptUnchanged,
        Outcome::KeptAfterCheck,
        Outcome::RemovedAfterCheck,
        Outcome::WrittenByPseal,
    ];

    /// The word used in the reports.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Removed => "removed",
            Outcome::Emptied => "emptied",
            Outcome::ReplacedByDummy => "replaced by a dummy",
            Outcome::ReplacedUid => "replaced UID",
            Outcome::KeptUnchanged => "kept unchanged",
            Outcome::KeptAfterCheck => "kept after a check",
            Outcome::RemovedAfterCheck => "removed after a check",
            Outcome::WrittenByPseal => "written by pseal",
        }
    }

    /// Whether the value read from the hospital's file leaves the hospital.
    pub fn original_leaves(self) -> bool {
        matches!(self, Outcome::KeptUnchanged | Outcome::KeptAfterCheck)
    }

    /// The definition printed in the legend.
    pub fn definition(self) -> &'static str {
        match self {
            Outcome::Removed => "The attribute is taken out of the file. Nothing of it leaves.",
            Outcome::Emptied => {
                "The attribute stays in the file with no value (the DICOM standard requires it to be present). \
                 Its value does not leave."
            }
            Outcome::ReplacedByDummy => {
                "The value is replaced by a fixed stand-in that is the same in every file (ANONYMIZED, \
                 19000101, 000000, 0, …), because the standard requires a value. The original does not leave."
            }
            Outcome::ReplacedUid => {
                "The unique identifier (UID) is replaced by a new random-looking one; the original goes only \
                 into the sealed record, and the steward writes a new UID of its own."
            }
            Outcome::KeptUnchanged => {
                "The value leaves the hospital exactly as it is in the file, because the profile keeps this \
                 attribute (for example sex and age under Retain Patient Characteristics). A sequence kept \
                 this way has each attribute inside it treated by these same rules."
            }
            Outcome::KeptAfterCheck => {
                "The value leaves exactly as it is, because pseal checked it and it passed: a description made \
                 only of acquisition vocabulary (Clean Descriptors), a private attribute on the standard's \
                 safe list, or an attribute outside the standard's table that is a number, a code or a UID \
                 of the right form, or one of pseal's short list of equipment and sequence names. \
                 A sequence kept this way has each attribute inside it treated by these same rules."
            }
            Outcome::RemovedAfterCheck => {
                "pseal checked the value and it did not pass (a description with a word outside the \
                 acquisition vocabulary, free text outside the standard's table, a private attribute not \
                 on the safe list): the value does not leave. The attribute is taken out, or left empty \
                 or given a dummy where the standard requires it to be present."
            }
            Outcome::WrittenByPseal => {
                "pseal wrote this attribute: the marks that say the file was de-identified and how \
                 (Patient Identity Removed, De-identification Method and its codes)."
            }
        }
    }

    /// The outcome of an action the engine counted, or `None` for what is counted in addition
    /// (the value sealed for the steward). `by_check` says whether the profile decides this
    /// attribute by checking its value (Clean Descriptors).
    pub fn of(action: TakenAction, by_check: bool) -> Option<Outcome> {
        Some(match action {
            TakenAction::Removed | TakenAction::Emptied | TakenAction::Dummy if by_check => Outcome::RemovedAfterCheck,
            TakenAction::Removed | TakenAction::PrivateRemoved => Outcome::Removed,
            TakenAction::Emptied => Outcome::Emptied,
            TakenAction::Dummy => Outcome::ReplacedByDummy,
            TakenAction::UidReplaced => Outcome::ReplacedUid,
            TakenAction::Kept => Outcome::KeptUnchanged,
            TakenAction::Cleaned | TakenAction::PrivateKept | TakenAction::OutsideTableKept => Outcome::KeptAfterCheck,
            TakenAction::OutsideTableRemoved
            | TakenAction::OutsideTableEmptied
            | TakenAction::OutsideTableDummy
            | TakenAction::RetainedTextReplaced => Outcome::RemovedAfterCheck,
            TakenAction::Inserted => Outcome::WrittenByPseal,
            TakenAction::CapturedForSteward => return None,
        })
    }
}

/// Words for the column of values sealed for the steward.
pub const SEALED_WORD: &str = "sealed for the steward";

/// The definition of [`SEALED_WORD`] in the legend.
pub const SEALED_DEFINITION: &str =
    "Counted in addition to the outcome: the original value also goes into the identity \
     record sealed to the data steward (dates and times to shift, the birth date for the age at the scan). \
     Only the steward can open it; researchers never see it.";

/// One attribute's outcomes over all reviewed files.
#[derive(Clone, Debug, Serialize)]
pub struct AttributeOutcomes {
    /// `(GGGG,EEEE)`.
    pub tag: String,
    /// The attribute's name.
    pub name: String,
    /// How many occurrences had each outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Occurrences whose original value was also sealed for the steward.
    pub sealed: u64,
}

impl AttributeOutcomes {
    /// Whether any occurrence's original value leaves the hospital.
    pub fn leaves(&self) -> bool {
        self.outcomes.iter().any(|(o, n)| o.original_leaves() && *n > 0)
    }

    /// Occurrences with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }
}

/// The per-attribute outcomes of a review, in tag order.
pub fn attribute_outcomes(actions: &ActionCounts, profile: &Profile) -> Vec<AttributeOutcomes> {
    let mut rows: Vec<AttributeOutcomes> = Vec::new();
    for line in actions.iter() {
        if rows.last().is_none_or(|r| r.tag != line.tag_string) {
            rows.push(AttributeOutcomes {
                tag: line.tag_string.clone(),
                name: line.name.clone(),
                outcomes: BTreeMap::new(),
                sealed: 0,
            });
        }
        let Some(row) = rows.last_mut() else { continue };
        match Outcome::of(line.action, crate::deid::decided_by_check(profile, line.tag)) {
            Some(o) => *row.outcomes.entry(o).or_default() += line.count,
            None => row.sealed += line.count,
        }
    }
    rows
}

/// What an option of the profile changes, in plain words.
pub fn option_effect(option: DeidOption) -> &'static str {
    match option {
        DeidOption::RetainSafePrivate => {
            "Keeps the private (manufacturer) attributes the standard lists as safe (Table E.3.10-1); \
             every other private attribute is removed."
        }
        DeidOption::RetainUids => {
            "Keeps the original UIDs instead of replacing them. The files can then be matched to the \
             hospital's PACS by anyone who has both."
        }
        DeidOption::RetainDeviceIdentity => {
            "Keeps device serial numbers, station names and similar: the scanner can be identified."
        }
        DeidOption::RetainInstitutionIdentity => {
            "Keeps institution and department names and addresses: the hospital can be identified."
        }
        DeidOption::RetainPatientCharacteristics => {
            "Keeps sex, age, size, weight and similar characteristics (kept unchanged). The birth date \
             itself does not leave (it is emptied); it is sealed for the steward, who writes the age at each scan."
        }
        DeidOption::RetainLongFullDates => "Keeps every date and time as it is.",
        DeidOption::RetainLongModifiedDates => {
            "Dates and times are removed from the files and sealed for the steward, who writes them \
             back shifted by a random number of days per patient, so intervals between scans survive \
             but the real dates do not leave."
        }
        DeidOption::CleanDescriptors => {
            "Keeps descriptions (study, series, protocol names…) only when every word is acquisition \
             vocabulary such as T1, FLAIR or contrast (kept after a check); any other description is \
             removed (removed after a check)."
        }
        DeidOption::CleanStructuredContent => {
            "Keeps structured report content sequences, each attribute inside them treated by the same rules."
        }
        DeidOption::CleanGraphics => {
            "Keeps graphic annotation sequences, each attribute inside them treated by the same rules."
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The hospital guide defines every outcome word exactly as the report does.
    #[test]
    fn the_hospital_guide_defines_every_outcome_word_as_the_report_does() {
        let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/hospital-guide.md")).unwrap();
        for o in Outcome::ALL {
            let yes_no = if o.original_leaves() { "yes" } else { "no" };
            let row = format!(
                "| **{}** | {yes_no} | {} |",
                o.word(),
                o.definition().replace('|', "\\|")
            );
            assert!(guide.contains(&row), "docs/hospital-guide.md lacks the row\n{row}");
        }
        assert!(guide.contains(&format!(
            "| **{SEALED_WORD}** | only to the steward | {SEALED_DEFINITION} |"
        )));
    }

    #[test]
    fn every_taken_action_has_an_outcome_or_is_counted_as_sealed() {
        assert_eq!(Outcome::of(TakenAction::CapturedForSteward, false), None);
        assert_eq!(Outcome::of(TakenAction::Cleaned, true), Some(Outcome::KeptAfterCheck));
        assert_eq!(
            Outcome::of(TakenAction::Removed, true),
            Some(Outcome::RemovedAfterCheck)
        );
        assert_eq!(Outcome::of(TakenAction::Emptied, false), Some(Outcome::Emptied));
        assert_eq!(
            Outcome::of(TakenAction::OutsideTableRemoved, false),
            Some(Outcome::RemovedAfterCheck)
        );
        let leaving: Vec<&str> = Outcome::ALL
            .into_iter()
            .filter(|o| o.original_leaves())
            .map(Outcome::word)
            .collect();
        assert_eq!(leaving, ["kept unchanged", "kept after a check"]);
    }
}
