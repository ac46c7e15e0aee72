//! What de-identification takes out of an instance for the steward: the sealed identity
//! record's share of one instance (original UIDs, dates and times, the birth date).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The original values of one instance that the steward needs to re-key it. They go only into
/// the identity record sealed to the steward, never into the bundle's clear parts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Captured {
    /// Every UID the engine replaced with a placeholder (action U), placeholder → original,
    /// each placeholder once per instance, in the order first met.
    pub uids: Vec<UidPair>,
    /// Dates, times and date-times the steward writes back shifted (Retain Longitudinal Temporal
    /// Information with Modified Dates), at any depth, in dataset order.
    pub values: Vec<CapturedValue>,
    /// Patient's Birth Date (DA) as in the file, captured only with Retain Patient
    /// Characteristics, so that the steward can compute the age at the scan (and not store it).
    pub birth_date: Option<String>,
}

/// A placeholder UID and the original it replaced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UidPair {
    /// The placeholder in the de-identified output (`2.25.` + a decimal number).
    pub placeholder: String,
    /// The UID in the original file.
    pub original: String,
}

/// An original date, time or date-time and where it was.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CapturedValue {
    /// `(sequence tag as group << 16 | element, item index)` from the top-level dataset down to
    /// the dataset holding the attribute; empty for the top level. Item indices are the same in
    /// the de-identified output, since kept sequences keep all their items.
    pub path: Vec<(u32, u32)>,
    /// The attribute's tag, `group << 16 | element`.
    pub tag: u32,
    /// `"DA"`, `"DT"` or `"TM"`.
    pub vr: String,
    /// The value as in the file (trailing padding removed; multiple values joined by `\`).
    pub value: String,
}

/// Builds a [`Captured`], deduplicating UID pairs by placeholder.
#[derive(Default)]
pub(crate) struct CaptureSink {
    captured: Captured,
    placeholders: BTreeSet<String>,
}

impl CaptureSink {
    /// Record a replaced UID.
    pub(crate) fn uid(&mut self, placeholder: &str, original: &str) {
        if self.placeholders.insert(placeholder.to_string()) {
            self.captured.uids.push(UidPair {
                placeholder: placeholder.to_string(),
                original: original.to_string(),
            });
        }
    }

    /// Record a date, time or date-time.
    pub(crate) fn value(&mut self, path: &[(u32, u32)], tag: u32, vr: &str, value: String) {
        self.captured.values.push(CapturedValue {
            path: path.to_vec(),
            tag,
            vr: vr.to_string(),
            value,
        });
    }

    /// Record the birth date.
    pub(crate) fn birth_date(&mut self, value: String) {
        self.captured.birth_date = Some(value);
    }

    /// The finished record.
    pub(crate) fn finish(self) -> Captured {
        self.captured
    }
}
